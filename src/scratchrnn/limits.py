"""Checks made before anything is allocated or any long work starts: argument types and ranges
(one clear error instead of a TypeError deep inside NumPy), memory a model and its windows will
need against the memory available, and caps on lengths that would otherwise run for ever.

Sizes are computed with Python integers, so an absurd value (a hidden size of 10^20) is refused
by arithmetic, never by trying to allocate it."""

from __future__ import annotations

import math
import numbers
import os

from .errors import ScratchRNNError

# The limits a user meets, one constant each; the modules that check them import them here.
MAX_SAMPLE_LENGTH = 10 ** 7  # characters one call generates (about 10 MB of text)
MAX_SAMPLES = 1000  # samples one call makes from one prompt (each its own seed)
MAX_BEAM = 256  # beam width: each character costs the model as many steps as the beam is wide
MAX_STOP = 200  # characters of a stop text: it is matched against every character generated
MAX_LAYERS = 1000  # stacked layers: the loop over them is Python, one step would take minutes
MAX_HIDDEN = 1 << 16  # units per layer a checkpoint may declare: beyond any model trained here
MAX_CLAMP = 10.0  # beyond a few units of a tanh cell's range a clamp only saturates what reads it
MAX_PAGE_CHARS = 50_000  # characters on a visualize page: about 25 MB, more than a browser likes
MAX_BODY = 64 * 1024  # bytes of a request body the server reads
MAX_PROMPT = 4000  # characters of a prompt or an inspected text in one request
MAX_LENGTH = 5000  # characters generated per request
MAX_SEED = 2**63 - 1  # a seed NumPy's generator takes
MAX_SYMBOLS = 1 << 16  # symbols of a vocabulary: its ids are stored in two bytes at most
ARRAY_OVERHEAD = 256  # bytes an array object and its dict entry cost beyond the data
UNKNOWN_MEMORY = 1 << 40  # the ceiling when the available memory cannot be read
ALWAYS_FITS = 64 << 20  # needs below this are not checked: no /proc read on every small window


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping: MemAvailable from
    /proc/meminfo (Linux), else free physical pages from sysconf, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: int) -> str:
    if n >= 1 << 60:
        return f"{n / (1 << 30):.3g} GB"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def duration(seconds: float) -> str:
    """90 -> '1m 30s', 5400 -> '1h 30m'."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f" {s % 60:02d}s" if s % 60 else "")
    return f"{s // 3600}h" + (f" {s % 3600 // 60:02d}m" if s % 3600 // 60 else "")


def check_memory(parts: dict[str, int], what: str, hints: dict[str, str]) -> None:
    """Refuse `what` when the parts (name -> bytes) add up to more than the memory available.
    `hints` names, for each part, what the user can lower; the largest part's hint is given."""

    need = sum(parts.values())
    if need <= ALWAYS_FITS:
        return
    avail = available_memory()
    limit = UNKNOWN_MEMORY if avail is None else avail
    if need <= limit:
        return
    biggest = max(parts, key=parts.get)
    detail = ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items() if v)
    have = (f"the {human_bytes(avail)} of memory available" if avail is not None
            else f"the {human_bytes(UNKNOWN_MEMORY)} allowed when free memory is unknown")
    raise ScratchRNNError(f"{what} needs about {human_bytes(need)} ({detail}), more than "
                          f"{have}; {hints[biggest]}")


def integer(value, name: str, lo: int | None = None, hi: int | None = None,
            none_ok: bool = False) -> int | None:
    """`value` as a Python int within [lo, hi], or one clear error naming `name` (a parameter
    name, shown in backticks for errors.spelled)."""
    name = f"`{name}`"
    if value is None and none_ok:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ScratchRNNError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            want = "positive" if lo == 1 else f"{lo} or more"
            raise ScratchRNNError(f"{name} must be {want}, got {value}")
        raise ScratchRNNError(f"{name} must be between {lo} and {hi:,}, got {value:,}")
    return value


def real(value, name: str, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, hi_open: bool = False, none_ok: bool = False,
         hint: str = "") -> float | None:
    """`value` as a finite number within the interval, or one clear error naming `name` (a
    parameter name, shown in backticks for errors.spelled)."""
    name = f"`{name}`"
    if value is None and none_ok:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (math.isfinite(value)
              and (lo is None or (value > lo if lo_open else value >= lo))
              and (hi is None or (value < hi if hi_open else value <= hi)))
    if not ok:
        if lo is not None and hi is not None:
            want = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        elif lo is not None:
            want = "positive" if lo == 0 and lo_open else f"{lo:g} or more"
        else:
            want = "a finite number"
        raise ScratchRNNError(f"{name} must be {want}, got {value!r}{hint}")
    return value
