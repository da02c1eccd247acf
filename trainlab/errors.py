"""The one exception type for bad input: the CLI turns it into one line on stderr and exit code 2."""


class BadInput(ValueError):
    """A config, CSV, option or request that trainlab cannot use. The message names what and why."""
