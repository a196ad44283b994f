"""Training throughput of scratchrnn against the same model in PyTorch, side by side.

Each measurement runs in a fresh worker process (so neither library's thread pools or caches
disturb the other), alternating implementations; the table shows median chars/s with min-max
over repetitions and the ratio scratchrnn / PyTorch. One full training step is timed: forward,
backward, clipping (+-5), Adam update, with the hidden state carried between windows.

The PyTorch peer is what a PyTorch user writes for a character model: nn.Embedding(V, V) ->
nn.{RNN,LSTM,GRU}(V, H) -> nn.Linear(H, V), cross-entropy, clip_grad_value_, Adam. Its
embedding has the width of a one-hot input, so both models do the same arithmetic.

    python benchmarks/bench_train.py                 # full table (about 10 minutes)
    python benchmarks/bench_train.py --quick         # H=256 only
    python benchmarks/bench_train.py --unset-openblas  # also with OPENBLAS_CORETYPE etc. unset
    python benchmarks/bench_train.py --baseline /tmp/old/src  # also an older scratchrnn, per row
    python benchmarks/bench_train.py --threads 1       # every library on one thread
    python benchmarks/bench_train.py --cpu-time        # one thread, chars per CPU-second

--baseline runs a third worker per row with PYTHONPATH set to another checkout's src/, so a
change is measured before and after under the same load; --threads sets OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS for every worker (on a machine shared with other
jobs, a thread pool that spins while waiting for a busy core penalises whoever has more
threads, and one thread each keeps the comparison fair). --cpu-time (implies --threads 1)
times each worker by its own CPU time instead of the wall clock: with one thread per worker
that is the work done, whatever share of the cores the other jobs on the machine take.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

V, T = 96, 100
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def worker(impl: str, cell: str, H: int, B: int, reps: int, layers: int = 1) -> dict:
    import resource

    clock = time.process_time if os.environ.get("BENCH_CPU_TIME") else time.perf_counter

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T)).astype(np.uint8)
    y = rng.integers(0, V, (B, T)).astype(np.uint8)
    if impl == "scratchrnn":
        try:
            from scratchrnn.nn import optim
            from scratchrnn.nn.model import CharRNN, backward, forward
        except ImportError:  # --baseline: a checkout from before the subpackages
            from scratchrnn.model import CharRNN, backward, forward

            from scratchrnn import optim

        model = CharRNN(V, H, cell, num_layers=layers)
        opt = optim.init_state("adam", model.params)
        state = [model.init_state(B)]

        def step():
            loss, state[0], cache = forward(model.params, model.config, x, y, state[0])
            grads, _ = backward(cache, model.config)
            optim.clip(grads, 5.0)
            optim.update("adam", model.params, grads, opt, 1e-3)
    else:
        import torch

        kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        emb, rnn, out = torch.nn.Embedding(V, V), kind(V, H, layers, batch_first=True), \
            torch.nn.Linear(H, V)
        params = [*emb.parameters(), *rnn.parameters(), *out.parameters()]
        opt = torch.optim.Adam(params, 1e-3)
        xt, yt = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
        hidden = [None]

        def step():
            o, h = rnn(emb(xt), hidden[0])
            hidden[0] = tuple(a.detach() for a in h) if isinstance(h, tuple) else h.detach()
            loss = torch.nn.functional.cross_entropy(out(o).reshape(-1, V), yt.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_value_(params, 5.0)
            opt.step()

    for _ in range(2):
        step()
    t0 = clock()
    step()
    per_step = clock() - t0
    n = max(2, int(0.6 / max(per_step, 1e-4)))  # about 0.6 s per repetition
    rates = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(n):
            step()
        rates.append(n * B * T / (clock() - t0))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rates": rates, "rss_mb": rss_mb}


def sampling_worker(cell: str, H: int) -> dict:
    import scratchrnn as sr

    clock = time.process_time if os.environ.get("BENCH_CPU_TIME") else time.perf_counter
    model, vocab = sr.CharRNN(V, H, cell), sr.Vocab.ascii()
    sr.sample(model, vocab, "It", 200)
    n = 4000
    t0 = clock()
    sr.sample(model, vocab, "It", n, temperature=0.8, seed=1)
    return {"rate": n / (clock() - t0)}


def gemm_peak() -> float:
    import numpy as np

    clock = time.process_time if os.environ.get("BENCH_CPU_TIME") else time.perf_counter
    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    c = a @ a
    best = 0.0
    for _ in range(6):
        t0 = clock()
        np.matmul(a, a, out=c)
        best = max(best, 2 * n ** 3 / (clock() - t0) / 1e9)
    return best


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture')}, "
                         f"{i['num_threads']} threads)" for i in info)
    except ImportError:
        import numpy as np

        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name')} {cfg.get('version')} (install threadpoolctl for the kernel)"


def run(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, *cmd], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def flops_per_char(cell: str, H: int, layers: int = 1) -> float:
    """Model FLOPs per character of a training step: 3 passes (forward, and backward's two
    products) x 2 FLOPs per multiply-add over the recurrent, deeper-input and output weights.
    The vanilla RNN case is 6 H (H + V)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    per_layer = [H * G * H + (H * G * H if k else 0) for k in range(layers)]
    return 6.0 * (sum(per_layer) + H * V)


