"""The one base class of every error that bad input raises (a file, a path, a value, a config
key): the command line prints its message as one line and exits non-zero, without a traceback.
Messages name the value and what to do."""


class UserError(ValueError):
    """Input a user can fix; the message names it and the fix."""
