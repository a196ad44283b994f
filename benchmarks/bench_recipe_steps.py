"""Whole training steps of the tinyshakespeare recipe with and without its options (layer norm,
weight drop, the preset): the step-cost ratios that turn issue 11's time budget into a step
budget for each variant. Real `scratchrnn train` runs of 90 steps, each in a fresh process (the
time from step 20 to 90, so start-up and warm-up do not count), rounds interleaved so that a busy
machine slows every variant alike.

--baseline SRC (another checkout's src/, as in bench_train.py) adds the issue's recipe run by
that code, e.g. the commit the issue measured its 7,873 steps with: the budget is 504 s on the
issue's machine, the time that code takes for 7,873 steps, so every speed-up since then is
steps the preset gets.

The runs have OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, as a user's machine; BLAS threads as
the environment says: run it as the issue's machine runs (2 threads) and with
OPENBLAS_NUM_THREADS=1; layer normalisation's extra work is elementwise NumPy, which a second
BLAS thread does not share, so its ratio is larger with two.

    python benchmarks/bench_recipe_steps.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_recipe_steps.py
    mkdir /tmp/issue11 && git archive a61fc9a | tar -x -C /tmp/issue11
    python benchmarks/bench_recipe_steps.py --baseline /tmp/issue11/src \
        --variants plain "--preset shakespeare"

--preset-with FLAGS (repeatable) adds the preset with FLAGS on top as a variant, e.g. another
width: its step cost against the preset's turns the preset's step budget into its own.

    python benchmarks/bench_recipe_steps.py --rounds 2 --variants "--preset shakespeare" \
        --preset-with "--hidden 320" --preset-with "--hidden 448"

--preset-at SRC (repeatable) adds the preset run by another checkout's src/: a change's gain in
the same interleaved run, e.g. main's code against a branch's:

    mkdir /tmp/before && git archive main | tar -x -C /tmp/before
    python benchmarks/bench_recipe_steps.py --rounds 4 --baseline /tmp/issue11/src \
        --variants plain "--preset shakespeare" --preset-at /tmp/before/src

--src SRC runs every variant on another checkout's src/ (default: this one's), e.g. a branch
with a cell main does not have:

    mkdir /tmp/mlstm && git archive mlstm | tar -x -C /tmp/mlstm
    python benchmarks/bench_recipe_steps.py --src /tmp/mlstm/src --rounds 2 \
        --variants "--preset shakespeare" --preset-with "--cell mlstm --hidden 288"
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_train import OPENBLAS_VARS

SRC = Path(__file__).resolve().parents[1] / "src"
BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
# Run 11's recipe, the issue's "plain": flags every checkout since the issue understands.
PLAIN = ["--cell", "gru", "--layers", "2", "--hidden", "384", "--dropout", "0.2", "--batch", "32",
         "--seq-len", "50", "--lr", "3e-3", "--warmup", "100", "--min-lr", "3e-4", "--ema",
         "0.998", "--val-frac", "0.1", "--test-frac", "0"]
VARIANTS = {"plain": PLAIN,
            "layer norm": PLAIN + ["--layer-norm"],
            "layer norm + weight drop 0.2": PLAIN + ["--layer-norm", "--weight-drop", "0.2"],
            "--preset shakespeare": ["--preset", "shakespeare"]}
# --time-budget: the preset's 504 s must not stop a slow machine before step 90
COMMON = ["--max-steps", "90", "--time-budget", "100h", "--log-every", "10", "--sample-length",
          "0", "--val-chars", "2000", "--eval-every", "100000", "--epochs", "1000", "--seed", "0",
          "--quiet"]


def seconds_per_step(src: Path, flags: list[str], text: Path, out: Path) -> float:
    """One fresh `train` process of 90 steps with `src` first on the path; s/step, 20 to 90."""
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env["PYTHONPATH"] = str(src)
    subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--text", str(text), "--out",
                    str(out), *flags, *COMMON], env=env, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    at = {row["step"]: row["elapsed_s"] for row in rows if "elapsed_s" in row}
    return (at[90] - at[20]) / 70


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--text", type=Path, default=BOOK)
    ap.add_argument("--src", type=Path, default=SRC, metavar="SRC",
                    help="the src/ whose code runs the variants (default: this checkout's)")
    ap.add_argument("--baseline", type=Path, metavar="SRC",
                    help="an older checkout's src/: its plain recipe is a row")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--preset-with", action="append", default=[], metavar="FLAGS",
                    help="also the preset with these flags, e.g. '--hidden 320' (repeatable)")
    ap.add_argument("--preset-at", action="append", default=[], type=Path, metavar="SRC",
                    help="also the preset run by another checkout's src/, e.g. the code before "
                         "a change (repeatable)")
    args = ap.parse_args()
    if not args.text.is_file():
        raise SystemExit(f"no {args.text}: pass --text")
    for given in (args.src, args.baseline, *args.preset_at):
        if given is not None and not (given / "scratchrnn").is_dir():
            raise SystemExit(f"{given} holds no scratchrnn package: pass a checkout's src/")
    code = args.src.resolve()
    runs = {k: (code, VARIANTS[k]) for k in args.variants}
    preset = "--preset shakespeare"
    runs.update({f"{preset} {f}": (code, VARIANTS[preset] + shlex.split(f))
                 for f in args.preset_with})
    runs.update({f"{preset} @ {at}": (at.resolve(), VARIANTS[preset]) for at in args.preset_at})
    if args.baseline:
        runs = {f"plain @ {args.baseline}": (args.baseline.resolve(), PLAIN), **runs}
    per_step = {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (k, (src, flags)) in enumerate(runs.items()):
                per_step[k].append(seconds_per_step(src, flags, args.text, Path(tmp) / f"{r}-{i}"))
    base = statistics.median(per_step[next(iter(runs))])
    print(json.dumps({"blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "load_avg_1m": round(os.getloadavg()[0], 1),
                      "ms_per_step": {k: round(1000 * statistics.median(v), 1)
                                      for k, v in per_step.items()},
                      "ratio_to_first": {k: round(statistics.median(v) / base, 3)
                                         for k, v in per_step.items()}}))


if __name__ == "__main__":
    main()
