"""The one exception type that reaches users as a single line instead of a traceback."""


class ScratchRNNError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
