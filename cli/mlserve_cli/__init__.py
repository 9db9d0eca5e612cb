"""mlserve-cli: send images to an MLServe gateway from the command line."""

__version__ = "0.1.0"
