"""The one exception type for user mistakes (bad config, missing file, corrupt input)."""


class UserError(Exception):
    """A mistake the user can fix; the CLI prints its message on one line and exits non-zero."""


def one_line(message: str) -> str:
    """`message` with every non-printing character escaped, so it prints as exactly one line
    (a config key or file name can carry a newline or a terminal control sequence)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
