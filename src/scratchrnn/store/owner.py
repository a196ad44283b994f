"""Which files are ours: a command writes only files it owns, in folders it owns or creates.

A run folder carries a marker (`scratchrnn-run.json`, with a format tag); a folder written by a
scratchrnn from before markers (config.json beside checkpoint.npz or best.npz) counts as a run too
and gets the marker when training touches it. Training takes a run folder only if it is new,
empty, or a run holding no results (`RESULTS`, `OUTPUTS`: any, not only the latest checkpoint, is
work that a fresh run would replace), holds an exclusive `flock` on a lock file in it for as long
as it trains (a second training on the folder is refused at once), and replaces only the run's
own files; one that fails before writing anything of the run leaves no trace. Any other output
path goes through `check_output`, and a default one (`default_output`) lies only in a run
folder. Read-only commands never write into a run folder: a corpus training prepared there is
only read, any other is prepared in a cache of their own.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..data.corpus import cache_dir
from ..data.sources import absolute
from ..errors import ScratchRNNError
from ..fsutil import (
    atomic_write_bytes,
    clean_stale_temps,
    describe_os_error,
    make_dir,
    open_regular,
)

MARKER = "scratchrnn-run.json"
FORMAT = "scratchrnn-run/1"
LOCK = ".scratchrnn.lock"
# What training writes into a run folder: nothing else there is ever replaced or removed.
RUN_FILES = ("checkpoint.npz", "best.npz", "config.json", "metrics.jsonl", "loss.png",
             "corpus.u8", "corpus.json")
RESULTS = ("checkpoint.npz", "best.npz", "metrics.jsonl", "loss.png")  # what --overwrite drops
# What other commands write into a run by default: a run's work too, but only the user drops it.
OUTPUTS = ("inside.html", "model.safetensors", "model.onnx", "model.html", "loss.png")


def has_marker(folder: str | os.PathLike) -> bool:
    try:
        with open_regular(Path(folder) / MARKER, "run folder marker", "") as f:
            data = json.loads(f.read(4096))
    except (OSError, ValueError, ScratchRNNError):  # a FIFO or device there is no marker
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def is_run_folder(folder: str | os.PathLike) -> bool:
    """A scratchrnn run folder: it has our marker, or it is a run from before markers."""
    folder = Path(folder)
    return folder.is_dir() and (has_marker(folder) or (
        (folder / "config.json").is_file()
        and any((folder / name).is_file() for name in ("checkpoint.npz", "best.npz"))))


def results(folder: str | os.PathLike) -> list[str]:
    """The results of a run that `folder` holds, its outputs (OUTPUTS) included (an empty file
    holds none: a run that stopped before its first log row)."""
    found = []
    for name in dict.fromkeys(RESULTS + OUTPUTS):
        try:
            if os.lstat(Path(folder) / name).st_size > 0:
                found.append(name)
        except OSError:
            pass
    return found


def _lstat(path: Path, what: str, flag: str) -> os.stat_result | None:
    """lstat, None when nothing is there; a path that cannot be looked at is one clear error."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        if isinstance(path, Path) and any(p.is_file() for p in path.parents):
            raise ScratchRNNError(describe_os_error(OSError(errno.ENOTDIR, ""), path, what,
                                                    "use", f"pass another {flag}")) from None
        return None
    except OSError as e:
        raise ScratchRNNError(describe_os_error(e, path, what, "use",
                                                f"pass another {flag}")) from None


def _entries(folder: Path) -> list[str]:
    try:
        return [e for e in os.listdir(folder) if e not in (LOCK, MARKER)]
    except OSError:
        return []


def _foreign(folder: Path, flag: str) -> ScratchRNNError:
    return ScratchRNNError(f"{folder} holds files that are not a scratchrnn run; pass a new or "
                           f"empty folder as {flag}")


def check_run_out(out: str | os.PathLike, *, resume_from: str | os.PathLike | None = None,
                  overwrite: bool = False, flag: str = "`out`", hint: str | None = None) -> None:
    """Refuse, before anything is written, a run folder this command may not use: a file, a
    non-empty folder that is not a run, a run holding results when starting afresh without
    `overwrite`, or (when continuing the run in `resume_from` elsewhere) a folder holding
    another run. `hint` replaces training's advice (--resume, --overwrite) for a command that
    has neither (import)."""
    out = Path(out)
    st = _lstat(out, "run folder", flag)
    if st is None:
        return
    if not out.exists():
        raise ScratchRNNError(f"{out} is a broken link; pass another {flag}")
    if not out.is_dir():
        raise ScratchRNNError(f"{out} is a file, not a folder; pass a folder as {flag}")
    if resume_from is not None:
        if out.resolve() == Path(resume_from).resolve():
            if is_run_folder(out) or set(_entries(out)) <= set(RUN_FILES):
                return
            raise ScratchRNNError(f"{out} holds a checkpoint among files that are not a "
                                  f"scratchrnn run; pass a new or empty {flag} to continue the "
                                  "run there")
        if _entries(out):
            what = "another run" if is_run_folder(out) else "files that are not a scratchrnn run"
            raise ScratchRNNError(f"{out} holds {what}; `resume` continues a run in its own "
                                  f"folder (drop {flag}) or in a new or empty {flag}")
        return
    if not _entries(out):
        return
    if not is_run_folder(out):
        raise _foreign(out, flag)
    held = results(out)
    if held and not overwrite:
        if hint is not None:
            raise ScratchRNNError(f"{out} already holds a run ({', '.join(held)}); {hint}")
        if "checkpoint.npz" in held:
            raise ScratchRNNError(f"{out} already holds a run; continue it with `resume` {out}, "
                                  f"or pass another {flag} (or `overwrite` to replace it)")
        again = (f"continue from its best with `resume` {out / 'best.npz'}, or "
                 if "best.npz" in held else "")
        raise ScratchRNNError(f"{out} already holds the results of a run ({', '.join(held)}) "
                              f"without its latest checkpoint; {again}pass another {flag} (or "
                              "`overwrite` to replace the run)")


