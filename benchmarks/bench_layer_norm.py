"""Time of one training step (model.loss_and_grads) with --layer-norm against without, on one
thread, measured interleaved (the rounds alternate which goes first) so that a busy machine
slows both alike; the ratio per round and its median are the result.

    nice -n 19 python benchmarks/bench_layer_norm.py        # H=384, B=32, T=50, 2 layers
    python benchmarks/bench_layer_norm.py --parts           # cells_ln.normalise and its backward

--parts times the normalisation alone, at one step's (B, 3H) and a whole window's (T, B, 3H),
against the textbook NumPy version (ndarray.mean, a squared temporary) in the same run.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import scratchrnn as sr  # noqa: E402
from scratchrnn.nn import cells_ln  # noqa: E402


def textbook(v, G):
    """LN over each of G groups in place, as one writes it first: the peer for --parts."""
    g = v.reshape(*v.shape[:-1], G, -1)  # (..., G, H)
    g -= g.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt((g * g).mean(axis=-1, keepdims=True) + cells_ln.EPS)  # (..., G, 1)
    g *= rstd
    return rstd


def textbook_backward(dxh, xh, rstd, G):
    d = dxh.reshape(*dxh.shape[:-1], G, -1)  # (..., G, H)
    x = xh.reshape(d.shape)
    dot = (d * x).mean(axis=-1, keepdims=True)
    d -= d.mean(axis=-1, keepdims=True)
    d -= x * dot
    d *= rstd
    return dxh


def parts(a) -> None:
    rng = np.random.default_rng(0)
    for shape in ((a.batch, 3 * a.hidden), (a.seq_len, a.batch, 3 * a.hidden)):
        best = time_parts(shape, a.rounds, rng)
        print(f"{shape}: " + ", ".join(f"{k} {1e6 * t:.0f} us" for k, t in best.items())
              + f"; textbook/ours {best['textbook'] / best['normalise']:.2f} forward, "
              f"{best['textbook backward'] / best['backward']:.2f} backward")


def time_parts(shape, rounds, rng) -> dict[str, float]:
    v0 = (3 * rng.standard_normal(shape) + 1).astype(np.float32)
    d0 = rng.standard_normal(shape).astype(np.float32)
    xh = v0.copy()
    rstd = cells_ln.normalise(xh, 3)
    v, d, tmp = np.empty_like(v0), np.empty_like(v0), np.empty_like(v0)
    ref = v0.copy()
    assert np.allclose(textbook(ref, 3), rstd, rtol=1e-5) and np.allclose(ref, xh, atol=1e-5)
    runs = {"normalise": lambda: cells_ln.normalise(v, 3),
            "textbook": lambda: textbook(v, 3),
            "backward": lambda: cells_ln.normalise_backward(d, xh, rstd, 3, tmp),
            "textbook backward": lambda: textbook_backward(d, xh, rstd, 3)}
    number = max(1, 20_000 // shape[0])
    best = {}
    for r in range(rounds):  # interleaved; each call on fresh input
        for name, f in runs.items() if r % 2 == 0 else reversed(runs.items()):
            t = timeit.repeat(f, setup=lambda: (np.copyto(v, v0), np.copyto(d, d0)),
                              number=1, repeat=number)
            best[name] = min(best.get(name, 1.0), min(t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=50)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parts", action="store_true", help="time the normalisation alone")
    a = ap.parse_args()
    if a.parts:
        return parts(a)
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
