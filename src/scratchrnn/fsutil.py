"""Crash-safe file writes: write a temp file beside the target, fsync, then rename over it, so a
reader (or a crash at any moment) sees either the old file or the new one, never half of one.
And safe reads: every file the package reads is opened by `open_regular`, which refuses anything
but a regular file (a FIFO would block for ever, /dev/zero never ends) and bounds the read.

Temp files are named `.NAME.scratchrnn-<pid>-<random>.tmp` (the middle of a long NAME replaced by
a hash, so the name fits NAME_MAX): no user file matches that pattern by accident, and stale-temp
cleanup removes only files that do, of processes no longer running. OS errors are reported by
their cause (errno), with the file and what to do about it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from .errors import ScratchRNNError
from .limits import human_bytes

NAME_MAX = 255
_KEEP = 60  # bytes of a long name kept at each end of its temp file's name
_TEMP = re.compile(r"\..+\.scratchrnn-(\d+)-[0-9a-f]{8}\.tmp")

_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # their own advice beats a caller's hint
# errno -> (cause, what to do); {path} and {folder} are filled in.
_CAUSES = {
    errno.ENOSPC: ("no space left on the device", "free some disk space or write to another "
                   "folder"),
    errno.EDQUOT: ("the disk quota is exhausted", "free some space or write to another folder"),
    errno.EFBIG: ("the file is larger than this system or process allows (ulimit -f)",
                  "raise the limit or write to another file system"),
    errno.EROFS: ("{folder} is on a read-only file system", "write to another folder"),
    errno.ENOENT: ("the folder {folder} does not exist", "create it or pass another path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "pass another path"),
    errno.ENAMETOOLONG: ("the name is too long for the file system", "use a shorter name "
                         "or folder"),
    errno.EACCES: ("permission denied", "check the permissions of {folder} or write to "
                   "another folder"),
    errno.EPERM: ("the operation is not permitted", "check the permissions of {folder} or "
                  "write to another folder"),
    errno.EISDIR: ("{path} is a folder", "pass a file path, or move the folder away"),
    errno.EEXIST: ("{path} already exists and is not a folder", "pass another path"),
}


def describe_os_error(e: OSError, path: str | os.PathLike, what: str = "file",
                      action: str = "write", hint: str | None = None) -> str:
    """One line naming the file, the cause of `e` (by errno) and what the user can do."""
    path = Path(path)
    cause, todo = _CAUSES.get(e.errno, (e.strerror or str(e), "write to another folder"))
    if hint and e.errno not in _SPACE:
        todo = hint
    fill = {"path": path, "folder": path.parent}
    return f"could not {action} the {what} {path}: {cause.format(**fill)}; {todo.format(**fill)}"


def _short(name: str) -> str:
    """`name`, or its two ends around a hash of the whole when it is too long for a temp name."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 2 * _KEEP + 20:
        return name
    head = raw[:_KEEP].decode("utf-8", "ignore")  # "ignore" drops a character cut in two
    tail = raw[-_KEEP:].decode("utf-8", "ignore")
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:16]}~{tail}"


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temp file name beside `path` that only this module's pattern matches."""
    path = Path(path)
    return path.with_name(f".{_short(path.name)}.scratchrnn-{os.getpid()}-"
                          f"{secrets.token_hex(4)}.tmp")


def is_temp_name(name: str) -> bool:
    return _TEMP.fullmatch(name) is not None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, and not being written now (we are the one cleaning up)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike, legacy_names: tuple[str, ...] = ()) -> int:
    """Remove the temp files a killed writer left in `folder`: only names of our pattern whose
    process is gone (and, for runs written before the pattern existed, `.NAME.<pid>.tmp` for
    NAME in `legacy_names`). Returns how many were removed."""
    names = "|".join(map(re.escape, legacy_names))
    legacy = re.compile(rf"\.({names})\.\d+\.tmp") if legacy_names else None
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        stale = (m is not None and not _alive(int(m.group(1)))) or (
            legacy is not None and legacy.fullmatch(entry.name) is not None)
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def atomic_write(path: str | os.PathLike, write: Callable, what: str = "file") -> None:
    """Call `write(f)` on a binary temp file, then atomically replace `path` with it."""
    path = Path(path)
    if len(path.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise ScratchRNNError(describe_os_error(OSError(errno.ENAMETOOLONG, ""), path, what))
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise ScratchRNNError(describe_os_error(e, path, what)) from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "file") -> None:
    atomic_write(path, lambda f: f.write(data), what)


def make_dir(path: str | os.PathLike, hint: str) -> Path:
    """mkdir -p, or one clear error ending in `hint` (what the user can do about it)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ScratchRNNError(describe_os_error(e, path, "folder", "create", hint)) from None
    return path


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}
_READ_CAUSES = {  # errno -> cause, for a file being opened to read
    errno.ENOENT: "it does not exist", errno.ELOOP: "it is a symlink loop",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "permission denied", errno.EPERM: "the operation is not permitted",
    errno.ENAMETOOLONG: "the name is too long for the file system",
}


def _not_regular(path: Path, mode: int, what: str, hint: str) -> ScratchRNNError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a plain file")
    via = " (through a symlink)" if os.path.islink(path) else ""
    return ScratchRNNError(f"the {what} {path} is {kind}{via}, not a regular file; {hint}")


class _Capped(io.RawIOBase):
    """A file descriptor read up to `limit` bytes from its start: a file that grows while it is
    read (a log still being written) is read as it was when it was opened."""

    def __init__(self, fd: int, limit: int):
        self._fd, self._limit = fd, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buf) -> int:
        room = self._limit - os.lseek(self._fd, 0, os.SEEK_CUR)
        if room <= 0:
            return 0
        view = memoryview(buf).cast("B")[:room]
        return os.readv(self._fd, [view])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:  # the end is the size it had when opened
            offset, whence = self._limit + offset, os.SEEK_SET
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def open_regular(path: str | os.PathLike, what: str, hint: str,
                 max_bytes: int | None = None) -> io.BufferedReader:
    """`path` opened to read in binary, if it is a regular file (of at most `max_bytes`): else
    one clear error naming the `what` and ending in `hint` (what the user can do). The file is
    read as far as the size it had when opened, never further.

    A FIFO, a device or a socket is refused before it is opened (opening a device may act on
    it), and again on the opened descriptor: O_NONBLOCK keeps a FIFO put there in between from
    blocking the open, and fstat of the descriptor sees the file actually read."""
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode, what, hint)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        cause = _READ_CAUSES.get(e.errno, e.strerror or str(e))
        raise ScratchRNNError(f"could not read the {what} {path}: {cause}; {hint}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode, what, hint)
        if max_bytes is not None and st.st_size > max_bytes:
            raise ScratchRNNError(f"the {what} {path} is {human_bytes(st.st_size)}, more than "
                                  f"the {human_bytes(max_bytes)} it may be; {hint}")
        os.set_blocking(fd, True)
        return io.BufferedReader(_Capped(fd, st.st_size))
    except BaseException:
        os.close(fd)
        raise
