"""BLAS threads that follow the machine's load. OpenBLAS starts one thread per core, and its
threads spin while they wait for work: two such processes on a 2-core machine (two trainings,
or a training beside a browser) fight over every product's halves, and the default training
fell from 28,000 to 390 characters/s. A run therefore measures, at its start and every
CHECK_EVERY seconds, how many cores the OTHER processes keep busy (/proc/stat minus this
process's own CPU time) and gives OpenBLAS only the cores they leave free, through its own
`*_set_num_threads` (found in the loaded library, as threadpoolctl does). A thread count the
user set in the environment always wins, and a distributed run keeps its share per rank
(share_among_ranks, which the console script sets before NumPy loads).

The thread count can change a product's rounding: this OpenBLAS (0.3.31, SkylakeX kernel)
blocks the inner dimension K differently at one and at two threads when K is above 448
(float32; 384 float64) and not a multiple of 32. The default run's products (K = 32 x 50, 256,
768, the vocabulary) are bit-identical at any count; other sizes (--batch 30: K = 1500) make a
run's numbers depend on the load, by about 1e-6 of a weight after 100 steps. Setting
OPENBLAS_NUM_THREADS fixes the count, and with it the numbers."""

from __future__ import annotations

import math
import os
import time

ENV_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CHECK_EVERY = 2.0  # seconds: two trainings started together find each other within this
MIN_WINDOW = 0.1  # seconds of /proc/stat ticks (10 ms each) below which a reading is noise
STALE = 30.0  # seconds after which a reading says nothing about the load now
DOWN_AT, UP_AT = 0.5, 0.25  # cores other processes use: give one up / take it back
NAMES = ("scipy_openblas{}_num_threads64_", "scipy_openblas{}_num_threads",
         "openblas{}_num_threads64_", "openblas{}_num_threads")
MAX_STAT_LINES = 4096  # /proc/stat's cpu lines come first; its later lines can be long


def user_setting(env=os.environ) -> tuple[str, str] | None:
    """(variable, value) of the first BLAS thread variable set, else None."""
    for var in ENV_VARS:
        if env.get(var, "").strip():
            return var, env[var].strip()
    return None


def choose(cores: int, others: float, current: int | None = None) -> int:
    """BLAS threads for a process allowed on `cores` cores while other processes keep `others`
    cores busy: one thread fewer per core they use (from half a core on), at least one. Back up
    only once they use under a quarter of the freed core, so noise does not flip it back and
    forth."""
    cores = max(1, cores)
    down = max(1, min(cores, math.ceil(cores - others - DOWN_AT)))
    if current is None:
        return down
    up = max(1, min(cores, math.ceil(cores - others - (1 - UP_AT))))
    return min(down, max(current, up))


