"""Data-parallel training over MPI (`mpiexec -n N scratchrnn train --distributed mpi`): the
synchronous all-reduce pattern of Horovod (Sergeev & Del Balso, 2018) on mpi4py.

The B streams are split into N contiguous blocks of B/N rows, one per rank. Each rank's loss is
the mean over its (B/N)*T characters, so the global mean over B*T is the sum of the local means
divided by N, and so is its gradient: one all-reduce (sum) of a flat buffer holding every
gradient (sorted keys), the loss and rank 0's clock, then a division by N. Every rank then clips
the same global gradient and applies the same update, so parameters stay identical without ever
being sent. Dropout masks are drawn for all B streams on every rank from the shared generator
and sliced (weight-drop masks are drawn whole), so the run is the one-process run whatever N
(to round-off in the sums).

Before any rank writes or allocates, the ranks compare a SHA-256 of everything that must be the
same on all of them (every training option, the resume source and its step, the text's content):
ranks started with different flags would otherwise crash inside MPI (buffers of other sizes) or
train apart. On a difference every rank stops, rank 0 naming the settings that differ.

Faults: every collective is non-blocking and polled. Rank 0 gives the others `timeout` seconds
(SCRATCHRNN_MPI_TIMEOUT, default 300) once it is waiting itself, and watches for the one-line
report a failing rank sends it; either way it prints one line and aborts the job. mpi4py is
imported only by `connect`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from contextlib import contextmanager

import numpy as np

from ..data.prepare import CHUNK_BYTES, MEMMAP_BYTES, raw_chunks, source_key
from ..data.sources import expand
from ..errors import PYTHON, Interrupted, ScratchRNNError, Voice

ERROR_TAG = 77  # a failing rank's one-line report to rank 0
STOPS = ("SIGINT", "SIGTERM", "SIGPIPE", "max_steps", "epochs", "time_budget")
LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
FAULT_VAR = "SCRATCHRNN_MPI_TEST_FAULT"  # tests only: "raise|hang|exit:RANK:STEP"


class Alone:
    """The one-process communicator: what MPIComm does for N ranks, for one (the training
    loop is written once, against this interface)."""

    rank, size, saved = 0, 1, None

    def rows(self, batch):
        return slice(None)

    def dropout_rng(self, rng, batch):
        return rng

    def reduce(self, grads, loss, clock):
        return grads, loss, clock

    def agree(self, stopped):
        return stopped

    def gather_state(self, state):
        return state

    def barrier(self, what):
        pass

    def check_same(self, cfg, ckpt, allow_new_text):
        pass  # one process agrees with itself


def under_launcher() -> bool:
    """Started by mpiexec (Open MPI, MPICH's hydra or a PMIx launcher)?"""
    return any(v in os.environ for v in LAUNCHER_VARS)


def connect(timeout: float | None = None, voice: Voice = PYTHON) -> MPIComm:
    """The world communicator, or one ScratchRNNError saying what is missing. `voice` is how
    the front end that started the job says its failures (fail)."""
    if not under_launcher():
        raise ScratchRNNError(f"MPI training runs under mpiexec, e.g. {voice.launch}; without "
                              "mpiexec, train in one process")
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ScratchRNNError(f"MPI training needs mpi4py ({e}); install an MPI (e.g. "
                              "apt-get install openmpi-bin libopenmpi-dev) and then pip "
                              "install 'scratchrnn[mpi]'") from None
    if timeout is None:
        raw = os.environ.get("SCRATCHRNN_MPI_TIMEOUT", "300")
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise ScratchRNNError(f"SCRATCHRNN_MPI_TIMEOUT must be a positive number of "
                                  f"seconds, got {raw!r}")
    return MPIComm(MPI, MPI.COMM_WORLD, timeout, voice)


class PeerFailure(ScratchRNNError):
    """Another rank failed or stopped answering."""


class Disagreement(ScratchRNNError):
    """The ranks were started with different settings: every rank raises the same line."""


SHOWN = 80  # characters of a setting's value that a disagreement shows


def _show(value) -> str:
    text = "unset" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= SHOWN else "..." + text[3 - SHOWN:]  # a path's end tells most


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_identity(source, encoding: str | None) -> tuple[str, str]:
    """(digest, what to show) of the text a rank will read: the SHA-256 of its files' bytes.
    A corpus large enough to be prepared in the run folder is read there by every rank from
    rank 0's copy, which is valid only for the same files: then the digest is of prepare's key
    (each file's path, size and mtime), and the files are not read twice. The book (`source`
    None) is one fixed text, which rank 0 alone downloads later if it is not cached yet."""
    if source is None:
        return _digest(b"the book"), "the book"
    with warnings.catch_warnings():  # load_corpus warns about skipped binary files, once
        warnings.simplefilter("ignore")
        paths = expand(source, encoding)
    size = sum(p.stat().st_size for p in paths)
    if size > MEMMAP_BYTES:
        key = _digest(json.dumps(source_key(paths), sort_keys=True).encode())
        return key, f"{len(paths)} file(s) of {size:,} bytes, path+size+mtime {key[:12]}"
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.stat().st_size}\n".encode())  # where one file ends and the next begins
        for raw in raw_chunks(p, CHUNK_BYTES):
            h.update(raw)
    return h.hexdigest(), f"{size:,} bytes, sha256 {h.hexdigest()[:12]}"


