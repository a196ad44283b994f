"""The one exception type that reaches users as a single line instead of a traceback, and how
its line names parameters.

The library names a parameter as the Python API spells it, in backticks (`hidden`, `top_k`);
each front end says it its own way in one place through `spelled`: the CLI (and the MPI job it
starts) as its flag, `--hidden` (`as_flag`); the server as its JSON field. The lines a training
run prints name parameters alike, and the commands they point to come from the `Voice` its front
end passes (PYTHON by default; the CLI's is in cli/).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")


class ScratchRNNError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


def as_flag(name: str) -> str:
    """The command line's flag for a parameter: every option is `--` and its name with dashes
    (tests/test_params.py holds the parser to it)."""
    return "--" + name.replace("_", "-")


def spelled(message: str, spell: Callable[[str], str | None]) -> str:
    """`message` with each backticked parameter name as `spell(name)` says it (None: leave
    the name as it is, without its backticks)."""
    return PARAMETER.sub(lambda m: spell(m.group(1)) or m.group(1), message)


@dataclass(frozen=True)
class Voice:
    """How a front end says a training run's lines to its user: a backticked parameter as
    `name` spells it (None: the bare name), and the commands that only the front end knows how
    its user types."""
    name: Callable[[str], str | None]
    resume: Callable[[str], str]  # the command that continues the run in a folder/checkpoint
    launch: str  # how a user starts training on MPI ranks

    def __call__(self, words: str) -> str:
        """The library's own words (never a path or text of the user's, which may hold
        backticks) as this front end says them."""
        return spelled(words, self.name)


# The Python API's voice: what its user calls, and parameters by their bare names.
PYTHON = Voice(str, lambda run: f"train(resume={str(run)!r})",
               "mpiexec -n 2 python SCRIPT.py (SCRIPT.py calling train(..., comm=comm) in "
               "`with scratchrnn.training.distributed.session() as comm:`)")


class Interrupted(KeyboardInterrupt):
    """A second Ctrl-C (or SIGTERM) while the first was still being handled: stop at once,
    keeping the last checkpoint; `exit_code` is what the process should exit with."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.exit_code = {"SIGTERM": 143}.get(signame, 130)
