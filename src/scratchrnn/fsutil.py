"""Crash-safe file writes: write a temp file beside the target, fsync, then rename over it, so a
reader (or a crash at any moment) sees either the old file or the new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import ScratchRNNError


def atomic_write(path: str | os.PathLike, write: Callable, what: str = "file") -> None:
    """Call `write(f)` on a binary temp file, then atomically replace `path` with it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        reason = e.strerror or str(e)
        raise ScratchRNNError(f"could not write the {what} {path}: {reason}; free some disk space "
                              "or write to another folder") from None
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
        raise ScratchRNNError(f"cannot create the folder {path}: {e.strerror}; {hint}") from None
    return path
