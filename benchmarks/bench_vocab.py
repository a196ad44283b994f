"""Training speed against the vocabulary size V, scratchrnn and PyTorch side by side (issue 30).

The model is the default run's (TrainConfig's defaults: cell, hidden, layers, dropout, batch,
seq_len, Adam with its betas, clipping, the weight average), over random token ids: only V
changes between rows. Each measurement runs in a fresh worker process, the two libraries
taking turns (ABBA over the repetitions), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.
The table gives median chars/s (min-max), the ratio scratchrnn / PyTorch and each worker's
peak RSS; the largest V's row is the memory of a training run at that vocabulary.

The PyTorch peer is what a PyTorch user writes: nn.Embedding(V, E) -> nn.GRU(E, H, layers,
dropout) (the default run's cell) -> dropout -> nn.Linear(H, V), cross-entropy,
clip_grad_value_, Adam and an exponential moving average by torch._foreach_lerp_, with
E = min(V, H): the one-hot width of bench_train.py's peer while V <= H, and no wider than the
state above it. Its GRU multiplies each embedding by W_ih (E x 3H per character) where
scratchrnn gathers a row of its (V, 3H) table, so the peer does that much more arithmetic; the
output layer (H x V), which dominates at a large V, is the same in both.

Then the output layer alone, at each V with the window's N = batch * seq_len rows: the rate of
its three products, (N, H) x (H, V) forward, and (H, N) x (N, V) for dW, (N, V) x (V, H) for dx
backward, as a share of the host's float32 GEMM rate (2048^3, bench_train.py's gemm_peak), and
the whole output path (products, bias, softmax cross-entropy forward and backward, db) against
its products' time.

    python benchmarks/bench_vocab.py             # V = 96, 256, 2000, 6400 (a few minutes)
    python benchmarks/bench_vocab.py --quick     # V = 96, 6400, one repetition (< 1 minute)
    python benchmarks/bench_vocab.py --cpu-time  # one thread each, chars per CPU-second
    python benchmarks/bench_vocab.py --cpu-time --no-torch --vocab 96 6400 \\
        --baseline /tmp/before/src                # a change, before and after (ABBA)
    python benchmarks/bench_vocab.py --profile    # and a step's CPU time, phase by phase

--baseline times a third worker per row with PYTHONPATH set to another checkout's src/
(`git archive HEAD~3 src | tar -x -C /tmp/before`), taking turns with the others.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import OPENBLAS_VARS, blas_info, fmt, gemm_peak  # noqa: E402

VOCABS, QUICK_VOCABS = (96, 256, 2000, 6400), (96, 6400)


def clock():
    return time.process_time() if os.environ.get("BENCH_CPU_TIME") else time.perf_counter()


def rss_mb(now: bool = False) -> float:
    """The process's peak resident memory (VmHWM), or its resident memory `now` (VmRSS). Not
    getrusage's ru_maxrss: on Linux a child starts from its parent's peak at the fork (here
    the parent's, torch imported), so a small worker would report the parent's memory."""
    field = "VmRSS:" if now else "VmHWM:"
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_run():
    import scratchrnn as sr

    return sr.TrainConfig()


def scratchrnn_step(V: int, x, y, keep: list | None = None):
    """One training step of the default run, as training/loop.py's train_step does it; `keep`
    receives the output layer's W_y."""
    import numpy as np

    from scratchrnn.nn import optim
    from scratchrnn.nn.model import CharRNN, backward, forward
    from scratchrnn.store.config import model_config

    d = default_run()
    model = CharRNN.from_config(model_config(d, V))
    if keep is not None:
        keep.append(model.params["W_y"])
    opt = optim.init_state(d.optimizer, model.params)
    rng = np.random.default_rng(1)  # dropout masks
    state = [model.init_state(d.batch)]

    def step():
        _, state[0], cache = forward(model.params, model.config, x, y, state[0], rng)
        grads, _ = backward(cache, model.config)
        optim.clip(grads, d.clip_value, d.clip_norm)
        optim.update(d.optimizer, model.params, grads, opt, d.lr, (d.beta1, d.beta2))
        if d.ema:
            optim.average(model.params, opt, d.ema)
    return step


def torch_step(V: int, x, y):
    import torch

    d = default_run()
    H, E = d.hidden, min(V, d.hidden)
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[d.cell]
    emb, rnn = torch.nn.Embedding(V, E), kind(E, H, d.layers, batch_first=True,
                                              dropout=d.dropout)
    drop, out = torch.nn.Dropout(d.dropout), torch.nn.Linear(H, V)
    params = [*emb.parameters(), *rnn.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, d.lr, betas=(d.beta1, d.beta2))
    avg = [p.detach().clone() for p in params]
    xt, yt = torch.from_numpy(x.astype("int64")), torch.from_numpy(y.astype("int64"))
    hidden = [None]

    def step():
        o, h = rnn(emb(xt), hidden[0])
        hidden[0] = tuple(a.detach() for a in h) if isinstance(h, tuple) else h.detach()
        loss = torch.nn.functional.cross_entropy(out(drop(o)).reshape(-1, V), yt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, d.clip_value)
        opt.step()
        if d.ema:
            with torch.no_grad():
                torch._foreach_lerp_(avg, params, 1 - d.ema)
    return step


def train_worker(impl: str, V: int, seconds: float) -> dict:
    """chars/s of one implementation at one V, and the process's peak RSS before the model
    and after training."""
    import numpy as np

    import scratchrnn  # noqa: F401  (its import's memory belongs to the baseline)

    if impl == "torch":
        import torch  # noqa: F401
    d = default_run()
    rng = np.random.default_rng(0)
    dtype = np.uint8 if V <= 256 else np.uint16  # as a prepared corpus stores the ids
    x, y = (rng.integers(0, V, (d.batch, d.seq_len)).astype(dtype) for _ in range(2))
    base = rss_mb(now=True)
    step = (scratchrnn_step if impl == "scratchrnn" else torch_step)(V, x, y)
    step()  # warm-up: first-touch allocations, thread pools
    n, t0 = 0, clock()
    while n < 2 or clock() - t0 < seconds:
        step()
        n += 1
    return {"rate": n * d.batch * d.seq_len / (clock() - t0), "rss_mb": rss_mb(),
            "base_mb": base}


def profile_worker(V: int) -> dict:
    """CPU seconds per training step of the default run at V, phase by phase: the layers and
    optimizer functions the step calls, timed by wrapping them; the rest is the recurrence."""
    import numpy as np

    from scratchrnn.nn import layers, optim

    d = default_run()
    rng = np.random.default_rng(0)
    x, y = (rng.integers(0, V, (d.batch, d.seq_len)) for _ in range(2))
    spent: dict[str, float] = {}
    W_y = []

    def timed(module, name, label):
        f = getattr(module, name)

        def wrapper(*a, **k):
            t0 = time.process_time()
            out = f(*a, **k)
            key = label(a) if callable(label) else label
            spent[key] = spent.get(key, 0.0) + time.process_time() - t0
            return out
        setattr(module, name, wrapper)

    output = lambda W: W is W_y[0]  # the output layer's W_y, not a deeper layer's input W_x
    timed(layers, "embedding_forward", "embedding gather (+ b)")
    timed(layers, "embedding_backward", "embedding gradient (dW_x, db)")
    timed(layers, "dense_forward", lambda a: "output product x W_y" if output(a[1])
          else "deeper layers' input products")
    timed(layers, "dense_backward", lambda a: "output products dW_y, dx (+ db_y)"
          if output(a[1][1]) else "deeper layers' input products")
    timed(layers, "softmax_xent_forward", "softmax cross-entropy forward (+ b_y)")
    timed(layers, "softmax_xent_backward", "softmax cross-entropy backward")
    timed(optim, "clip", "clip")
    timed(optim, "update", f"{d.optimizer} update")
    timed(optim, "average", "weight average")
    step = scratchrnn_step(V, x, y, W_y)
    step()
    spent.clear()
    steps = 5
    t0 = time.process_time()
    for _ in range(steps):
        step()
    total = time.process_time() - t0
    spent["recurrence and the rest"] = total - sum(spent.values())
    return {k: v / steps for k, v in spent.items()}


def output_worker(V: int, reps: int) -> dict:
    """Seconds of the output layer's three products and of its whole path at the default
    window, the medians of `reps` runs."""
    import numpy as np

    from scratchrnn.nn import layers

    d = default_run()
    N, H = d.batch * d.seq_len, d.hidden
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H), dtype=np.float32)
    W = (rng.standard_normal((H, V), dtype=np.float32) / np.sqrt(H)).astype(np.float32)
    b = np.zeros(V, np.float32)
    dz = rng.standard_normal((N, V), dtype=np.float32)
    y = rng.integers(0, V, N)

    def path():
        logits, cache = layers.dense_forward(x, W, None)
        _, ce = layers.softmax_xent_forward(logits, y, b)
        layers.dense_backward(layers.softmax_xent_backward(ce), cache)

    work = {"forward": lambda: x @ W, "dW": lambda: x.T @ dz, "dx": lambda: dz @ W.T,
            "path": path}
    out = {}
    for name, f in work.items():
        f()
        times = []
        for _ in range(reps):
            t0 = clock()
            f()
            times.append(clock() - t0)
        out[name] = statistics.median(times)
    return out


