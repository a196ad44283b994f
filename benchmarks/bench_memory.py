"""Peak memory of preparing and training on a large corpus (default 1 GB, the book repeated):
cleaning and encoding stream through the file into a uint8 file beside the run, and training
reads it memory-mapped with a capped validation split.

    python benchmarks/bench_memory.py               # 1 GB; needs about 2.2 GB of disk
    python benchmarks/bench_memory.py --mb 200
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratchrnn.data.text import strip_gutenberg

SHARED_BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "pg98.txt"


def child(code: str) -> tuple[float, float, str]:
    """Run Python code in a fresh process: (seconds, its peak RSS in MB, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return time.perf_counter() - t0, json.loads(proc.stdout.splitlines()[-1])["rss_mb"], \
        proc.stdout


RSS = "import resource, json; print(json.dumps({'rss_mb': " \
      "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1000, help="corpus size in MB")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args()
    # The book's body only: a Gutenberg end marker would (rightly) end the corpus there.
    book = strip_gutenberg(SHARED_BOOK.read_text(encoding="utf-8-sig")).encode() + b"\n" \
        if SHARED_BOOK.is_file() else b"It was the best of times, it was the worst.\n" * 20000
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        big, run = Path(tmp) / "big.txt", Path(tmp) / "run"
        with open(big, "wb") as f:
            for _ in range(args.mb * 10 ** 6 // len(book) + 1):
                f.write(book)
        size_mb = big.stat().st_size / 1e6
        sec, rss, _ = child(
            "from pathlib import Path; from scratchrnn.data.prepare import encode_file\n"
            f"p = Path({str(run)!r}); p.mkdir()\n"
            f"v, ids = encode_file(Path({str(big)!r}), 'ascii', None, p / 'corpus.u8')\n"
            f"{RSS}")
        print(f"corpus {size_mb:,.0f} MB: prepared in {sec:.1f} s ({size_mb / sec:.1f} MB/s), "
              f"peak RSS {rss:.0f} MB")
        sec, rss, _ = child(
            "import scratchrnn as sr\n"
            f"sr.train(sr.TrainConfig(text={str(big)!r}, out={str(run)!r}, max_steps="
            f"{args.steps}, eval_every={args.steps}, val_chars=100000, sample_length=0),"
            " progress=False, overwrite=True, log=lambda *a: None)\n"
            f"{RSS}")
        print(f"training {args.steps} steps (default model, prepared file reused, "
              f"--val-chars 100000): {sec:.1f} s, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