def fmt(rates):
    return f"{statistics.median(rates):>9,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def table(env: dict, configs, reps: int, peak: float, torch_ok: bool,
          baseline: str | None = None) -> list[dict]:
    rows = []
    print(f"{'cell':5} {'H':>4} {'B':>4} | {'scratchrnn chars/s (min-max)':>30} | "
          f"{'PyTorch chars/s (min-max)':>30} | ratio | GFLOP/s | % peak | RSS MB ours/torch"
          + (" | baseline chars/s, its ratio, speed-up" if baseline else ""))
    for cell, H, B in configs:
        ours = run(["--worker", "scratchrnn", cell, str(H), str(B), str(reps)], env)
        theirs = run(["--worker", "torch", cell, str(H), str(B), str(reps)], env) \
            if torch_ok else {"error": "torch not installed"}
        old = run(["--worker", "scratchrnn", cell, str(H), str(B), str(reps)],
                  {**env, "PYTHONPATH": baseline}) if baseline else {}
        if "error" in ours:
            print(f"{cell:5} {H:>4} {B:>4} | scratchrnn failed: {ours['error']}")
            continue
        med = statistics.median(ours["rates"])
        gflops = med * flops_per_char(cell, H) / 1e9
        ratio = med / statistics.median(theirs["rates"]) if "rates" in theirs else float("nan")
        theirs_txt = fmt(theirs["rates"]) if "rates" in theirs else theirs["error"][:30]
        print(f"{cell:5} {H:>4} {B:>4} | {fmt(ours['rates']):>30} | {theirs_txt:>30} | "
              f"{ratio:5.2f} | {gflops:7.1f} | {100 * gflops / peak:5.1f}% | "
              f"{ours['rss_mb']:.0f}/{theirs.get('rss_mb', float('nan')):.0f}", end="")
        if "rates" in old:
            before = statistics.median(old["rates"])
            theirs_med = statistics.median(theirs["rates"]) if "rates" in theirs else float("nan")
            print(f" | {before:9,.0f} {before / theirs_med:5.2f} {med / before:5.2f}x", end="")
        print(flush=True)
        rows.append(dict(cell=cell, H=H, B=B, ours=med, ratio=ratio, gflops=gflops))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, cell, H, B, reps = sys.argv[2:7]
        print(json.dumps(worker(impl, cell, int(H), int(B), int(reps))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--sampling-worker":
        print(json.dumps(sampling_worker(sys.argv[2], int(sys.argv[3]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--peak":
        print(json.dumps({"peak": gemm_peak(), "blas": blas_info()}))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="H=256 only")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--unset-openblas", action="store_true",
                    help=f"repeat the table with {' and '.join(OPENBLAS_VARS)} unset")
    ap.add_argument("--baseline", metavar="SRC",
                    help="also time the scratchrnn found under this src/ folder, per row")
    ap.add_argument("--threads", type=int, help="threads for every library in every worker")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread per worker, timed by its CPU time (for a loaded machine)")
    args = ap.parse_args()
    if args.cpu_time:
        args.threads = 1
        os.environ["BENCH_CPU_TIME"] = "1"
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
    if args.threads:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(args.threads)
    try:
        import torch

        torch_ok = True
        torch_txt = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_ok, torch_txt = False, "torch not installed: scratchrnn figures only"
    sizes = (256,) if args.quick else (128, 256, 512)
    configs = [(c, H, B) for c in ("rnn", "lstm", "gru") for H in sizes for B in (1, 64)]
    configs.append(("rnn", 512, 128))
    envs = [("as set", dict(os.environ))]
    if args.unset_openblas:
        envs.append(("OPENBLAS variables unset",
                     {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}))
    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} CPUs; python {platform.python_version()}; {torch_txt}")
    print("OPENBLAS variables: " + ", ".join(f"{k}={os.environ.get(k, '(unset)')}"
                                             for k in OPENBLAS_VARS))
    print(f"threads per library: {args.threads or 'default'}; clock: "
          f"{'CPU time' if args.cpu_time else 'wall'}; load average (1, 5, 15 min): "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    for label, env in envs:
        peak = run(["--peak"], env)
        print(f"\n== {label}: BLAS {peak['blas']}; float32 GEMM peak (2048^3) "
              f"{peak['peak']:.0f} GFLOP/s; T={T}, V={V}, Adam, clip +-5 ==")
        table(env, configs, args.reps, peak["peak"], torch_ok, args.baseline)
        print("\nsampling, one stream, temperature 0.8 (chars/s):")
        for cell in ("rnn", "lstm", "gru"):
            rates = [run(["--sampling-worker", cell, str(H)], env).get("rate", float("nan"))
                     for H in (128, 512)]
            print(f"  {cell:5} H=128 {rates[0]:>8,.0f}   H=512 {rates[1]:>8,.0f}", end="")
            if args.baseline:
                base_env = {**env, "PYTHONPATH": args.baseline}
                old = [run(["--sampling-worker", cell, str(H)], base_env).get("rate",
                                                                                float("nan"))
                       for H in (128, 512)]
                print(f"   (baseline {old[0]:,.0f} / {old[1]:,.0f})", end="")
            print(flush=True)
    print("\nload average at the end (1, 5, 15 min): "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
