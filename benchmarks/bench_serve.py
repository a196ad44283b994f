"""Bounded load on the playground server, on 127.0.0.1 only: C concurrent clients each send R
requests, a mix of /api/inspect (a prompt of --inspect-chars), /api/generate (--length
characters, streamed and read to the end) and /api/model, then the server is stopped with
SIGINT. Reports errors and latency percentiles per endpoint (for generate also the time to the
first character). The server is a real `python -m scratchrnn serve` process, so the clients'
threads do not share its interpreter lock.

    python benchmarks/bench_serve.py [RUN] [--clients 20] [--requests 50] [--length 200]
        [--hostile 64]

On Linux each client connects from its own loopback address (127.0.0.10, 127.0.0.11, ...), as
separate users would: the server caps the connections of one address (serve.MAX_PER_CLIENT).
--hostile N adds N connections from one more address (127.0.0.250) that trickle a header
byte every second for the whole run, reconnecting whenever the server drops them: the other
clients' latency should not move, and the report counts what the hostile ones got.

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
import socket
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


HOSTILE = "127.0.0.250"


def source(i: int) -> tuple[str, int] | None:
    """Client i's own loopback address where the system has them all (Linux), else None."""
    return (f"127.0.0.{10 + i % 240}", 0) if sys.platform.startswith("linux") else None


def one(port: int, method: str, path: str, body: dict | None,
        src: tuple[str, int] | None = None) -> tuple[int, float, float, int]:
    """(status, seconds to the first body byte, seconds to the end, body bytes)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=src)
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
            status, t_first, t_all, size = one(port, *req, src=source(i))
            if status != 200 or (kind == "generate" and size != length):
                errors.append(f"{kind}: status {status}, {size} bytes")
            out[kind].append((t_first, t_all))
        except Exception as e:  # noqa: BLE001 (counted and reported)
            errors.append(f"{kind}: {type(e).__name__}: {e}")


def hostile(port: int, n: int, stop: threading.Event, got: dict) -> None:
    """n connections from one address, each sending one header byte a second; whatever the
    server answers (a 503 at once, a 408 after its request time) is counted and the
    connection opened again."""
    socks: list = [None] * n
    while not stop.is_set():
        for k in range(n):
            try:
                if socks[k] is None:
                    socks[k] = socket.create_connection(("127.0.0.1", port), timeout=5,
                                                        source_address=(HOSTILE, 0))
                    socks[k].sendall(b"POST /api/generate HTTP/1.1\r\nX-Slow: ")
                    socks[k].setblocking(False)
                answer = socks[k].recv(64)  # an answer first: a send could meet a closed socket
            except BlockingIOError:
                try:
                    socks[k].send(b"a")
                    continue
                except OSError as e:
                    answer = type(e).__name__.encode()
            except OSError as e:
                answer = type(e).__name__.encode()
            status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else \
                (answer.decode() or "closed")
            got[status] = got.get(status, 0) + 1
            socks[k].close()
            socks[k] = None
        stop.wait(1.0)
    for s in socks:
        if s is not None:
            s.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", help="run folder or checkpoint (default: see above)")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=50, help="per client")
    p.add_argument("--length", type=int, default=200, help="characters per generation")
    p.add_argument("--inspect-chars", type=int, default=200, help="characters per inspection")
    p.add_argument("--hostile", type=int, default=0, help="trickling connections from one "
                   "address meanwhile (see above)")
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
            stop, got = threading.Event(), {}
            spoiler = threading.Thread(target=hostile, args=(port, args.hostile, stop, got))
            if args.hostile:
                spoiler.start()
                time.sleep(2)  # they hold what slots they can before the clients start
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            stop.set()
            if args.hostile:
                spoiler.join()
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
              "load_average_1m": round(os.getloadavg()[0], 2), "hostile": args.hostile,
              "hostile_answers": got, "endpoints": {}}
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
        if args.hostile:
            print(f"  {args.hostile} hostile connections from {HOSTILE} got: {got}")
        for line in errors[:5]:
            print("  error:", line)
        for line in result["server_log"]:
            print("  server:", line)
    return 1 if errors or proc.returncode not in (0, 130) else 0


if __name__ == "__main__":
    sys.exit(main())