def run(args: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def estimate_mb(V: int) -> float:
    """The run's own memory estimate (store/config.py's check_training_memory): parameters
    times copies (weights, gradients, Adam's two moments, the average) and one window."""
    import numpy as np

    from scratchrnn.nn.model import param_count, window_memory
    from scratchrnn.store.config import model_config

    d = default_run()
    cfg = model_config(d, V)
    copies = 2 + {"sgd": 0, "adagrad": 1, "adam": 2}[d.optimizer] + (1 if d.ema else 0)
    params = param_count(cfg)[0] * np.dtype(cfg.dtype).itemsize
    return (copies * params + window_memory(cfg, d.batch, d.seq_len)) / 2 ** 20


def speed_table(vocabs, impls, reps, seconds, env, baseline) -> dict:
    """The chars/s table; returns scratchrnn's seconds per step at each V."""
    d = default_run()
    print(f"{'V':>5} | {'scratchrnn chars/s (min-max)':>30} | {'PyTorch chars/s (min-max)':>30}"
          " | ratio | peak RSS MB, ours (after imports) / torch (after imports) / our estimate"
          + (" | baseline chars/s, speed-up" if baseline else ""))
    step_s = {}
    for V in vocabs:
        res = {impl: [] for impl in impls}
        for r in range(reps):  # ABBA: the implementations take turns going first
            for impl in impls[:: 1 if r % 2 == 0 else -1]:
                lib, wenv = ("scratchrnn", {**env, "PYTHONPATH": baseline}) \
                    if impl == "baseline" else (impl, env)
                res[impl].append(run(["--train-worker", lib, str(V), str(seconds)], wenv))
        ok = {impl: [w for w in res[impl] if "rate" in w] for impl in impls}
        if not ok["scratchrnn"]:
            print(f"{V:>5} | scratchrnn failed: {res['scratchrnn'][0]['error']}")
            continue
        rate = {impl: statistics.median(w["rate"] for w in ok[impl]) if ok[impl]
                else float("nan") for impl in impls}
        step_s[V] = d.batch * d.seq_len / rate["scratchrnn"]
        mem = {impl: f"{max(w['rss_mb'] for w in ok[impl]):.0f} ({ok[impl][0]['base_mb']:.0f})"
               if ok[impl] else "-" for impl in impls}
        theirs = fmt([w["rate"] for w in ok["torch"]]) if ok.get("torch") else \
            (res.get("torch") or [{}])[0].get("error", "not run")
        ratio = f"{rate['scratchrnn'] / rate['torch']:5.2f}" if ok.get("torch") else "    -"
        print(f"{V:>5} | {fmt([w['rate'] for w in ok['scratchrnn']]):>30} | {theirs[:30]:>30} | "
              f"{ratio} | "
              f"{mem['scratchrnn']} / {mem.get('torch', '-')} / {estimate_mb(V):.0f}", end="")
        if baseline:
            print(f" | {rate['baseline']:9,.0f} {rate['scratchrnn'] / rate['baseline']:5.2f}x",
                  end="")
        print(flush=True)
    return step_s


def output_table(vocabs, reps, env, peak, step_s) -> None:
    d = default_run()
    N = d.batch * d.seq_len
    print(f"\noutput layer alone, N = {N} rows x H = {d.hidden}: GFLOP/s of each product (share "
          "of the GEMM rate), and the whole path (products, bias, softmax cross-entropy, db) "
          "against its products' time and a training step's")
    for V in vocabs:
        t = run(["--output-worker", str(V), str(reps)], env)
        if "error" in t:
            print(f"{V:>5} | failed: {t['error']}")
            continue
        flops = 2 * N * d.hidden * V / 1e9
        cells = "  ".join(f"{k} {flops / t[k]:6.1f} ({100 * flops / t[k] / peak:3.0f}%)"
                          for k in ("forward", "dW", "dx"))
        gemms = t["forward"] + t["dW"] + t["dx"]
        share = f", {100 * t['path'] / step_s[V]:.0f}% of a step" if V in step_s else ""
        print(f"{V:>5} | {cells} | path {1e3 * t['path']:7.2f} ms = {t['path'] / gemms:.2f} x "
              f"its products{share}", flush=True)


def profile(V: int, env: dict) -> None:
    one = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    prof = run(["--profile-worker", str(V)], {**env, **one})
    if "error" in prof:
        print(f"\nprofile failed: {prof['error']}")
        return
    total = sum(prof.values())
    print(f"\nwhere a step's time goes at V={V} (one thread, CPU ms per step; "
          f"{total * 1e3:.0f} ms in all):")
    for name, sec in sorted(prof.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {sec * 1e3:8.1f} ms  {100 * sec / total:5.1f}%")


def main() -> None:
    workers = {"--train-worker": lambda a: train_worker(a[0], int(a[1]), float(a[2])),
               "--output-worker": lambda a: output_worker(int(a[0]), int(a[1])),
               "--profile-worker": lambda a: profile_worker(int(a[0])),
               "--peak": lambda a: {"peak": gemm_peak(), "blas": blas_info()}}
    if len(sys.argv) > 1 and sys.argv[1] in workers:
        print(json.dumps(workers[sys.argv[1]](sys.argv[2:])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"V = {', '.join(map(str, QUICK_VOCABS))}, one repetition")
    ap.add_argument("--vocab", type=int, nargs="+", help=f"the V to run (default {VOCABS})")
    ap.add_argument("--reps", type=int, default=4, help="repetitions per V and library")
    ap.add_argument("--threads", type=int, help="threads for every library in every worker")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread per worker, timed by its CPU time (for a loaded machine)")
    ap.add_argument("--baseline", metavar="SRC",
                    help="also time the scratchrnn found under this src/ folder, per row (a "
                    "checkout with store/config.py's model_config)")
    ap.add_argument("--no-torch", action="store_true", help="leave the PyTorch peer out")
    ap.add_argument("--profile", action="store_true",
                    help="also where a step's time goes at the largest V (one thread, CPU time)")
    args = ap.parse_args()
    vocabs = args.vocab or (QUICK_VOCABS if args.quick else VOCABS)
    reps, seconds = (1, 0.3) if args.quick else (args.reps, 1.0)
    if args.cpu_time:
        args.threads = 1
        os.environ["BENCH_CPU_TIME"] = "1"
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    if args.threads:
        env.update({k: str(args.threads) for k in
                    ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    try:
        import torch

        torch_txt = "torch left out" if args.no_torch else f"torch {torch.__version__}"
    except ImportError:
        torch, torch_txt = None, "torch not installed: scratchrnn figures only"
    d = default_run()
    peak = run(["--peak"], env)
    print(f"date {time.strftime('%Y-%m-%d %H:%M')}; {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} CPUs; python {platform.python_version()}; {torch_txt}; threads "
          f"per library: {args.threads or 'default'}; clock: "
          f"{'CPU time' if args.cpu_time else 'wall'}; {' and '.join(OPENBLAS_VARS)} unset")
    print(f"BLAS {peak['blas']}; float32 GEMM rate (2048^3) {peak['peak']:.0f} GFLOP/s")
    print(f"default run: {d.cell}, {d.layers} x {d.hidden}, dropout {d.dropout}, batch "
          f"{d.batch} x seq_len {d.seq_len}, {d.optimizer}, clip {d.clip_value}, ema {d.ema}; "
          "random ids\n")
    impls = ["scratchrnn", *(["torch"] if torch and not args.no_torch else []),
             *(["baseline"] if args.baseline else [])]
    baseline = os.path.abspath(args.baseline) if args.baseline else None
    step_s = speed_table(vocabs, impls, reps, seconds, env, baseline)
    output_table(vocabs, 3 if args.quick else 7, env, peak["peak"], step_s)
    if args.profile:
        profile(max(vocabs), env)


if __name__ == "__main__":
    main()
