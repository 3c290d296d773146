"""The one error type for a wrong experiment, setting or override; tools turn it into a message."""


class ConfigError(ValueError):
    """An experiment or override is wrong; the message says what to do."""