def share_among_ranks(local_ranks: int, env=os.environ) -> None:
    """A distributed run's ranks share the machine: each gets cores / ranks BLAS threads (at
    most the cores it is bound to) in every variable the user left unset. Before NumPy loads:
    OpenBLAS and MKL read them once."""
    cores = os.cpu_count() or 1
    cpus = allowed_cpus()
    share = max(1, min(len(cpus) if cpus else cores, cores // max(1, local_ranks)))
    for var in ENV_VARS:
        env.setdefault(var, str(share))


def describe(threads: int | None, cores: int, others: float | None, user=None,
             ranks: int = 1) -> str:
    """The run's first-lines account of its BLAS threads (`threads` None: no OpenBLAS)."""
    if threads is None:
        return "BLAS: as the library chooses (no OpenBLAS loaded to adjust)"
    n = f"{threads} thread{'s' if threads != 1 else ''}"
    if ranks > 1:  # share_among_ranks' count, or the user's
        return f"BLAS: {n} per rank ({ranks} ranks share the cores" + \
            (f"; {user[0]}={user[1]})" if user else ")")
    if user is not None:
        return f"BLAS: {n} ({user[0]}={user[1]} set)"
    if others is None:
        load = f"{cores} core{'s' if cores != 1 else ''}, load not measured yet"
    elif others < UP_AT:
        load = f"{cores} core{'s' if cores != 1 else ''} idle"
    else:
        load = f"other processes use {others:.1f} of {cores} cores"
    return f"BLAS: {n} ({load}; checked every {CHECK_EVERY:g} s; OPENBLAS_NUM_THREADS overrides)"


def allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def busy_seconds(cpus: set[int] | None) -> float | None:
    """CPU seconds all processes have spent on `cpus` since boot (Linux /proc/stat), or None."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        with open("/proc/stat", encoding="ascii") as f:
            for _ in range(MAX_STAT_LINES):
                line = f.readline(1024)
                if not line.startswith("cpu"):
                    break
                name, *fields = line.split()
                if name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
                    continue
                # user nice system idle iowait irq softirq steal: all but idle and iowait
                v = [int(x) for x in fields[:8]]
                total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        return total / tick if total else None
    except (OSError, ValueError, IndexError):
        return None


class Reading:
    """A point to measure the other processes' load from."""

    def __init__(self, cpus):
        self.wall, self.own, self.busy = time.monotonic(), time.process_time(), busy_seconds(cpus)

    def others_since(self, then: Reading) -> float | None:
        """Cores other processes kept busy between `then` and this reading."""
        span = self.wall - then.wall
        if self.busy is None or then.busy is None or not MIN_WINDOW <= span <= STALE:
            return None
        return max(0.0, (self.busy - then.busy - (self.own - then.own)) / span)


_libs: list | None = None


def openblas() -> list[tuple]:
    """(set, get) thread-count functions of each OpenBLAS this process has loaded."""
    global _libs
    if _libs is None:
        import ctypes  # here: entry.py imports this module before anything heavy

        paths = set()
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
                for line in f:
                    path = line.split(maxsplit=5)[-1].strip()
                    if "openblas" in os.path.basename(path).lower() and path.startswith("/"):
                        paths.add(path)
        except OSError:
            pass
        _libs = []
        for path in sorted(paths):
            try:  # RTLD_NOLOAD: only a library already loaded, never a second copy
                lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            except OSError:
                continue
            for name in NAMES:
                setter, getter = (getattr(lib, name.format(f"_{op}"), None)
                                  for op in ("set", "get"))
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _libs.append((setter, getter))
                    break
    return _libs


def get_threads() -> int | None:
    libs = openblas()
    return libs[0][1]() if libs else None


def set_threads(n: int) -> None:
    for setter, _ in openblas():
        setter(n)


_last: Reading | None = None  # the latest reading in this process, kept across runs


def _reading(cpus) -> Reading:
    global _last
    _last = Reading(cpus)
    return _last


_reading(allowed_cpus())  # at import: a CLI run's first decision covers its start-up


class BlasThreads:
    """One run's BLAS threads: `line` for its first lines, a context manager that sets the count
    and restores it at the end, and `tick()` once per step (returns a line when the count
    changes)."""

    def __init__(self, ranks: int = 1, env=os.environ):
        self.user, self.ranks = user_setting(env), ranks
        self.before = get_threads()
        self.adapt = self.before is not None and self.user is None and ranks == 1
        self.cpus = allowed_cpus()
        self.cores = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
        self.threads, others = self.before, None
        if self.adapt:
            then, self.at = _last, _reading(self.cpus)
            others = self.at.others_since(then) if then is not None else None
            if others is not None:
                self.threads = choose(self.cores, others)
            self.next = self.at.wall + CHECK_EVERY
        self.line = describe(self.threads, self.cores, others, self.user, ranks)

    def tick(self) -> str | None:
        if not self.adapt or time.monotonic() < self.next:
            return None
        then, self.at = self.at, _reading(self.cpus)
        self.next = self.at.wall + CHECK_EVERY
        others = self.at.others_since(then)
        if others is None:
            return None
        threads = choose(self.cores, others, current=self.threads)
        if threads == self.threads:
            return None
        self.threads = threads
        set_threads(threads)
        return describe(threads, self.cores, others)

    def __enter__(self):
        if self.adapt:
            set_threads(self.threads)
        return self

    def __exit__(self, *exc):
        if self.adapt:
            set_threads(self.before)
