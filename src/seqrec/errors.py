"""Errors a user can act on: the CLI prints them as one line, never as a traceback."""


class SeqrecError(ValueError):
    """Bad input or settings; the message says what is wrong and where."""


class DataError(SeqrecError):
    """A data file is missing, corrupt or does not parse (the message names file, line, value)."""


class ConfigError(SeqrecError):
    """An unknown preset, model or setting, or a value out of range."""
