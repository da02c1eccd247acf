from trainlab.cli import entry

entry()
