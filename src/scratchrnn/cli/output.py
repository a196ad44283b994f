"""Standard output for the commands: a sample written as it comes, a full or closed output
turned into one line (never a second failure at exit), and characters the output's encoding
lacks written as escapes."""

from __future__ import annotations

import codecs
import errno
import os
import sys

from ..errors import ScratchRNNError
from ..fsutil import describe_os_error


def write_sample(prime: str, chars) -> None:
    first = next(chars, "")
    try:
        sys.stdout.write(prime + first)
        for ch in chars:
            sys.stdout.write(ch)
            if ch == "\n" or ch == " ":
                sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise ScratchRNNError(describe_os_error(e, "standard output", "sample to")) from None


# errnos of a write that has no file name to blame: standard output's
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def stdout_writable() -> bool:
    """False if what stdout still buffers cannot be written: the error came from it."""
    try:
        sys.stdout.flush()
        return True
    except OSError:
        return False


def drop_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that Python's flush at exit does not fail a
    second time (with a traceback) on what stdout still buffers."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (captured in tests)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def unencodable(e: UnicodeError):
    """stdout's error handler: a path's undecodable bytes (surrogate escapes) as themselves,
    and a character the stream's encoding lacks (a Chinese sample on a cp1252 console or
    file) as its \\u escape, never a traceback."""
    if isinstance(e, UnicodeEncodeError) and all(
            "\udc80" <= c <= "\udcff" for c in e.object[e.start:e.end]):
        return codecs.lookup_error("surrogateescape")(e)
    return codecs.backslashreplace_errors(e)


codecs.register_error("scratchrnn-stdout", unencodable)
