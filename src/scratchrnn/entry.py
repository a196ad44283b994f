"""The console script and `python -m scratchrnn`: imports the command line only once a
KeyboardInterrupt handler is in place, so a Ctrl-C at any moment (the imports of NumPy and
matplotlib take a while) ends in one line and exit status 130, never a traceback. Keep this
module free of heavy imports."""

import signal
import sys

EXIT_SIGINT = 130


def main() -> None:
    try:
        from .cli import main as cli_main

        code = cli_main()
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        print("scratchrnn: interrupted", file=sys.stderr)
        code = getattr(e, "exit_code", EXIT_SIGINT)
    sys.exit(code)
