"""What the zero start state of parallel evaluation streams costs, and what the burn-in buys.

For each run: its validation split read once in order (one stream) against the default
parallel streams without a burn-in (evaluate(burn_in=0), the evaluator before 2026-12-05) and
with it (the default), and how much loss the zero state adds at each offset of a stream
(the mean over the streams after the first, against the same characters read in order). The
time column is each evaluation's wall time, one thread, one run each in the order printed.

    python benchmarks/bench_eval_burn_in.py RUN [RUN ...]
    python benchmarks/bench_eval_burn_in.py --brief RUN [RUN ...]   # one line per run

--brief prints only the two evaluations, without the one-stream reading, the offsets and the
times: a re-evaluation of many runs' checkpoints.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before NumPy loads its BLAS
for _v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_v, None)  # as a user's machine has them

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from scratchrnn.data.corpus import make_streams  # noqa: E402
from scratchrnn.nn.layers import softmax_xent_rows  # noqa: E402
from scratchrnn.nn.model import forward  # noqa: E402
from scratchrnn.store.checkpoint import load_checkpoint  # noqa: E402
from scratchrnn.store.config import TrainConfig  # noqa: E402
from scratchrnn.store.resume import run_corpus  # noqa: E402
from scratchrnn.training.evaluation import default_streams, evaluate  # noqa: E402

OFFSETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)


def per_char(model, streams, window):
    """(B, L-1) loss of each next-character prediction of each stream, from zero states."""
    B, L = streams.shape
    out = np.empty((B, L - 1))  # (B, L-1)
    state = model.init_state(B)
    for s in range(0, L - 1, window):
        x, y = streams[:, s:s + window], streams[:, s + 1:s + window + 1]
        x = x[:, :y.shape[1]]
        _, state, cache = forward(model.params, model.config, x, y, state)
        out[:, s:s + y.shape[1]] = softmax_xent_rows(cache[2]).reshape(y.shape[1], B).T
    return out


def timed(*args, **kwargs):
    """evaluate(*args, **kwargs) and its wall time."""
    t = time.perf_counter()
    value = evaluate(*args, **kwargs)
    return value, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders or checkpoints")
    ap.add_argument("--brief", action="store_true", help="only the two evaluations")
    args = ap.parse_args(argv)
    for run in args.runs:
        ckpt = load_checkpoint(run)
        cfg = TrainConfig.from_dict(ckpt.config)
        data = run_corpus(ckpt, None).val[:cfg.val_chars]
        if args.brief:  # exactly what training and `scratchrnn eval` report, before and now
            old = evaluate(ckpt.model, data, cfg.seq_len, burn_in=0)
            new = evaluate(ckpt.model, data, cfg.seq_len)
            print(f"{run}: zero states {old:.4f}, burn-in {new:.4f} ({new - old:+.4f})")
            continue
        B = default_streams(len(data))
        L = len(data) // B
        data = data[:B * L]  # what the streams read
        model, T = ckpt.model, cfg.seq_len
        whole, t1 = timed(model, data, T, batch=1)
        old, t_old = timed(model, data, T, batch=B, burn_in=0)
        new, t_new = timed(model, data, T, batch=B)
        in_order = per_char(model, data[None, :], T)[0]  # (B*L - 1,)
        parallel = per_char(model, make_streams(data, B), T)  # (B, L-1)
        excess = np.mean([parallel[b] - in_order[b * L:(b + 1) * L - 1]
                          for b in range(1, B)], axis=0)  # (L-1,) by offset in a stream
        print(f"{run}: {len(data):,} characters, {B} streams of {L:,}, windows of {T}")
        print(f"  read in order (1 stream)    {whole:.5f} nats/char  {t1:6.1f} s")
        print(f"  {B} streams, zero states     {old:.5f} ({old - whole:+.5f})  {t_old:6.1f} s")
        print(f"  {B} streams, burn-in (now)   {new:.5f} ({new - whole:+.5f})  {t_new:6.1f} s"
              f"  ({t_new / t_old:.2f}x the time)")
        print("  loss the zero state adds per stream, by offset: at it / from it on (nats)")
        tail = np.cumsum(excess[::-1])[::-1]
        for j in OFFSETS:
            if j < len(excess):
                print(f"    {j:5d}  {excess[j]:+8.4f}  {tail[j]:+8.3f}")


if __name__ == "__main__":
    main()
