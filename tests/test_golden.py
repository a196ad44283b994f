"""The golden record: the outcome of small fixed runs, pinned before the code is restructured,
so that a redesign provably changes no result.

Each case trains a tiny model on a text made here (not the shared data: CI without it still
runs this) and compares what it produced with tests/golden/record.json: the final parameters
(and their moving average), the loss rows of metrics.jsonl, a resume from half way, samples
(temperature and argmax), evaluations (API and `scratchrnn eval`), `sr.inspect`, and the
exported safetensors and ONNX files. Only the public surface is used (`scratchrnn.__all__`,
the documented exporter, found by `exporter()`, the console command in a subprocess), so that
moving modules cannot break the test itself.

How exact (measured 2026-12-07 with NumPy 2.4.6 and OpenBLAS 0.3.31 on a SkylakeX kernel):
1 and 2 BLAS threads give the same bits, but another BLAS kernel (OPENBLAS_CORETYPE=Haswell,
Sandybridge or Prescott) or NumPy's own SIMD (NPY_DISABLE_CPU_FEATURES=X86_V4) changes the last
bits of every float64 run: the values then agree to 1e-14 (float32 runs: 1e-6). So:
- test_values, on every host: float64 values to rtol 1e-12, float32 ones to rtol 1e-4
  (summaries relative to the array's L1 norm), and every discrete output exactly (sample
  texts, top-k ids and ranks, unit rankings, file headers);
- test_bits, on a host that computes like the one that wrote the record (same NumPy, BLAS and
  CPU features: `host()`): sha256 of the raw bytes of every parameter, average,
  inspection and exported tensor. Elsewhere it skips, saying why.
The discrete outputs are checked when the record is written: a 1e-9 relative change of the
weights (1e-5 for float32) must not change them, else a near-tie could flip on another host.

The record changes only on purpose, after a change meant to change results:

    python tests/test_golden.py --write     # recompute and rewrite tests/golden/record.json
    python tests/test_golden.py --dump F    # recompute into F (to compare hosts or settings)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RECORD = Path(__file__).resolve().parent / "golden" / "record.json"
SRC = Path(__file__).resolve().parents[1] / "src"
RTOL = {"float64": 1e-12, "float32": 1e-4}
NUDGE = {"float64": 1e-9, "float32": 1e-5}  # the weight change discrete outputs must survive

# ------------------------------------------------------------------------------------ the text

WORDS = ("the of and to a in that it was he for on are as with his they at be this from I have "
         "or by one had not but what all were when we there can an your which their said if do "
         "will each about how up out them then she many some so these would other into has more "
         "her two like him see time could no make than first been its who now people my made "
         "over did down only way find use may water long little very after words called just "
         "where most know").split()



def exporter():
    """The torch/ONNX exporter wherever the package keeps it: issue 29 moves it from
    scratchrnn.export to scratchrnn.interop.export, and this file must pass unchanged across
    the move."""
    import importlib

    for name in ("scratchrnn.interop.export", "scratchrnn.export"):
        try:
            return importlib.import_module(name).export
        except ModuleNotFoundError:
            continue
    raise AssertionError("no scratchrnn exporter found")

def make_text(n: int = 3000) -> str:
    """Sentences drawn with a fixed linear congruential generator: the same text on every host
    and NumPy version."""
    x, out, line, start = 2026, [], 0, True
    while sum(map(len, out)) < n:
        x = (1103515245 * x + 12345) % 2**31
        word = WORDS[(x >> 8) % len(WORDS)]
        word, start = (word.capitalize() if start else word), False
        r = (x >> 20) % 16
        if r == 0:
            word, start = word + ".", True
        elif r == 1:
            word += ","
        elif r == 2:
            word = f'"{word}"'
        elif r == 3:
            word, start = word + "?", True
        line += len(word) + 1
        if line > 70:
            out.append("\n")
            line = 0
        elif out:
            out.append(" ")
        out.append(word)
    return "".join(out) + "\n"


TEXT = make_text()

# ----------------------------------------------------------------------------------- the cases

BASE = dict(hidden=8, layers=1, batch=4, seq_len=10, max_steps=8, warmup=2, lr=0.02,
            eval_every=1000, log_every=1, sample_length=0, ema=0.0, dropout=0.0, seed=7,
            dtype="float64")

CASES = {
    "rnn": dict(cell="rnn"),
    "rnn2": dict(cell="rnn", layers=2),
    "lstm": dict(cell="lstm"),
    "lstm2": dict(cell="lstm", layers=2),
    "gru": dict(cell="gru"),
    "gru2": dict(cell="gru", layers=2),
    "gru2_dropout": dict(cell="gru", layers=2, dropout=0.3),
    "gru2_locked": dict(cell="gru", layers=2, dropout=0.3, locked_dropout=True),
    "lstm_weight_drop": dict(cell="lstm", weight_drop=0.3),
    "gru_layer_norm": dict(cell="gru", layer_norm=True),
    "gru2_layer_norm": dict(cell="gru", layers=2, layer_norm=True, dropout=0.2),
    "gru_ema": dict(cell="gru", ema=0.7),
    "lstm_orthogonal": dict(cell="lstm", recurrent_init="orthogonal"),
    "gru_orthogonal": dict(cell="gru", recurrent_init="orthogonal", init_std=0.2),
    "rnn_adagrad": dict(cell="rnn", optimizer="adagrad", lr=0.05),
    "lstm_sgd": dict(cell="lstm", optimizer="sgd", lr=0.5, schedule="constant", warmup=0),
    "gru_clip_norm": dict(cell="gru", clip_norm=0.5, clip_value=0.0, beta1=0.8, beta2=0.99),
    "lstm_corpus_vocab": dict(cell="lstm", vocab="corpus", batch=3, seq_len=7, val_chars=60,
                              val_frac=0.1, test_frac=0.02, min_lr=0.002),
    # float32, the default dtype: values to a tolerance
    "gru2_f32": dict(cell="gru", layers=2, dtype="float32", dropout=0.1, ema=0.9),
    "lstm_f32": dict(cell="lstm", dtype="float32"),
}
ONNX_CASES = ("rnn2", "lstm2", "gru2")  # one graph per cell
# Stopped half way, resumed to the end and compared with the straight run. A constant
# schedule, since a cosine one follows the run's own --max-steps.
RESUMED = {
    "gru2_resume": dict(cell="gru", layers=2, dropout=0.2, weight_drop=0.2, ema=0.8,
                        schedule="constant", max_steps=12, eval_every=6),
    "lstm_resume": dict(cell="lstm", locked_dropout=True, dropout=0.2, schedule="constant",
                        max_steps=12, eval_every=6),
}
# The console command with the defaults (and a preset) it fills in: every default that is
# not given here is pinned, the learning rate and its schedule included.
CLI = {
    "cli_defaults": ["--hidden", "16", "--batch", "4", "--seq-len", "10", "--max-steps", "6",
                     "--dtype", "float64"],
    "cli_seed_preset": ["--preset", "seed", "--max-steps", "6", "--dtype", "float64"],
}
CLI_SAMPLE = ["--prime", "The ", "--length", "60", "--temperature", "0.7", "--seed", "3"]
ALL = [*CASES, *RESUMED, *CLI]


def config(name: str) -> dict:
    return {**BASE, **CASES.get(name, RESUMED.get(name, {}))}


def host() -> dict:
    """What decides the last bits of a float64 result: NumPy, its BLAS, the SIMD code NumPy
    dispatches to and the CPU that OpenBLAS picks its kernels for."""
    info = np.show_config(mode="dicts")
    blas = info.get("Build Dependencies", {}).get("blas", {})
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"numpy": np.__version__, "machine": platform.machine(), "cpu": cpu,
            "blas": f"{blas.get('name')} {blas.get('openblas configuration', blas.get('version'))}",
            "blas_core": blas_core(), "simd": info.get("SIMD Extensions", {}).get("found")}


def blas_core() -> str | None:
    """The kernel set OpenBLAS chose for this CPU (or OPENBLAS_CORETYPE), asked of the library
    NumPy loaded, as threadpoolctl does; None where it cannot be found."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
        for path in paths:
            lib = ctypes.CDLL(path)
            for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename_",
                         "openblas_get_corename64_", "openblas_get_corename"):
                if hasattr(lib, name):
                    getattr(lib, name).restype = ctypes.c_char_p
                    return getattr(lib, name)().decode()
    except (OSError, AttributeError, UnicodeDecodeError):
        pass
    return None


