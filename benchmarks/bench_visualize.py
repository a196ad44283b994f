"""Size and time of `scratchrnn visualize` for the issue's bound (<= 5 MB, <= 10 s): a trained
run's page over the first N characters of its validation split (`--run`, what users get after
`scratchrnn train`), or else the default model's shape untrained over the book's text (the work
is the same, but an untrained model's activations compress differently). Run as the user runs
it (a fresh process, imports included), then the library steps timed one by one in-process.

    PYTHONPATH=src python benchmarks/bench_visualize.py --run runs/pg98   # 4,000 chars, 3 runs
    PYTHONPATH=src python benchmarks/bench_visualize.py --chars 20000 --runs 1
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scratchrnn as sr
from scratchrnn.inside import page as viz

SHARED_BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "pg98.txt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--run", type=Path, help="a trained run (default: the default shape)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        page = tmp / "inside.html"
        if args.run:
            ckpt = sr.load_checkpoint(args.run)
            model, vocab = ckpt.model, ckpt.vocab
            from scratchrnn.store.resume import run_corpus
            ids = run_corpus(ckpt).val[:args.chars]
            cmd = [str(args.run)]
        else:
            cfg = sr.TrainConfig()
            vocab = sr.Vocab.ascii()
            model = sr.CharRNN(len(vocab), cfg.hidden, cfg.cell, cfg.layers, cfg.dropout, seed=0)
            (tmp / "run").mkdir()
            sr.save_checkpoint(tmp / "run" / "checkpoint.npz", model, vocab, cfg.to_dict(),
                               {"step": 0})
            text = tmp / "text.txt"
            if SHARED_BOOK.is_file():  # skip the front matter: chapter text, quotes and all
                book = SHARED_BOOK.read_text(encoding="utf-8-sig")
                text.write_text(book[20000:20000 + 3 * args.chars])
            else:
                text.write_text('"It was," said he, "the best (and [worst]) of times."\n' * (
                    args.chars // 50 + 1))
            ids = sr.load_corpus(text, vocab, 0.0, 0.0).train[:args.chars]
            cmd = [str(tmp / "run"), "--text", str(text)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        cmd = [sys.executable, "-m", "scratchrnn", "visualize", *cmd, "--chars", str(args.chars),
               "--out", str(page)]
        walls, cpus = [], []  # CPU seconds too: a busy shared machine inflates the wall time
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            page.unlink(missing_ok=True)
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            walls.append(time.perf_counter() - t0)
            cpus.append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
        size = page.stat().st_size
        # the steps, in this process
        t0 = time.perf_counter()
        insp = sr.inspect(model, vocab, vocab.decode(ids), clean=False)
        t1 = time.perf_counter()
        insp.units(3)
        t2 = time.perf_counter()
        viz.render_page(insp)
        t3 = time.perf_counter()
    print(json.dumps({
        "model": f"{model.config.cell} {model.config.num_layers}x{model.config.hidden_size}",
        "trained": str(args.run) if args.run else "no", "chars": args.chars,
        "page_mb": round(size / 1e6, 3), "command_s_median": round(statistics.median(walls), 2),
        "command_s_all": [round(w, 2) for w in walls],
        "command_cpu_s_median": round(statistics.median(cpus), 2), "inspect_s": round(t1 - t0, 2),
        "units_s": round(t2 - t1, 2), "render_s": round(t3 - t2, 2), "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }))


if __name__ == "__main__":
    main()