def run_fields(cfg, ckpt, allow_new_text: bool) -> dict[str, tuple[str, str]]:
    """Every setting the ranks must share, as its backticked parameter (which fail's voice
    says) -> (SHA-256 of its value, what to show): every training option (`cfg`, whose `text`
    train() has made absolute, so that the same file named from another folder agrees), the
    run resumed and its step, `allow_new_text` and the text's content. `progress` (--quiet)
    and `overwrite` are left out: they change only rank 0's output."""
    source = cfg.text
    resumed = None if ckpt is None else (f"{os.path.abspath(ckpt.path)} at step "
                                         f"{ckpt.meta.get('step', 0)}")
    values = {**cfg.to_dict(), "text": source, "out": os.path.abspath(cfg.out),
              "resume": resumed, "allow_new_text": bool(allow_new_text)}
    fields = {f"`{k}`": (_digest(json.dumps(v, sort_keys=True).encode()), _show(v))
              for k, v in values.items()}
    fields["the text's content"] = data_identity(source, cfg.encoding)
    return fields


def disagreement(fields: list[dict]) -> str:
    """The line naming each setting in which a rank differs from rank 0 (`fields[r]` is rank
    r's run_fields), with rank 0's value and that of the first rank that differs."""
    said = []
    for name in sorted(set().union(*fields)):
        mine = fields[0].get(name, ("", "missing"))
        other = next((r for r in range(1, len(fields))
                      if fields[r].get(name, ("", "missing"))[0] != mine[0]), None)
        if other is not None:
            said.append(f"{name} (rank 0: {mine[1]}, rank {other}: "
                        f"{fields[other].get(name, ('', 'missing'))[1]})")
    if not said:  # only the digests differ: ranks running different scratchrnn versions
        said = ["how they describe their settings (different scratchrnn versions?)"]
    listed = ", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0]
    return (f"the MPI ranks disagree on {listed}; start every rank with the same flags and "
            "the same files")


def report_early(exc: ScratchRNNError, voice: Voice = PYTHON) -> None:
    """A rank other than 0 that failed before training began (a bad flag in its own command
    line) tells rank 0, which names it if it is waiting for this rank; a rank 0 that failed
    alike has said the same already, and mpiexec ends the job. Without MPI, nothing to do.
    The timeout is fixed: a bad SCRATCHRNN_MPI_TIMEOUT may be what this rank failed on."""
    try:
        comm = connect(30.0, voice)
    except ScratchRNNError:
        return
    comm.fail(exc)  # never returns


