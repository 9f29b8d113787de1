"""The one exception type for user mistakes (bad config, missing file, corrupt input)."""


class UserError(Exception):
    """A mistake the user can fix; the CLI prints its message on one line and exits non-zero."""
