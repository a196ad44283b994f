"""Whole training steps of the tinyshakespeare recipe with and without its options (layer norm,
weight drop, the preset): the step-cost ratios that turn issue 11's time budget into a step
budget for each variant. Real `scratchrnn.train` runs of 90 steps (the time from step 20 to 90,
so start-up and warm-up do not count), rounds interleaved so that a busy machine slows every
variant alike.
BLAS threads as the environment says: run it as the issue's machine runs (2 threads) and with
OPENBLAS_NUM_THREADS=1; layer normalisation's extra work is elementwise NumPy, which a second
BLAS thread does not share, so its ratio is larger with two.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_recipe_steps.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_recipe_steps.py
"""

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import scratchrnn as sr

BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
# "plain" is the recipe (run 11); the preset's own row is the last
VARIANTS = {"plain": {"locked_dropout": False},
            "layer norm": {"layer_norm": True, "locked_dropout": False},
            "layer norm + weight drop 0.2": {"layer_norm": True, "weight_drop": 0.2,
                                             "locked_dropout": False},
            "--preset shakespeare": {"layer_norm": True, "weight_drop": 0.1}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--text", type=Path, default=BOOK)
    args = ap.parse_args()
    if not args.text.is_file():
        raise SystemExit(f"no {args.text}: pass --text")
    per_step = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k, options in VARIANTS.items():
                out = Path(tmp) / f"{r}-{len(per_step[k])}-{k.replace(' ', '_')}"
                cfg = sr.with_preset("shakespeare", text=str(args.text), out=str(out),
                                     max_steps=90, log_every=10, sample_length=0,
                                     val_chars=2000, layer_norm=False, weight_drop=0.0)
                # no clock: a slow machine must still reach step 90
                sr.train(cfg.replace(time_budget=None, **options), progress=False)
                rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
                at = {row["step"]: row["elapsed_s"] for row in rows if "elapsed_s" in row}
                per_step[k].append((at[90] - at[20]) / 70)
    base = statistics.median(per_step["plain"])
    print(json.dumps({"blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "load_avg_1m": round(os.getloadavg()[0], 1),
                      "ms_per_step": {k: round(1000 * statistics.median(v), 1)
                                      for k, v in per_step.items()},
                      "ratio": {k: round(statistics.median(v) / base, 3)
                                for k, v in per_step.items()}}))


if __name__ == "__main__":
    main()