class _StreamRows:
    """A Generator stand-in for model.forward's dropout: it draws the (T, B, H) mask of all B
    streams (or locked dropout's (1, B, H)), exactly as one process would, and hands back this
    rank's rows. A weight-drop mask (2-D, W_h's shape) belongs to no stream: every rank draws
    it whole, the same one."""

    def __init__(self, rng: np.random.Generator, batch: int, rows: slice):
        self.rng, self.batch, self.rows = rng, batch, rows

    def random(self, shape, dtype=np.float64):
        if len(shape) != 3:
            return self.rng.random(shape, dtype=dtype)  # (H, G*H) shared by all streams
        T, _, H = shape
        return self.rng.random((T, self.batch, H), dtype=dtype)[:, self.rows]  # (T|1, B/N, H)


class MPIComm:
    """What the training loop asks of its peers; Alone is the one-process version."""

    def __init__(self, MPI, comm, timeout: float, voice: Voice = PYTHON):
        self.MPI, self.comm, self.timeout, self.voice = MPI, comm, timeout, voice
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.steps = 0  # reductions so far: the test hook's clock
        self.saved = None  # the run's last checkpoint, which a failure points to
        kind, rank, step = (os.environ.get(FAULT_VAR, "") + "::").split(":")[:3]
        self._fault = (kind, int(rank), int(step)) if kind else None

    def rows(self, batch: int) -> slice:
        if batch % self.size:
            raise ScratchRNNError(f"`batch` {batch} does not split evenly over {self.size} MPI "
                                  f"ranks; use a multiple of {self.size}, or another -n")
        n = batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def dropout_rng(self, rng: np.random.Generator, batch: int):
        return _StreamRows(rng, batch, self.rows(batch))

    def reduce(self, grads: dict, loss: float, clock: float):
        """Global mean gradients and loss, and rank 0's clock (seconds), on every rank."""
        self.steps += 1
        self._test_fault()
        keys = sorted(grads)
        dtype = grads[keys[0]].dtype
        buf = np.concatenate([grads[k].ravel() for k in keys]  # (P + 2,)
                             + [np.array([loss, clock if self.rank == 0 else 0.0], dtype)])
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), "gradients")
        buf[:-1] /= self.size
        out, at = {}, 0
        for k in keys:
            out[k] = buf[at:at + grads[k].size].reshape(grads[k].shape)
            at += grads[k].size
        return out, float(buf[-2]), float(buf[-1])

    def agree(self, stopped: str | None) -> str | None:
        """The stop every rank takes: a signal seen by any rank, else the first other reason."""
        code = np.array([STOPS.index(stopped) if stopped else len(STOPS)], np.int64)
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, code, op=self.MPI.MIN), "stop flag")
        return STOPS[code[0]] if code[0] < len(STOPS) else None

    def gather_state(self, state: dict) -> dict | None:
        """Every stream's hidden state on rank 0, in stream order (None elsewhere)."""
        keys = sorted(state)
        local = np.stack([state[k] for k in keys])  # (S, B/N, H)
        full = np.empty((self.size, *local.shape), local.dtype) if self.rank == 0 else None
        self._wait(self.comm.Igather(local, full, root=0), "hidden states")
        if self.rank:
            return None
        return {k: np.concatenate(full[:, i]) for i, k in enumerate(keys)}  # (B, H) each

    def barrier(self, what: str) -> None:
        self._wait(self.comm.Ibarrier(), what)

    def check_same(self, cfg, ckpt, allow_new_text: bool) -> None:
        """Stop every rank with one line unless all were started alike (run_fields): 32 bytes
        from each rank, and only when those differ, every rank's settings to name the ones
        that differ. Runs before the run folder is made and before anything is allocated."""
        fields = run_fields(cfg, ckpt, allow_new_text)
        mine = bytes.fromhex(_digest(json.dumps({k: v[0] for k, v in fields.items()},
                                                sort_keys=True).encode()))
        digests = np.empty((self.size, len(mine)), np.uint8)  # (N, 32)
        self._wait(self.comm.Iallgather(np.frombuffer(mine, np.uint8), digests), "settings")
        if (digests == digests[0]).all():
            return
        payload = np.frombuffer(json.dumps(fields).encode(), np.uint8)  # a few kB: values cut
        sizes = np.empty(self.size, np.int64)
        self._wait(self.comm.Iallgather(np.array([payload.size], np.int64), sizes), "settings")
        every = np.empty(int(sizes.sum()), np.uint8)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self._wait(self.comm.Iallgatherv(payload, [every, sizes, starts, self.MPI.BYTE]),
                   "settings")
        raise Disagreement(disagreement(
            [json.loads(every[a:a + n].tobytes()) for a, n in zip(starts, sizes, strict=True)]))

    def _wait(self, request, what: str) -> None:
        """Poll until `request` completes. Rank 0 alone keeps the deadline (the others wait for
        it while it evaluates and saves) and listens for a failing rank's report."""
        deadline, pause = time.monotonic() + self.timeout, 0.0
        status = self.MPI.Status()
        while not request.Test():
            if self.rank == 0:
                if self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=ERROR_TAG, status=status):
                    report = bytearray(status.Get_count(self.MPI.BYTE))
                    self.comm.Recv([report, self.MPI.BYTE], status.Get_source(), ERROR_TAG)
                    raise PeerFailure(f"MPI rank {status.Get_source()} of {self.size} failed: "
                                      f"{report.decode(errors='replace')}")
                if time.monotonic() > deadline:
                    raise PeerFailure(
                        f"an MPI rank sent no {what} for {self.timeout:g} s (it hung or died; "
                        "SCRATCHRNN_MPI_TIMEOUT allows slower ranks more)")
            time.sleep(pause)  # spin first: a step's all-reduce takes microseconds to ms
            pause = min(0.01, pause * 2 or 1e-5)

    def _test_fault(self):
        if self._fault is None or self._fault[1:] != (self.rank, self.steps):
            return
        if self._fault[0] == "exit":
            os._exit(3)
        if self._fault[0] == "hang":
            time.sleep(3600)
        raise RuntimeError(f"test fault at step {self.steps}")

    def fail(self, exc: BaseException) -> None:
        """End the whole job after `exc` on this rank: rank 0 prints the one line and aborts;
        another rank reports to rank 0 and waits to be aborted (then aborts itself)."""
        interrupted = isinstance(exc, Interrupted | KeyboardInterrupt)
        text = self.voice(str(exc)) if isinstance(exc, ScratchRNNError) else (
            "interrupted" if interrupted else f"{type(exc).__name__}: {exc}")
        code = getattr(exc, "exit_code", 130) if interrupted else 1
        if isinstance(exc, PeerFailure):
            text += (f"; the job is stopped, its last checkpoint is {self.saved} (continue "
                     f"with: {self.voice.resume(self.saved.parent)})" if self.saved else
                     "; the job is stopped before it saved a checkpoint")
        if self.rank == 0:
            print(f"scratchrnn: {text}" if interrupted else f"scratchrnn: error: {text}",
                  file=sys.stderr, flush=True)
        elif not isinstance(exc, Disagreement):  # rank 0 says that one itself
            data = bytearray(text.encode())
            request = self.comm.Isend([data, self.MPI.BYTE], dest=0, tag=ERROR_TAG)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline and not request.Test():
                time.sleep(0.01)
        if self.rank:
            time.sleep(min(self.timeout, 30.0))  # rank 0 aborts the job meanwhile
        self.comm.Abort(code)


@contextmanager
def session(timeout: float | None = None, voice: Voice = PYTHON):
    """`with session() as comm: train(..., comm=comm)`: any exception on any rank ends the
    whole job (one line from rank 0, said in `voice`) instead of leaving the other ranks
    waiting forever."""
    comm = connect(timeout, voice)
    try:
        yield comm
    except BaseException as e:  # noqa: B036 - every way out must take the other ranks down
        comm.fail(e)
        raise
