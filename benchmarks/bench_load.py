"""Training throughput alone and with a second training started at the same moment, for the
old BLAS thread rule (OPENBLAS_NUM_THREADS = the cores, as NumPy's OpenBLAS picks by itself)
and the new one (no override: scratchrnn chooses, threads.py) side by side.

Each run is the default model (2 x 256 GRU, batch 32, T 50) on the book in a fresh
`scratchrnn train` process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; its speed is the
steady-state chars/s between step 20 and its last logged step (metrics.jsonl). A run stops at
--steps or after --budget seconds, whichever comes first, so a collapsed pair ends in bounded
time. The target: each of two trainings at once keeps at least 40% of its speed alone.

    python benchmarks/bench_load.py                    # old and new, one round (~2 minutes)
    python benchmarks/bench_load.py --rounds 3
    python benchmarks/bench_load.py --variant \
        'spin 2^4:OPENBLAS_NUM_THREADS=2,OPENBLAS_THREAD_TIMEOUT=4'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BOOK = ROOT.parent / "shared" / "data" / "pg98.txt"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", *THREAD_VARS)
B, T, FROM_STEP = 32, 50, 20
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
VARIANTS = {f"old ({CORES} threads forced)": {"OPENBLAS_NUM_THREADS": str(CORES)},
            "new (scratchrnn picks)": {}}


def start(src: Path, text: Path, out: Path, env_extra: dict, steps: int, budget: float):
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(env_extra, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "scratchrnn", "train", "--text", str(text), "--out", str(out),
           "--max-steps", str(steps), "--time-budget", f"{budget}s", "--eval-every", "100000",
           "--log-every", "10", "--sample-length", "0", "--val-chars", "2000", "--seed", "0",
           "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, out: Path) -> tuple[float, str]:
    """(steady-state chars/s, the run's BLAS line)."""
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"training failed ({proc.returncode}): {stderr.strip()}")
    said = [line for line in stdout.splitlines() if "BLAS: " in line]
    blas = said[0].split("(")[0].strip() if said else "BLAS: ?"
    if len(said) > 1:  # the count changed during the run: the first change and the last count
        blas += f", {said[1].split('(')[0].strip()}, {len(said) - 1} change(s)"
    with open(out / "metrics.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    at = {row["step"]: row["elapsed_s"] for row in rows}
    last = max(at)
    if FROM_STEP in at and last > FROM_STEP:
        return (last - FROM_STEP) * B * T / (at[last] - at[FROM_STEP]), blas
    # a collapsed run that did not get past FROM_STEP in its budget: its whole-run speed
    return last * B * T / at[last], f"{blas}; only {last} steps in the budget"


def measure(src, text, tmp: Path, env_extra, n: int, steps, budget) -> list[tuple[float, str]]:
    outs = [tmp / f"run{i}" for i in range(n)]
    procs = [start(src, text, out, env_extra, steps, budget) for out in outs]
    return [finish(p, out) for p, out in zip(procs, outs, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per run at most")
    ap.add_argument("--text", type=Path, default=BOOK)
    ap.add_argument("--src", type=Path, default=SRC, help="the src/ to run (default: this one)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:VAR=VAL,...",
                    help="also this environment (repeatable), e.g. 'one:OPENBLAS_NUM_THREADS=1'")
    args = ap.parse_args()
    if not args.text.is_file():
        raise SystemExit(f"no {args.text}: pass --text")
    variants = dict(VARIANTS)
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        variants[name] = dict(p.split("=", 1) for p in pairs.split(",") if p)
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()}; {args.steps} steps or "
          f"{args.budget:g} s per run; chars/s from step {FROM_STEP}")
    results = {name: {"alone": [], "together": []} for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, env_extra in variants.items():  # interleaved: drift hits all alike
                for n, key in ((1, "alone"), (2, "together")):
                    got = measure(args.src, args.text, Path(tmp) / f"{r}-{name}-{key}",
                                  env_extra, n, args.steps, args.budget)
                    results[name][key].append([cps for cps, _ in got])
                    print(f"  round {r + 1} {name} {key}: "
                          + ", ".join(f"{cps:,.0f} chars/s ({blas})" for cps, blas in got),
                          flush=True)
    print(f"\n{'variant':28} {'alone':>9} {'together (each)':>20} {'worst/alone':>12}")
    for name, res in results.items():
        alone = statistics.median(x for run in res["alone"] for x in run)
        pairs = res["together"]
        each = [statistics.median(p[i] for p in pairs) for i in range(2)]
        worst = min(min(p) for p in pairs)
        print(f"{name:28} {alone:9,.0f} {each[0]:9,.0f} {each[1]:10,.0f} "
              f"{worst / alone:11.0%}")


if __name__ == "__main__":
    main()