class RunFolder:
    """Context manager that owns a run folder while training: creates it, takes the lock,
    writes the marker and removes stale temp files of ours. `clear()` drops an earlier run's
    results (for --overwrite), never a file that is not the run's."""

    def __init__(self, out: str | os.PathLike, *, resume_from=None, overwrite: bool = False,
                 flag: str = "`out`", hint: str | None = None):
        self.out, self.resume_from, self.overwrite, self.flag = (Path(out), resume_from,
                                                                  overwrite, flag)
        self.hint, self._fd = hint, None
        self._made: Path | None = None  # the top folder this command creates, if any
        self._ours: list[Path] = []  # the marker and lock files it creates

    def _check(self) -> None:
        check_run_out(self.out, resume_from=self.resume_from, overwrite=self.overwrite,
                      flag=self.flag, hint=self.hint)

    def __enter__(self) -> RunFolder:
        self._check()
        missing = [p for p in (self.out, *self.out.parents) if not os.path.lexists(p)]
        self._made = missing[-1] if missing else None
        make_dir(self.out, f"pass a writable {self.flag} folder")
        try:
            if not os.path.lexists(self.out / LOCK):
                self._ours.append(self.out / LOCK)
            self._fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ScratchRNNError(f"cannot lock {self.out}: {e.strerror}; pass a writable "
                                  f"{self.flag} folder") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._release()
            raise ScratchRNNError(f"another scratchrnn training is using {self.out}; wait for "
                                  f"it to finish or pass another {self.flag}") from None
        except OSError:
            pass  # a file system without locks (some network mounts): go on unlocked
        try:
            self._check()  # again under the lock: the folder may have changed since the first look
            if not has_marker(self.out):
                self._ours.append(self.out / MARKER)
                atomic_write_bytes(self.out / MARKER, json.dumps(
                    {"format": FORMAT, "what": "a scratchrnn run folder"}).encode(),
                    "run folder marker")
            clean_stale_temps(self.out, RUN_FILES)
        except BaseException:
            self._undo()
            raise
        return self

    def _undo(self) -> None:
        """A command that fails before it writes anything of a run leaves no trace of itself:
        the marker and lock it made go (still under the lock), then the folders it made, if
        they are empty then."""
        try:
            left = {self.out / name for name in os.listdir(self.out)}
        except OSError:
            left = None
        if left is not None and left <= set(self._ours):
            for path in self._ours:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._release()
        if self._made is not None:
            for folder in (self.out, *self.out.parents):
                try:
                    folder.rmdir()  # only an empty one
                except OSError:
                    break
                if folder == self._made:
                    break

    def clear(self) -> None:
        for name in RESULTS:
            (self.out / name).unlink(missing_ok=True)

    def _release(self):
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self._release()
        else:
            self._undo()


def check_output(path: str | os.PathLike, what: str, names: Iterable[str] = (),
                 ours: Callable[[Path], bool] | None = None, flag: str = "`out`") -> Path:
    """May this command write `path`? Yes if nothing is there yet; if a file is, only when it
    is ours: one of `names` inside a scratchrnn run folder, or a file `ours(path)` recognises as
    an earlier output of this command. Else one clear error; nothing is written either way."""
    path = Path(path)
    if _lstat(path, what, flag) is None:
        return path
    if path.is_dir():
        raise ScratchRNNError(f"{path} is a folder; pass a file path as {flag}")
    if path.name in set(names) and is_run_folder(path.parent):
        return path
    if ours is not None and path.is_file() and not path.is_symlink() and ours(path):
        return path
    raise ScratchRNNError(f"{path} already exists and was not written by scratchrnn; pass a "
                          f"new path as {flag} (the {what} never replaces a file of yours)")


def default_output(folder: str | os.PathLike, name: str, what: str, flag: str = "`out`") -> Path:
    """Where a command writes `name` when not told: inside `folder` only if it is a scratchrnn
    run folder, or holds a checkpoint and nothing but files scratchrnn writes (a copied or
    saved checkpoint); a checkpoint among the user's own files gets nothing written beside it.
    Else one line asking for `flag`."""
    folder = Path(folder)
    entries = set(_entries(folder))
    ours = entries <= set(RUN_FILES) | set(OUTPUTS) and bool(
        entries & {"checkpoint.npz", "best.npz"})
    if not (is_run_folder(folder) or ours):
        raise ScratchRNNError(f"{folder} is not a scratchrnn run folder, so the {what} is not "
                              f"saved into it; pass {flag} FILE")
    return folder / name


def corpus_cache(text: str | os.PathLike | None, vocab, encoding: str | None) -> Path:
    """Where a read-only command prepares a large corpus: a folder under the cache dir
    (SCRATCHRNN_HOME) keyed by the source file, vocabulary and encoding, never a run folder (a
    corpus training prepared there is only read: `run_reuse`)."""

    source = "book" if text is None else absolute(text)
    chars = vocab if isinstance(vocab, str) else vocab.chars
    key = hashlib.sha256(json.dumps([source, chars, encoding]).encode()).hexdigest()[:24]
    return cache_dir() / "prepared" / key


def run_reuse(run: str | os.PathLike) -> Path | None:
    """The run folder whose prepared corpus a read-only command may read (when it still matches
    the source): one training marked as ours, so a corpus.u8 there is not a stranger's."""
    return Path(run) if has_marker(run) else None
