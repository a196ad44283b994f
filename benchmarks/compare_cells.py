"""Which model learns most per CPU-minute? Every candidate gets the same wall-clock budget on
the same corpus (default: the book from ../shared/data, else the cached download), then one
table: validation nats/char (the whole val split), steps, and training chars/s.

    python benchmarks/compare_cells.py --budget 90s
    python benchmarks/compare_cells.py --text ../shared/data/tinyshakespeare.txt --val-frac 0.1 \
        --test-frac 0 --budget 10m --only lstm-1-512
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import scratchrnn as sr
from scratchrnn.store.config import parse_duration

SHARED_BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "pg98.txt"
CANDIDATES = ["rnn-1-256", "rnn-1-512", "gru-1-256", "gru-1-512", "gru-2-256", "lstm-1-256",
              "lstm-1-512", "lstm-2-256"]


def run_one(name: str, args, out_root: Path) -> dict:
    cell, layers, hidden = name.split("-")
    cfg = sr.TrainConfig(
        text=args.text, out=str(out_root / name), cell=cell, layers=int(layers),
        hidden=int(hidden), dropout=args.dropout if int(layers) > 1 else 0.0, batch=args.batch,
        seq_len=args.seq_len, lr=args.lr, warmup=args.warmup, min_lr=args.lr / 10,
        epochs=None, max_steps=None, time_budget=parse_duration(args.budget),
        eval_every=10 ** 9, log_every=20, sample_length=0, val_frac=args.val_frac,
        test_frac=args.test_frac, seed=args.seed, ema=args.ema or None)
    t0 = time.perf_counter()
    result = sr.train(cfg, progress=False, log=lambda *a: None)
    rates = [r["chars_per_sec"] for r in result.history[1:]]
    return {"name": name, "val": result.val_loss, "steps": result.step,
            "params": result.model.num_params(), "cps": statistics.median(rates),
            "wall": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default=str(SHARED_BOOK) if SHARED_BOOK.is_file() else None)
    ap.add_argument("--budget", default="90s", help="wall clock per candidate")
    ap.add_argument("--only", nargs="*", default=CANDIDATES, help="cell-layers-hidden names")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--dropout", type=float, default=0.1, help="for 2-layer candidates")
    ap.add_argument("--val-frac", type=float, default=0.05)
    ap.add_argument("--test-frac", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ema", type=float, default=0.0,
                    help="weight average decay (default off, as the tables in BENCHMARKS.md)")
    args = ap.parse_args()
    print(f"corpus {args.text or 'the book (download)'}; budget {args.budget} each; batch "
          f"{args.batch}, seq-len {args.seq_len}, Adam lr {args.lr} (warmup {args.warmup}, "
          f"cosine to lr/10 over the budget); dropout {args.dropout} for 2 layers; "
          f"ema {args.ema or 'off'}")
    print(f"{'model':12} {'params':>9} {'steps':>6} {'chars/s':>9} {'val nats/char':>14} "
          f"{'bits/char':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            r = run_one(name, args, Path(tmp))
            print(f"{r['name']:12} {r['params']:>9,} {r['steps']:>6} {r['cps']:>9,.0f} "
                  f"{r['val']:>14.4f} {r['val'] / 0.6931471805599453:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