# ----------------------------------------------------------------------- digests and summaries

def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def summary(arrays: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Per array [L1 norm, sum, L2 norm, a sum with fixed weights in [-1, 1]], each exactly
    rounded (fsum of exact products), so that they depend on the array's bits only, not on
    the host's summation order; compared relative to the L1 norm."""
    out = {}
    for k in sorted(arrays):
        a = np.asarray(arrays[k], np.float64).ravel()
        w = ((np.arange(a.size) * 37) % 17 - 8) / 8.0  # exact in binary
        out[k] = [math.fsum(np.abs(a)), math.fsum(a), math.sqrt(math.fsum(a * a)),
                  math.fsum(w * a)]
    return out


def close(seen, want, rtol: float, where: str = "", scale: float | None = None) -> list[str]:
    """Where `seen` differs from `want`: numbers to rtol (relative to `scale`, in a summary),
    everything else exactly."""
    if isinstance(want, dict):
        if not isinstance(seen, dict) or set(seen) != set(want):
            return [f"{where}: keys {sorted(seen) if isinstance(seen, dict) else seen} != "
                    f"{sorted(want)}"]
        return [d for k in want for d in close(seen[k], want[k], rtol, f"{where}/{k}",
                                              scale)]
    if isinstance(want, list):
        if not isinstance(seen, list) or len(seen) != len(want):
            return [f"{where}: {seen!r} != {want!r}"]
        if where.rpartition("/")[0].endswith("summary"):
            scale = want[0]
        return [d for i, (s, w) in enumerate(zip(seen, want, strict=True))
                for d in close(s, w, rtol, f"{where}/{i}", scale)]
    if isinstance(want, float) and isinstance(seen, float):
        if seen == want or abs(seen - want) <= rtol * (abs(want) if scale is None else scale):
            return []
        return [f"{where}: {seen!r} != {want!r} (rel {abs(seen - want) / abs(want or 1):.2g})"]
    return [] if seen == want and type(seen) is type(want) else [f"{where}: {seen!r} != {want!r}"]


# ---------------------------------------------------------------------------------- observing

def quiet(*args, **kwargs):
    pass


def loss_rows(run: Path) -> list[dict]:
    """metrics.jsonl without its clock readings."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("chars_per_sec", "elapsed_s")}
            for r in rows]


def observe_run(sr, run: Path, prefix: str = "") -> tuple[dict, dict]:
    """(values, bits) of a finished run: its weights and loss rows."""
    ck = sr.load_checkpoint(run)
    values = {prefix + "params_summary": summary(ck.trained.params),
              prefix + "losses": loss_rows(run)}
    bits = {prefix + "params": digest(ck.trained.params)}
    if ck.model is not ck.trained:
        values[prefix + "average_summary"] = summary(ck.model.params)
        bits[prefix + "average"] = digest(ck.model.params)
    return values, bits


def discrete(sr, model, vocab, ins=None) -> dict:
    """The outputs that are chosen rather than computed: pinned exactly on every host."""
    ins = ins or sr.inspect(model, vocab, TEXT[:300])
    return {"sample_t0.7": sr.sample(model, vocab, "The ", 60, temperature=0.7, seed=3),
            "sample_t1.3": sr.sample(model, vocab, "The ", 60, temperature=1.3, seed=11),
            "sample_argmax": sr.sample(model, vocab, "The ", 40, argmax=True),
            "inspect_ranks": digest({"topk_ids": ins.topk_ids, "next_rank": ins.next_rank}),
            "inspect_units": {name: [list(r[:3]) for r in rows]
                              for name, rows in ins.units(2).items()}}


def observe_outputs(sr, run: Path, text_path: Path, name: str) -> tuple[dict, dict]:
    """(values, bits) of what a trained run gives: samples, evaluation, inspection, exports."""
    ck = sr.load_checkpoint(run)
    model, vocab = ck.model, ck.vocab
    ins = sr.inspect(model, vocab, TEXT[:300])
    values, bits = discrete(sr, model, vocab, ins), {}
    corpus = sr.load_corpus(str(text_path), vocab)
    values["eval_test"] = sr.evaluate(model, corpus.test, seq_len=5)
    arrays = {"topk_probs": ins.topk_probs, "next_prob": ins.next_prob,
              "surprisal": ins.surprisal}
    for k, layer in enumerate(ins.layers):
        arrays.update({f"l{k}.{s}": v for s, v in layer.items()})
    values["inspect_summary"] = summary(arrays)
    values["inspect_units_corr"] = {k: [r[3] for r in rows] for k, rows in ins.units(2).items()}
    values["inspect_surprisal"] = ins.mean_surprisal
    bits["inspect"] = digest(arrays)
    if not model.config.layer_norm:  # nn.GRU has no layer normalisation: no export
        values["torch_export"], bits["torch_export"] = exported_torch(run)
    return values, bits


def exported_torch(run: Path) -> tuple[dict, str]:
    """The safetensors file's header exactly, its tensors' summaries, its bytes' sha256. Read
    here (a u64 header length, a JSON header, raw little-endian data), not with the optional
    safetensors package, so that this runs everywhere."""
    export = exporter()

    data = export(run, "torch", run / "model.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": "<f4", "F64": "<f8"}
    tensors = {k: np.frombuffer(data[8 + n + a:8 + n + b], dtypes[v["dtype"]]).reshape(v["shape"])
               for k, v in header.items() if k != "__metadata__"
               for a, b in [v["data_offsets"]]}
    return {"header": header, "summary": summary(tensors)}, hashlib.sha256(data).hexdigest()


def exported_onnx(run: Path) -> tuple[dict, str]:
    """The ONNX graph's structure exactly and its weights' summaries and digest (the file's
    bytes may change with the onnx package's version)."""
    import onnx
    from onnx import numpy_helper

    export = exporter()

    proto = onnx.load(str(export(run, "onnx", run / "model.onnx")))
    g = proto.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    graph = {"producer": proto.producer_name, "ir_version": proto.ir_version,
             "opset": [[o.domain, o.version] for o in proto.opset_import],
             "props": {p.key: p.value for p in proto.metadata_props},
             "inputs": [i.name for i in g.input], "outputs": [o.name for o in g.output],
             "nodes": [[n.op_type, list(n.input), list(n.output),
                        sorted(f"{a.name}={onnx.helper.get_attribute_value(a)}"
                               for a in n.attribute)]
                       for n in g.node],
             "initializers": {k: [str(v.dtype), list(v.shape)] for k, v in tensors.items()}}
    return {"graph": graph, "summary": summary(tensors)}, digest(tensors)


def console(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC), "SCRATCHRNN_HOME": str(cwd / "home")}
    proc = subprocess.run([sys.executable, "-m", "scratchrnn", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def observe(name: str, folder: Path, check_nudge: bool = False) -> dict:
    """The record of one case, trained in `folder`: {"dtype", "values", "bits"} (and, for a
    resumed case, "resumed_differs": where the resumed run differs from the straight one).
    `check_nudge`: also refuse discrete outputs that a 1e-9 change of the weights changes."""
    import scratchrnn as sr

    text_path = folder / "golden.txt"
    if not text_path.exists():
        text_path.write_text(TEXT)
    run = folder / name
    if name in CLI:
        console("train", "--text", str(text_path), "--out", str(run), "--quiet", *CLI[name],
                cwd=folder)
        values, bits = observe_run(sr, run)
        values["cli_eval"] = json.loads(console("eval", str(run), "--json", cwd=folder))
        values["cli_eval"].pop("checkpoint")  # the folder: another one each time
        values["cli_sample"] = console("sample", str(run), *CLI_SAMPLE, cwd=folder)
        ck = sr.load_checkpoint(run)
        values.update(discrete(sr, ck.model, ck.vocab))
        # the same draw as the API's: so the nudge check below covers the console's too
        assert values["cli_sample"] == values["sample_t0.7"] + "\n"
        dtype = "float64"
        if check_nudge:
            nudged(sr, run, values, dtype)
    elif name in RESUMED:
        cfg = config(name)
        half = folder / f"{name}_half"
        train(sr, text_path, half, **{**cfg, "max_steps": cfg["max_steps"] // 2})
        values, bits = observe_run(sr, half, "half_")
        train(sr, text_path, run, **cfg)
        straight = observe_run(sr, run)
        sr.train(resume=str(half), max_steps=cfg["max_steps"], progress=False, log=quiet)
        resumed = observe_run(sr, half)
        values.update(straight[0])
        bits.update(straight[1])
        return {"dtype": cfg["dtype"], "values": values, "bits": bits, "run": run,
                "resumed_differs": close(list(resumed), list(straight), 0.0)}
    else:
        cfg = config(name)
        train(sr, text_path, run, **cfg)
        values, bits = observe_run(sr, run)
        more = observe_outputs(sr, run, text_path, name)
        values.update(more[0])
        bits.update(more[1])
        dtype = cfg["dtype"]
        if check_nudge:
            nudged(sr, run, values, dtype)
    return {"dtype": dtype, "values": values, "bits": bits, "run": run}


def nudged(sr, run: Path, values: dict, dtype: str) -> None:
    """Refuse a record whose discrete outputs a tiny change of the weights would change."""
    ck = sr.load_checkpoint(run)
    rng = np.random.default_rng(0)
    for p in ck.model.params.values():
        p *= 1 + NUDGE[dtype] * rng.uniform(-1, 1, p.shape)
    wrong = close(discrete(sr, ck.model, ck.vocab), {k: values[k] for k in discrete_keys()}, 0)
    if wrong:
        raise SystemExit(f"{run.name}: a near-tie: a {NUDGE[dtype]:g} change of the weights "
                         f"changes {wrong[0]}; pick another seed or temperature")


def discrete_keys() -> tuple[str, ...]:
    return ("sample_t0.7", "sample_t1.3", "sample_argmax", "inspect_ranks", "inspect_units")


def train(sr, text_path: Path, out: Path, **cfg):
    return sr.train(sr.TrainConfig(text=str(text_path), out=str(out), **cfg), progress=False,
                    log=quiet)


# -------------------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """Each case's observation, made once for test_values and test_bits."""
    folder, cache = tmp_path_factory.mktemp("golden"), {}

    def get(name):
        if name not in cache:
            cache[name] = observe(name, folder)
        return cache[name]
    return get


@pytest.mark.parametrize("name", ALL)
def test_values(name, record, observed):
    got, want = observed(name), record["cases"][name]
    wrong = close(got["values"], want["values"], RTOL[want["dtype"]], name)
    assert not wrong, "\n".join([f"{len(wrong)} results changed:", *wrong[:20]])


@pytest.mark.parametrize("name", ALL)
def test_bits(name, record, observed):
    here = host()
    if here != record["host"]:
        diff = {k: (here[k], record["host"][k]) for k in here if here[k] != record["host"].get(k)}
        pytest.skip(f"this host computes with other kernels than the record's ({diff}); "
                    "test_values compares to a tolerance instead")
    got, want = observed(name)["bits"], record["cases"][name]["bits"]
    assert got.keys() == want.keys()
    changed = [k for k in want if got[k] != want[k]]
    assert not changed, f"{name}: the bits of {', '.join(changed)} changed"


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_export(name, record, observed):
    pytest.importorskip("onnx")
    values, bits = exported_onnx(observed(name)["run"])
    want = record["cases"][name]["onnx"]
    # the graph holds float32 weights: a float64 model's last-bit difference can round them
    # one float32 step apart on another host
    wrong = close(values, want["values"], RTOL["float32"], name)
    assert not wrong, "\n".join([f"{len(wrong)} results changed:", *wrong[:20]])
    if host() == record["host"]:
        assert bits == want["bits"]


@pytest.mark.parametrize("name", list(RESUMED))
def test_resume_continues_bit_for_bit(name, observed):
    assert observed(name)["resumed_differs"] == []


def test_text_is_fixed(record):
    assert hashlib.sha256(TEXT.encode()).hexdigest() == record["text_sha256"]


# ------------------------------------------------------------------------------------- writing

def main(argv: list[str]) -> int:
    import tempfile

    if not (argv[:1] == ["--write"] and len(argv) == 1 or argv[:1] == ["--dump"] and
            len(argv) == 2):
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(SRC))
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: observe(name, Path(tmp), check_nudge=True) for name in ALL}
        for name, case in cases.items():
            if case.pop("resumed_differs", []):
                raise SystemExit(f"{name}: the resumed run differs from the straight one")
            run = case.pop("run")
            if name in ONNX_CASES:
                values, bits = exported_onnx(run)
                case["onnx"] = {"values": values, "bits": bits}
    record = {"about": "python tests/test_golden.py --write; see its docstring",
              "host": host(), "text_sha256": hashlib.sha256(TEXT.encode()).hexdigest(),
              "cases": cases}
    dest = RECORD if argv[0] == "--write" else Path(argv[1])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
