"""Training throughput of one process with 2 BLAS threads against 2 MPI ranks with 1 thread
each (`--distributed mpi`'s step: half the streams per rank, one all-reduce of the gradients,
the stop flag agreed), side by side for each cell, H and B on this machine.

Each measurement is a fresh process (or mpiexec job): a full training step as train._loop runs
it -- forward with dropout 0.1 (the masks of all B streams drawn on every rank), backward, the
all-reduce, clipping (+-5), Adam -- timed over a fixed number of steps after two warm-up steps.
chars/s counts the global batch: B * T per step. T = 50, one layer unless --layers.

    python benchmarks/bench_distributed.py            # 3 cells x H 128/256/512 x B 8/32/64
    python benchmarks/bench_distributed.py --quick    # H=256 only, fewer steps
    python benchmarks/bench_distributed.py --default  # also the default model's step time

Needs mpiexec and mpi4py (pip install 'scratchrnn[mpi]'); as root, Open MPI wants
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (set here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

V, T = 96, 50
SRC = Path(__file__).resolve().parents[1] / "src"


def worker(cell: str, H: int, B: int, steps: int, layers: int, distributed: bool) -> None:
    import numpy as np

    from scratchrnn.nn import optim
    from scratchrnn.nn.model import CharRNN, backward, forward
    from scratchrnn.training.distributed import Alone

    if distributed:
        from scratchrnn.training.distributed import connect

        comm = connect()
    else:
        comm = Alone()
    rows = comm.rows(B)
    data = np.random.default_rng(0).integers(0, V, (B, T * (steps + 3) + 1)).astype(np.uint8)
    streams = data[rows]  # (B/N, L)
    model = CharRNN(V, H, cell, num_layers=layers, dropout=0.1)
    opt = optim.init_state("adam", model.params)
    state = model.init_state(len(streams))
    drop_rng = comm.dropout_rng(np.random.default_rng([0, 1]), B)
    t0 = 0.0
    for j in range(steps + 2):
        if j == 2:
            comm.barrier("start")
            t0 = time.perf_counter()
        x, y = streams[:, j * T:(j + 1) * T], streams[:, j * T + 1:(j + 1) * T + 1]
        loss, state, cache = forward(model.params, model.config, x, y, state, drop_rng)
        grads, _ = backward(cache, model.config)
        grads, loss, _ = comm.reduce(grads, loss, 0.0)
        optim.clip(grads, 5.0)
        optim.update("adam", model.params, grads, opt, 1e-3)
        comm.agree(None)
    comm.barrier("end")
    seconds = time.perf_counter() - t0
    if comm.rank == 0:
        print(json.dumps({"chars_per_sec": B * T * steps / seconds,
                          "step_ms": 1000 * seconds / steps}))


def measure(mode: str, cell: str, H: int, B: int, steps: int, layers: int) -> dict:
    threads = mode[-1]  # "1x2": 1 rank x 2 threads, "2x1", "1x1"
    env = dict(os.environ, PYTHONPATH=str(SRC), OPENBLAS_NUM_THREADS=threads,
               OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = [sys.executable, __file__, "--worker", cell, str(H), str(B), str(steps), str(layers)]
    if mode == "2x1":
        cmd = [shutil.which("mpiexec"), "-n", "2", *cmd, "mpi"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="H=256 only, 8 steps")
    ap.add_argument("--steps", type=int, help="timed steps per measurement")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--with-1x1", action="store_true",
                    help="also 1 rank x 1 thread: how much of the gain is the second thread's")
    ap.add_argument("--default", action="store_true",
                    help="also time the default model (GRU 2x256, B=32, T=50) in both modes")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        cell, H, B, steps, layers, *mpi = args.worker
        worker(cell, int(H), int(B), int(steps), int(layers), bool(mpi))
        return
    if not shutil.which("mpiexec"):
        raise SystemExit("mpiexec not found: install an MPI (apt-get install openmpi-bin "
                         "libopenmpi-dev) and pip install mpi4py")
    sizes = [256] if args.quick else [128, 256, 512]
    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average), {os.cpu_count()} cores")
    extra = f" {'1 rank x 1 thr':>15}" if args.with_1x1 else ""
    print(f"{'cell':5} {'H':>4} {'B':>3} {'1 rank x 2 thr':>15} {'2 ranks x 1 thr':>16} "
          f"{'ratio':>6}{extra}   chars/s (step ms)")
    for cell in ("rnn", "lstm", "gru"):
        for H in sizes:
            for B in (8, 32, 64):
                work = B * H / (8 * 128)  # relative to the smallest case
                steps = args.steps or (8 if args.quick else max(6, min(40, round(80 / work))))
                one = measure("1x2", cell, H, B, steps, args.layers)
                two = measure("2x1", cell, H, B, steps, args.layers)
                line = (f"{cell:5} {H:4} {B:3} {one['chars_per_sec']:9,.0f} "
                        f"({one['step_ms']:4.0f}) {two['chars_per_sec']:10,.0f} "
                        f"({two['step_ms']:4.0f}) "
                        f"{two['chars_per_sec'] / one['chars_per_sec']:6.2f}")
                if args.with_1x1:
                    solo = measure("1x1", cell, H, B, steps, args.layers)
                    line += f" {solo['chars_per_sec']:9,.0f} ({solo['step_ms']:4.0f})"
                print(line, flush=True)
    if args.default:  # the scaling analysis' compute time: B/N streams per machine
        m = measure("2x1", "gru", 256, 32, args.steps or 20, 2)
        print(f"default model GRU 2x256 T=50 dropout 0.1, B=32, 2 ranks x 1 thread: "
              f"{m['step_ms']:.1f} ms/step")
        m = measure("1x2", "gru", 256, 32, args.steps or 20, 2)
        print(f"default model GRU 2x256 T=50 dropout 0.1, B=32, 1 rank x 2 threads: "
              f"{m['step_ms']:.1f} ms/step")
        for B in (32, 16, 8, 4, 2, 1):  # one thread: a busy machine upsets it least
            m = measure("1x1", "gru", 256, B, args.steps or 20, 2)
            print(f"default model GRU 2x256 T=50 dropout 0.1, B={B:2}, 1 rank x 1 thread: "
                  f"{m['step_ms']:.1f} ms/step, {m['chars_per_sec']:,.0f} chars/s")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
