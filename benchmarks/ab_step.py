"""Did a refactor slow a training step? Forward and backward of one window, this checkout against
another, in fresh processes taking turns, on one BLAS thread and timed in CPU seconds.

On a shared machine the wall clock moves by +-15% between two runs of bench_train.py (the
neighbours' load, not the code); one thread and process CPU time make a 2% difference visible.

    git archive HEAD~5 src | tar -x -C /tmp/before
    python benchmarks/ab_step.py --baseline /tmp/before/src --rounds 4   # rnn, lstm, gru; B=1, 64
    python benchmarks/ab_step.py --baseline /tmp/before/src --cells gru --batches 1 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

WORKER = """
import sys, time
import numpy as np
try:
    from scratchrnn.nn.model import CharRNN, backward, forward
except ImportError:  # a checkout from before the subpackages (issue 29)
    from scratchrnn.model import CharRNN, backward, forward
cell, (B, H, T, reps) = sys.argv[1], map(int, sys.argv[2:6])
m = CharRNN(96, H, cell, num_layers=1)
rng = np.random.default_rng(0)
x, y = rng.integers(0, 96, (B, T)), rng.integers(0, 96, (B, T))
state = m.init_state(B)
times = []
for _ in range(reps + 2):
    t = time.process_time()
    _, _, cache = forward(m.params, m.config, x, y, state)
    backward(cache, m.config)
    times.append(time.process_time() - t)
print(sorted(times[2:])[len(times[2:]) // 2])
"""


def step_ms(src: str, cell: str, batch: int, hidden: int, seq: int, reps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(PYTHONPATH=src, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", WORKER, cell, str(batch), str(hidden), str(seq),
                          str(reps)], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="another checkout's src/")
    ap.add_argument("--src", default=str(ROOT / "src"), help="this checkout's src/ (default)")
    ap.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10, help="steps timed per process (median)")
    args = ap.parse_args()
    print(f"one window forward+backward, H={args.hidden}, T={args.seq_len}, one layer, "
          f"1 BLAS thread, CPU ms (median of {args.reps}), {args.rounds} interleaved rounds")
    print(f"{'cell':5} {'B':>4} | {'baseline':>18} | {'this':>18} | ratio")
    for cell in args.cells:
        for batch in args.batches:
            base, this = [], []
            for r in range(args.rounds):  # taking turns, ABBA: drift hits both sides alike
                order = [(args.baseline, base), (args.src, this)][:: 1 if r % 2 == 0 else -1]
                for src, times in order:
                    times.append(step_ms(src, cell, batch, args.hidden, args.seq_len,
                                         args.reps))
            b, t = statistics.median(base), statistics.median(this)
            print(f"{cell:5} {batch:4} | {b:8.2f} ({min(base):.2f}-{max(base):.2f}) | "
                  f"{t:8.2f} ({min(this):.2f}-{max(this):.2f}) | {t / b:.3f}")


if __name__ == "__main__":
    main()
