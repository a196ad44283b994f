"""Bounded load on the playground server, on 127.0.0.1 only: C concurrent clients each send R
requests, a mix of /api/inspect (a prompt of --inspect-chars), /api/generate (--length
characters, streamed and read to the end) and /api/model, then the server is stopped with
SIGINT. Reports errors and latency percentiles per endpoint (for generate also the time to the
first character). The server is a real `python -m scratchrnn serve` process, so the clients'
threads do not share its interpreter lock.

    python benchmarks/bench_serve.py [RUN] [--clients 20] [--requests 50] [--length 200]

Without RUN it serves the default model's architecture (2 x 256 GRU, 96 characters) from a
checkpoint made after one training step in a temporary folder: latency depends on the shape
of the network, not on its weights.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import scratchrnn as sr  # noqa: E402

TEXT = ('"Where," said he, "is (the [old] key)?" Nobody knew. It was the best of times, it was '
        "the worst of times, it was the age of wisdom, it was the age of foolishness.\n") * 60


def default_run(folder: Path) -> Path:
    (folder / "text.txt").write_text(TEXT * 4)
    sr.train(sr.TrainConfig(text=str(folder / "text.txt"), out=str(folder / "run"),
                            max_steps=1, eval_every=1, sample_length=0, batch=2, seq_len=16),
             progress=False, log=lambda *a: None)
    return folder / "run"


def start_server(run: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "scratchrnn", "serve", str(run), "--port",
                             "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r} {proc.communicate()[1][-2000:]}")
    return proc, int(m.group(1))


def one(port: int, method: str, path: str, body: dict | None) -> tuple[int, float, float, int]:
    """(status, seconds to the first body byte, seconds to the end, body bytes)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, payload,
                     {"Content-Type": "application/json"} if body is not None else {})
        res = conn.getresponse()
        first = res.read1(65536)
        t_first = time.perf_counter() - t0
        rest = res.read()
        return res.status, t_first, time.perf_counter() - t0, len(first) + len(rest)
    finally:
        conn.close()


def client(port: int, i: int, n: int, length: int, chars: int, out: dict, errors: list) -> None:
    rnd = random.Random(i)
    for j in range(n):
        kind = rnd.choices(["inspect", "generate", "model"], [0.45, 0.45, 0.1])[0]
        if kind == "inspect":
            a = rnd.randrange(0, len(TEXT) - chars)
            req = ("POST", "/api/inspect", {"text": TEXT[a:a + chars]})
        elif kind == "generate":
            req = ("POST", "/api/generate", {"prime": "It was", "length": length,
                                             "temperature": 0.8, "seed": i * 1000 + j})
        else:
            req = ("GET", "/api/model", None)
        try:
            status, t_first, t_all, size = one(port, *req)
            if status != 200 or (kind == "generate" and size != length):
                errors.append(f"{kind}: status {status}, {size} bytes")
            out[kind].append((t_first, t_all))
        except Exception as e:  # noqa: BLE001 (counted and reported)
            errors.append(f"{kind}: {type(e).__name__}: {e}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", help="run folder or checkpoint (default: see above)")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=50, help="per client")
    p.add_argument("--length", type=int, default=200, help="characters per generation")
    p.add_argument("--inspect-chars", type=int, default=200, help="characters per inspection")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else default_run(Path(tmp))
        model = sr.load_checkpoint(run).model
        proc, port = start_server(run)
        try:
            out = {"inspect": [], "generate": [], "model": []}
            errors: list[str] = []
            threads = [threading.Thread(target=client, args=(port, i, args.requests, args.length,
                                                             args.inspect_chars, out, errors))
                       for i in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
    ms = lambda xs, q: round(1000 * float(np.percentile(xs, q)), 1) if xs else None
    result = {"model": repr(model), "clients": args.clients, "requests": args.clients *
              args.requests, "length": args.length, "inspect_chars": args.inspect_chars,
              "wall_s": round(wall, 2), "requests_per_s": round(args.clients * args.requests /
                                                                wall, 1),
              "errors": len(errors), "first_errors": errors[:5], "server_exit": proc.returncode,
              "server_traceback": "Traceback" in err, "server_log": err.splitlines()[:5],
              "cpus": os.cpu_count(),
              "load_average_1m": round(os.getloadavg()[0], 2), "endpoints": {}}
    for kind, rows in out.items():
        ends = [r[1] for r in rows]
        entry = {"n": len(rows), **{f"p{q}_ms": ms(ends, q) for q in (50, 90, 99)}}
        if kind == "generate":
            entry.update({f"first_char_p{q}_ms": ms([r[0] for r in rows], q) for q in (50, 99)})
        result["endpoints"][kind] = entry
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']}: {args.clients} clients x {args.requests} requests in "
              f"{wall:.1f} s ({result['requests_per_s']} requests/s), {len(errors)} errors, "
              f"server exit {proc.returncode}{' with a traceback' if 'Traceback' in err else ''}"
              f" (load average {result['load_average_1m']} on {result['cpus']} CPUs)")
        for kind, e in result["endpoints"].items():
            extra = (f", first character p50 {e['first_char_p50_ms']} ms p99 "
                     f"{e['first_char_p99_ms']} ms" if kind == "generate" else "")
            print(f"  {kind:9s} n={e['n']:4d}  p50 {e['p50_ms']} ms  p90 {e['p90_ms']} ms  "
                  f"p99 {e['p99_ms']} ms{extra}")
        for line in errors[:5]:
            print("  error:", line)
        for line in result["server_log"]:
            print("  server:", line)
    return 1 if errors or proc.returncode not in (0, 130) else 0


if __name__ == "__main__":
    sys.exit(main())
