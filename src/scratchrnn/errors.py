"""The one exception type that reaches users as a single line instead of a traceback."""


class ScratchRNNError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class Interrupted(KeyboardInterrupt):
    """A second Ctrl-C (or SIGTERM) while the first was still being handled: stop at once,
    keeping the last checkpoint; `exit_code` is what the process should exit with."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.exit_code = {"SIGTERM": 143}.get(signame, 130)
