"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """A mistake the user can fix (bad config, unknown name, missing path). Never shown as a traceback."""

    exit_code = 2


class ConfigError(UserError):
    """A config key, type or value that is not allowed."""
