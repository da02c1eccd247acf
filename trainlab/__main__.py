"""``python -m trainlab`` and the ``trainlab`` console script."""

import sys


def main() -> None:
    try:
        from trainlab.cli import entry
    except KeyboardInterrupt:  # Ctrl-C while the command's libraries load: no traceback, as later
        sys.exit(130)
    entry()


if __name__ == "__main__":
    main()
