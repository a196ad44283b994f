"""Where a training step's time goes, phase by phase, for one layer of a given cell and size.

    python benchmarks/profile_step.py --cell lstm --hidden 256 --batch 64
    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_step.py --cpu-time ...  # on a loaded machine

--cpu-time times each phase by the process's CPU time instead of the wall clock: with one
BLAS thread that is the work done, whatever share of the cores other jobs take.
"""

import argparse
import collections
import time

import numpy as np

from scratchrnn.nn import cells, layers, optim
from scratchrnn.nn.model import CharRNN


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", default="rnn")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cpu-time", action="store_true", help="CPU time instead of wall clock")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    V, T, B, H, cell = 96, args.seq_len, args.batch, args.hidden, args.cell
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T)).astype(np.uint8)
    y = rng.integers(0, V, (B, T)).astype(np.uint8)
    model = CharRNN(V, H, cell)
    p = model.params
    opt = optim.init_state("adam", p)
    layer = {k[3:]: v for k, v in p.items() if k.startswith("l0.")}
    state = {k[3:]: v for k, v in model.init_state(B).items()}
    spent = collections.defaultdict(float)

    def timed(name, f, *a):
        t0 = clock()
        out = f(*a)
        spent[name] += clock() - t0
        return out

    for i in range(args.steps + 2):
        if i == 2:
            spent.clear()  # warm-up steps are not counted
        xproj, ec = timed("embedding forward (gather)", layers.embedding_forward, x.T,
                          layer["W_x"], layer["b"])
        hs, state, cc = timed("recurrence forward", cells.FORWARD[cell], xproj, state, layer)
        logits, oc = timed("output layer forward", layers.dense_forward, hs, p["W_y"], p["b_y"])
        _, ce = timed("softmax cross-entropy forward", layers.softmax_xent_forward,
                      logits.reshape(T * B, V), y.T.reshape(-1))
        dl = timed("softmax cross-entropy backward", layers.softmax_xent_backward, ce)
        dx, g = timed("output layer backward", layers.dense_backward, dl, oc)
        dxp, dp, _ = timed("recurrence backward (incl. dW_h)", cells.BACKWARD[cell], dx, None,
                           cc)
        ge = timed("embedding backward (one-hot^T product)", layers.embedding_backward, dxp, ec)
        grads = {"W_y": g["W"], "b_y": g["b"], "l0.W_x": ge["W"], "l0.b": ge["b"],
                 **{f"l0.{k}": v for k, v in dp.items()}}
        timed("clip", optim.clip, grads, 5.0)
        timed("adam", optim.update, "adam", p, grads, opt, 1e-3)
    total = sum(spent.values())
    print(f"{cell} H={H} B={B} T={T}: {args.steps * B * T / total:,.0f} chars/s")
    for name, sec in spent.items():
        print(f"  {name:40s} {1000 * sec / args.steps:7.2f} ms  {100 * sec / total:5.1f}%")


if __name__ == "__main__":
    main()
