"""The console script and `python -m scratchrnn`. A Ctrl-C at any moment ends in one line and
exit status 130, never a traceback. While the command line's imports run (NumPy and matplotlib
take a good part of a second) SIGINT is only noted and acted on once they are done: an interrupt
raised inside a C extension's initialisation surfaces as an ImportError, or worse, a crash at
exit. Keep this module free of heavy imports."""

import os
import signal
import sys

EXIT_SIGINT = 130


def _interrupted(code: int = EXIT_SIGINT) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    print("scratchrnn: interrupted", file=sys.stderr)
    sys.exit(code)


def _blas_threads() -> None:
    """A distributed run's ranks share the machine's cores for BLAS; before NumPy loads."""
    local = os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or os.environ.get("MPI_LOCALNRANKS")
    if local and any(a.startswith("--distributed") for a in sys.argv):
        from .. import threads  # light: math, os and time

        threads.share_among_ranks(int(local))


def main() -> None:
    _blas_threads()
    pending = []
    try:
        old = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main thread: no handlers to install, nothing to defer
        old = None
    try:
        if sys.argv[1:2] == ["train"]:  # threads' first load reading spans the start-up
            from .. import threads  # noqa: F401
        from .commands import main as cli_main
    except KeyboardInterrupt:
        _interrupted()
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    if pending:
        _interrupted()
    try:
        code = cli_main()
    except KeyboardInterrupt as e:  # cli.main handles its own; this covers its last lines
        _interrupted(getattr(e, "exit_code", EXIT_SIGINT))
    sys.exit(code)
