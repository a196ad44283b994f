"""How a training stops cleanly: SIGINT and SIGTERM become a flag the loop checks between steps,
evaluation windows and sampled characters; a second signal stops at once; a closed or
unwritable stdout counts as a signal too."""

from __future__ import annotations

import os
import signal
import sys
import threading

from ..errors import Interrupted


class Signals:
    """Turn SIGINT/SIGTERM into a flag checked between steps, between evaluation windows and
    between sampled characters: the work in flight stops, then the loop saves a checkpoint and
    returns. A second signal stops at once (Interrupted), keeping the last checkpoint written.
    A closed stdout (`scratchrnn train | head`) counts as a signal too: "SIGPIPE". Handlers can
    only be installed in the main thread; elsewhere only the closed pipe is seen."""

    def __init__(self):
        self.received = None
        self.stdout_error = None  # the OSError that stopped a run's log, if not a closed pipe
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received:
            raise Interrupted(name)
        self.received = name

    def stop_requested(self) -> bool:
        return self.received is not None

    def pipe_closed(self):
        """stdout is gone: stop like on a signal, and point stdout at /dev/null so that later
        writes (and the interpreter's last flush) do not fail again."""
        self.received = self.received or "SIGPIPE"
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def say(self, write, text):
        """`write(text)` to stdout, turning a closed pipe, or a stdout that cannot be written
        (a full disk behind `> log`), into a stop request: the run saves and says so."""
        try:
            write(text)
        except OSError as e:
            self.stdout_error = None if isinstance(e, BrokenPipeError) else e
            self.pipe_closed()

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


STOPPED_BY = ("SIGINT", "SIGTERM", "SIGPIPE")
