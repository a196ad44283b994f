"""Time of one training step (model.loss_and_grads) with --layer-norm against without, on one
thread, measured interleaved (the rounds alternate which goes first) so that a busy machine
slows both alike; the ratio per round and its median are the result.

    nice -n 19 python benchmarks/bench_layer_norm.py        # H=384, B=32, T=50, 2 layers
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import scratchrnn as sr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=50)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    x = np.random.default_rng(0).integers(0, 96, (a.batch, a.seq_len))  # (B, T)
    steps = {}
    for ln in (False, True):
        m = sr.CharRNN(96, a.hidden, "gru", a.layers, seed=0, layer_norm=ln)
        s = m.init_state(a.batch)
        steps[ln] = lambda m=m, s=s: m.loss_and_grads(x, x, s)
        steps[ln]()  # warm
    times = {False: [], True: []}
    for r in range(a.rounds):
        for ln in (False, True) if r % 2 == 0 else (True, False):
            times[ln].append(min(timeit.repeat(steps[ln], number=1, repeat=3)))
    ratios = sorted(t / u for t, u in zip(times[True], times[False], strict=True))
    print(f"gru    ms per step: {[round(t * 1e3, 1) for t in times[False]]}")
    print(f"gru-ln ms per step: {[round(t * 1e3, 1) for t in times[True]]}")
    print(f"ratio ln/plain: {[round(q, 3) for q in ratios]}, median "
          f"{ratios[len(ratios) // 2]:.3f}")


if __name__ == "__main__":
    main()
