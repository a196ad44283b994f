"""Checkpoints are checked before they are trusted: the zip's member list and declared sizes
(a decompression bomb is refused in milliseconds, with little memory), the metadata schema, each
member's header; and structured fuzzing of real checkpoints (every metadata field replaced by
values of every JSON type, every member re-typed, reshaped, dropped, duplicated or joined by an
extra one): each mutant is refused with ScratchRNNError, or it loads and then survives sample,
eval and a one-step resume. SCRATCHRNN_FUZZ=N runs N examples per property."""

import copy
import io
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from hostile import deep, members_of, meta_npy, npy, npy_header, write_zip
from hypothesis import event, given, settings
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.store import schema

EXAMPLES = int(os.environ.get("SCRATCHRNN_FUZZ", 15))  # CI: seconds; fuzz.py: thousands
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it "
        "was the age of foolishness.\n") * 20
BASES = {  # every cell, optimizer slot and state member at least once
    "lstm": dict(cell="lstm", layers=2, optimizer="adam", ema=0.9),
    "gru": dict(cell="gru", layers=1, optimizer="adagrad", ema=None, lr=0.05),
    "rnn": dict(cell="rnn", layers=1, optimizer="sgd", ema=None, lr=0.1, dtype="float64"),
}


class Base:
    def __init__(self, folder, kind):
        text = folder / "text.txt"
        text.write_text(TEXT)
        cfg = sr.TrainConfig(text=str(text), out=str(folder / "run"), hidden=8, batch=2,
                             seq_len=8, max_steps=3, eval_every=3, log_every=1,
                             sample_length=0, **BASES[kind])
        sr.train(cfg, progress=False, log=lambda *a: None)
        with np.load(folder / "run" / "checkpoint.npz", allow_pickle=False) as z:
            self.members = {k: z[k] for k in z.files if k != "meta"}
            self.meta = json.loads(str(z["meta"]))
        self.kind = kind

    def write(self, path, meta_edits=(), member_edits=(), raw=None):
        """The checkpoint with its metadata edited (path -> JSON text, or None: delete) and
        its members edited (functions of the member dict returning extra entries)."""
        meta, raw = copy.deepcopy(self.meta), dict(raw or {})
        for i, (where, value) in enumerate(meta_edits):
            try:
                parent = meta
                for key in where[:-1]:
                    parent = parent[key]
                if value is None:
                    del parent[where[-1]]
                else:
                    parent[where[-1]] = f"@raw:{i}@"
                    raw[str(i)] = value
            except (KeyError, IndexError, TypeError):
                pass  # an earlier edit replaced a parent
        members, extra = {k: v.copy() for k, v in self.members.items()}, []
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the casts of a mutation lose values on purpose
            for edit in member_edits:
                extra += edit(members) or []
        write_zip(path, [("meta.npy", meta_npy(meta, raw)), *members_of(members), *extra])
        return path


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return {kind: Base(tmp_path_factory.mktemp(kind), kind) for kind in BASES}


def refused(path, *fragments):
    with pytest.raises(sr.ScratchRNNError) as e:
        sr.load_checkpoint(path)
    message = str(e.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


def test_a_real_checkpoint_round_trips_exactly(bases, tmp_path):
    for base in bases.values():
        ckpt = sr.load_checkpoint(base.write(tmp_path / f"{base.kind}.npz"), resume=True)
        for k, v in base.members.items():
            section, key = k.split("/", 1)
            got = {"p": ckpt.trained.params, "opt": ckpt.opt_state, "state": ckpt.state}[section]
            assert got[key].dtype == v.dtype and np.array_equal(got[key], v), k
            assert got[key].flags.writeable and got[key].flags.c_contiguous
        assert ckpt.meta == base.meta


def test_compressed_and_fortran_members_still_load(bases, tmp_path):
    base = bases["lstm"]
    members = {k: np.asfortranarray(v) if v.ndim == 2 else v for k, v in base.members.items()}
    np.savez_compressed(tmp_path / "c.npz", meta=np.array(json.dumps(base.meta)), **members)
    ckpt = sr.load_checkpoint(tmp_path / "c.npz", resume=True)
    for k, v in base.members.items():
        if k.startswith("p/"):
            assert np.array_equal(ckpt.trained.params[k[2:]], v)


HOSTILE = {  # name -> (meta edits, member edits, fragment of the message)
    "string config": ([(("config",), '"gru"')], [], "config must be a dict"),
    "list vocabulary": ([(("vocab",), '["a", "b"]')], [], "vocab must be a string"),
    "deep nesting": ([(("history",), deep(100_000))], [], "nested too deeply"),
    "moderately deep nesting": ([(("history",), deep(500))], [], "history[0]"),
    "step is a string": ([(("step",), '"12"')], [], "step must be a whole number"),
    "step negative": ([(("step",), "-1")], [], "step must be"),
    "step huge": ([(("step",), str(2**80))], [], "step must be"),
    "step a float": ([(("step",), "3.0")], [], "step must be"),
    "step is true": ([(("step",), "true")], [], "step must be"),
    "rng a list": ([(("rng",), "[1, 2]")], [], "rng must be a dict"),
    "rng state too big": ([(("rng", "state", "state"), str(2**200))], [], "rng.state.state"),
    "rng other generator": ([(("rng", "bit_generator"), '"MT19937"')], [], "PCG64"),
    "history a dict": ([(("history",), "{}")], [], "history must be a list"),
    "history row a string": ([(("history", 0), '"x"')], [], "history[0]"),
    "history step missing": ([(("history", 0, "step"), None)], [], "history[0].step"),
    "history value a list": ([(("history", 0, "lr"), "[1]")], [], "history[0].lr"),
    "elapsed nan": ([(("elapsed_s",), "NaN")], [], "elapsed_s must be a finite number"),
    "acc one number": ([(("acc",), "1.5")], [], "acc must be a pair"),
    "best_val a string": ([(("best_val",), '"low"')], [], "best_val"),
    "number of 5000 digits": ([(("epoch",), "1" + "0" * 5000)], [], "digits"),
    "unknown key": ([(("surprise",), "1")], [], "unknown metadata key"),
    "format version true": ([(("format_version",), "true")], [], "checkpoint format True"),
    "model a list": ([(("model",), "[]")], [], "model must be a dict"),
    "hidden size huge": ([(("model", "hidden_size"), str(2**40))], [], "model.hidden_size"),
    "hidden size 0.5": ([(("model", "hidden_size"), "0.5")], [], "model.hidden_size"),
    "model and config disagree": ([(("config", "hidden"), "9")], [], "config.hidden is 9"),
    "model weight_drop one": ([(("model", "weight_drop"), "1.0")], [],
                              "`weight_drop` must be in [0, 1)"),
    "model weight_drop negative": ([(("model", "weight_drop"), "-0.5")], [],
                                   "model.weight_drop"),
    "model recurrent_init unknown": ([(("model", "recurrent_init"), '"foo"')], [],
                                     "model.recurrent_init must be 'uniform' or 'orthogonal'"),
    "weight_drop disagrees": ([(("config", "weight_drop"), "0.5")], [],
                              "config.weight_drop is 0.5"),
    "recurrent_init disagrees": ([(("config", "recurrent_init"), '"orthogonal"')], [],
                                 "config.recurrent_init is 'orthogonal'"),
    "config weight_drop one": ([(("config", "weight_drop"), "1.0"),
                                (("model", "weight_drop"), "1.0")], [], "`weight_drop`"),
    "config recurrent_init a number": ([(("config", "recurrent_init"), "3")], [],
                                       "config.recurrent_init must be str"),
    "model layer_norm a number": ([(("model", "layer_norm"), "1")], [],
                                  "model.layer_norm must be true or false"),
    "config layer_norm a string": ([(("config", "layer_norm"), '"yes"')], [],
                                   "config.layer_norm must be bool"),
    "layer_norm on an lstm": ([(("model", "layer_norm"), "true"),
                               (("config", "layer_norm"), "true")], [], "gru only"),
    "model locked_dropout a number": ([(("model", "locked_dropout"), "1")], [],
                                      "model.locked_dropout must be true or false"),
    "config locked_dropout a string": ([(("config", "locked_dropout"), '"yes"')], [],
                                       "config.locked_dropout must be bool"),
    "locked_dropout disagrees": ([(("config", "locked_dropout"), "true")], [],
                                 "config.locked_dropout is True but the model's locked_dropout"),
    "locked_dropout without dropout": ([(("model", "locked_dropout"), "true"),
                                        (("config", "locked_dropout"), "true"),
                                        (("model", "dropout"), "0.0"),
                                        (("config", "dropout"), "0.0")], [],
                                       "`locked_dropout` needs `dropout` > 0"),
    "model locked_dropout without dropout": ([(("model", "locked_dropout"), "true"),
                                              (("model", "dropout"), "0.0"),
                                              (("config", "dropout"), "0.0")], [],
                                             "`locked_dropout` needs `dropout` > 0"),
    "layer-norm gains in a model without": ([], [lambda m: m.update({"p/l0.ln_x": m["p/l0.b"]})],
                                            "p/l0.ln_x does not belong"),
    "config lr a string": ([(("config", "lr"), '"fast"')], [], "config.lr must be float"),
    "config batch zero": ([(("config", "batch"), "0")], [], "`batch`"),
    "config seed negative": ([(("config", "seed"), "-3")], [], "config.seed"),
    "config text with NUL": ([(("config", "text"), '"a\\u0000b"')], [], "config.text"),
    "config text a lone surrogate": ([(("config", "text"), '"\\ud800"')], [], "config.text"),
    "config huge sample": ([(("config", "sample_length"), "100000000")], [], "`sample_length`"),
    "config fractions": ([(("config", "val_frac"), "0.7"), (("config", "test_frac"), "0.7")],
                         [], "val_frac and test_frac"),
    "corpus bad hash": ([(("corpus",), '{"chars": 3, "sha256": "xyz", "path": null}')], [],
                        "corpus.sha256"),
    "corpus missing path": ([(("corpus",), '{"chars": 3, "sha256": "%s"}' % ("a" * 64))], [],
                            "corpus lacks 'path'"),
    "vocabulary too short": ([(("vocab",), '"ab"')], [], "vocabulary has 2 characters"),
    "opt/t wrong shape": ([], [lambda m: m.update({"opt/t": np.zeros(3, np.int64)})],
                          "member opt/t is int64[3]"),
    "opt/t a float": ([], [lambda m: m.update({"opt/t": np.zeros((), np.float64)})], "opt/t"),
    "opt/t beyond the step": ([], [lambda m: m.update({"opt/t": np.array(99, np.int64)})],
                              "not in [0, step]"),
    "hidden state wrong batch": ([], [lambda m: m.update({"state/l0.h": np.zeros((5, 8),
                                                                                 np.float32)})],
                                 "member state/l0.h is float32[5, 8]"),
    "hidden state 1-d": ([], [lambda m: m.update({"state/l0.h": np.zeros(8, np.float32)})],
                         "state/l0.h"),
    "parameter NaN": ([], [lambda m: m["p/W_y"].fill(np.nan)], "NaN"),
    "negative second moment": ([], [lambda m: m["opt/v.W_y"].fill(-1)], "negative"),
    "object member": ([], [lambda m: m.update({"p/b_y": np.array([None] * 5, object)})],
                      "member p/b_y declares"),  # refused on its size, before its header
    "big-endian member": ([], [lambda m: m.update({"p/b_y": m["p/b_y"].astype(">f4")})],
                          "parameter b_y"),
    "unknown member": ([], [lambda m: [("notes.npy", npy(np.arange(3)))]], "unexpected member"),
    "not an .npy": ([], [lambda m: [("hello.txt", b"hi")]], "unexpected member"),
    "member of another optimizer": ([], [lambda m: m.update({"opt/G.W_y": m["p/W_y"]})],
                                    "opt/G.W_y does not belong"),
    "member of a deeper model": ([], [lambda m: m.update({"p/l5.W_h": m["p/l0.W_h"]})],
                                 "does not belong"),
    "partial weight average": ([], [lambda m: m.pop("opt/ema.W_y") is None],
                               "opt/ema.W_y is missing"),
    "missing parameter": ([], [lambda m: m.pop("p/l1.b") is None],
                          "parameter l1.b is missing"),
    "duplicate member": ([], [lambda m: [("p/W_y.npy", npy(m["p/W_y"]))]], "appears twice"),
    "no metadata": ([], [], "no metadata"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_checkpoint_is_refused_in_one_line(name, bases, tmp_path):
    meta_edits, member_edits, fragment = HOSTILE[name]
    path = bases["lstm"].write(tmp_path / "x.npz", meta_edits, member_edits)
    if name == "no metadata":
        write_zip(path, members_of(bases["lstm"].members))
    refused(path, fragment)


def test_a_position_past_the_text_is_refused_on_resume(bases, tmp_path, capsys):
    path = bases["lstm"].write(tmp_path / "x.npz", [(("window",), "1000")])
    assert main(["train", "--resume", str(path), "--out", str(tmp_path / "run"), "--max-steps",
                 "9", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "window 1000" in err


@pytest.mark.parametrize("descr,data", [("<U1", b"\xff\xff\xff\xff"), ("<U0", b""),
                                        ("|V0", b""), ("<U2", "\ud800".encode(
                                            "utf-32-le", "surrogatepass") + bytes(4))])
def test_metadata_that_is_no_text_is_refused(descr, data, tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False,
                                                  "shape": ()})
    write_zip(tmp_path / "x.npz", [("meta.npy", header.getvalue() + data)])
    refused(tmp_path / "x.npz", "metadata")


def test_pickled_metadata_is_refused_without_unpickling(bases, tmp_path):
    path = tmp_path / "x.npz"
    write_zip(path, [("meta.npy", npy(np.array([bases["gru"].meta], dtype=object))),
                     *members_of(bases["gru"].members)])
    refused(path, "Python objects")


def test_the_corpus_record_is_accepted(bases, tmp_path):
    record = '{"chars": 2940, "sha256": "%s", "path": "/data/t.txt"}' % ("0f" * 32)
    path = bases["gru"].write(tmp_path / "x.npz", [(("corpus",), record)])
    assert sr.load_checkpoint(path, resume=True).meta["corpus"]["chars"] == 2940


def test_a_checkpoint_from_before_weight_drop_loads_and_resumes(bases, tmp_path, capsys):
    """Checkpoints written before --weight-drop, --recurrent-init, --layer-norm and
    --locked-dropout lack them, in the model and in the config: they read as off (the
    defaults), and sample, evaluate and resume (with per-step dropout: the base has 0.1)."""
    base = bases["lstm"]
    older = [((part, key), None) for part in ("model", "config")
             for key in ("weight_drop", "recurrent_init", "layer_norm", "locked_dropout")]
    assert all(key in base.meta[part] for (part, key), _ in older)
    path = base.write(tmp_path / "old.npz", older)
    ckpt = sr.load_checkpoint(path, resume=True)
    assert (ckpt.model.config.weight_drop, ckpt.model.config.recurrent_init) == (0.0, "uniform")
    assert ckpt.model.config.layer_norm is False and ckpt.config.get("layer_norm") is None
    assert ckpt.model.config.locked_dropout is False and "locked_dropout" not in ckpt.config
    assert ckpt.model.config.dropout > 0  # so that locked or not would matter
    step = base.meta["step"]
    for argv in (["sample", str(path), "--length", "5"], ["eval", str(path)],
                 ["train", "--resume", str(path), "--out", str(tmp_path / "on"),
                  "--max-steps", str(step + 1), "--quiet"]):
        assert main(argv) == 0, capsys.readouterr().err
    later = sr.load_checkpoint(tmp_path / "on")
    assert later.meta["step"] == step + 1 and later.model.config.weight_drop == 0.0
    assert later.model.config.layer_norm is False and later.config["layer_norm"] is False
    assert later.model.config.locked_dropout is False and later.config["locked_dropout"] is False


def test_a_layer_norm_run_whose_model_and_config_disagree_is_refused(bases, tmp_path):
    path = bases["gru"].write(tmp_path / "x.npz", [(("config", "layer_norm"), "true")])
    refused(path, "config.layer_norm is True but the model's layer_norm is False")


def test_a_model_only_checkpoint_samples_but_does_not_resume(bases, tmp_path, capsys):
    ckpt = sr.load_checkpoint(bases["gru"].write(tmp_path / "full.npz"))
    sr.save_checkpoint(tmp_path / "model.npz", ckpt.model, ckpt.vocab, ckpt.config)
    assert main(["sample", str(tmp_path / "model.npz"), "--length", "5"]) == 0
    assert main(["train", "--resume", str(tmp_path / "model.npz"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not resumed" in err


def _in_child(path) -> dict:
    """Load `path` in a fresh process: its outcome, seconds, the peak of memory allocated
    while loading (tracemalloc sees Python's and NumPy's allocations) and the growth of the
    process's peak resident memory."""
    # the package imports lazily: import every module first, so only the loading is measured
    code = ("import json, resource, sys, time, tracemalloc\nimport scratchrnn as sr\n"
            "import scratchrnn.cli.commands, scratchrnn.store.checkpoint, scratchrnn.store.schema\n"
            "rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
            "before = rss()\ntracemalloc.start()\nt = time.perf_counter()\n"
            "try:\n    sr.load_checkpoint(sys.argv[1]); out = 'loaded'\n"
            "except sr.ScratchRNNError as e:\n    out = str(e)\n"
            "print(json.dumps(dict(out=out, seconds=time.perf_counter() - t, "
            "peak=tracemalloc.get_traced_memory()[1], grew=rss() - before)))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_decompression_bomb_is_refused_at_once(bases, tmp_path):
    """The issue's case: a 3 MB checkpoint holding a deflated 3 GB member (the old loader
    took 14 s and 3.2 GB before refusing it)."""
    base, path = bases["gru"], tmp_path / "bomb.npz"
    n = 3 << 30
    base.write(path, member_edits=[lambda m: m.pop("p/W_y") is None or
                                   [("p/W_y.npy", (npy_header((n // 4,), np.float32), n))]])
    assert path.stat().st_size < 4 << 20
    assert zipfile.ZipFile(path).getinfo("p/W_y.npy").file_size > n
    got = _in_child(path)
    assert "member p/W_y declares" in got["out"], got
    assert got["seconds"] < 1.0 and got["peak"] < 4 << 20 and got["grew"] < 32 << 20, got


def test_a_bomb_the_metadata_vouches_for_is_refused_too(bases, tmp_path):
    """The metadata declares a model huge enough to need the 3 GB: the inflation ratio,
    not the declared size, gives the bomb away."""
    base, path = bases["gru"], tmp_path / "bomb.npz"
    hidden = 16384
    vocab = base.meta["vocab"]
    model = dict(base.meta["model"], hidden_size=hidden)
    config = dict(base.meta["config"], hidden=hidden)
    shape = (hidden, 3 * hidden)  # l0.W_h: 3 GiB of float32
    n = shape[0] * shape[1] * 4
    write_zip(path, [("meta.npy", meta_npy(dict(base.meta, model=model, config=config,
                                                 vocab=vocab))),
                     ("p/l0.W_h.npy", (npy_header(shape, np.float32), n))])
    got = _in_child(path)
    assert "as a decompression bomb does" in got["out"], got
    assert got["seconds"] < 1.0 and got["peak"] < 4 << 20 and got["grew"] < 32 << 20, got


# Structured fuzzing --------------------------------------------------------------------------

def _paths(value, where=()):
    """Every position in a JSON tree (the root excluded)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    out = []
    for key, sub in items:
        out.append((*where, key))
        out.extend(_paths(sub, (*where, key)))
    return out


RAW = ["null", "true", "false", "0", "1", "-1", "2", "3", "8", "1000", str(2**31), str(2**64),
       str(-2**70), "0.0", "0.5", "-0.5", "1e308", "1e999", "-1e999", "NaN", "Infinity",
       '""', '"x"', '"gru"', '"\\u0000"', '"\\ud800"', '"PCG64"', "[]", "[1]", "[0.5, 3]", "{}",
       '{"step": 1}', deep(50), deep(100_000), "1" + "0" * 5000]
JSON_VALUES = st.one_of(
    st.sampled_from(RAW), st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
    st.text(max_size=8).map(json.dumps),
    st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                     max_size=3),
                 max_leaves=6).map(json.dumps))


def _reshape(kind, a):
    if kind == "ravel":
        return a.reshape(-1)
    if kind == "lead":
        return a[None]
    if kind == "transpose":
        return a.T.copy()
    if kind == "grow":
        return np.concatenate([a, a[:1]]) if a.ndim else a[None]
    if kind == "shrink":
        return a[1:] if a.ndim else a.reshape(1)
    if kind == "empty":
        return a.reshape(-1)[:0]
    return np.asarray(a.reshape(-1)[:1].sum())  # scalar


def _astype(a, dt):
    try:
        return a.astype(dt)
    except (ValueError, TypeError):  # a string that reads as no number: keep it
        return a


DTYPES = ["float16", "float32", "float64", "int64", "int32", "uint8", "bool", "complex64",
          ">f4", ">f8", "U3", "object"]
EXTRA = ["p/l9.W_x", "p/l1.b_hn", "opt/m.W_y", "opt/G.b_y", "opt/ema.W_y", "opt/t",
         "state/l0.c", "state/l3.h", "p/evil", "meta", "x", "p/W_y"]


@st.composite
def member_edit(draw, names):
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["dtype", "shape", "drop", "extra", "dup", "values",
                                 "fortran"]))
    if kind == "dtype":
        dt = draw(st.sampled_from(DTYPES))
        return lambda m: m.update({name: _astype(m[name], dt)}) if name in m else None
    if kind == "shape":
        how = draw(st.sampled_from(["ravel", "lead", "transpose", "grow", "shrink", "empty",
                                    "scalar"]))
        return lambda m: m.update({name: _reshape(how, m[name])}) if name in m else None
    if kind == "drop":
        return lambda m: m.pop(name, None) is None and None
    if kind == "extra":
        extra = draw(st.sampled_from(EXTRA))
        return lambda m: [(f"{extra}.npy", npy(m.get(name, np.zeros(2))))]
    if kind == "dup":
        return lambda m: [(f"{name}.npy", npy(m[name]))] if name in m else None
    if kind == "values":
        v = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e30, 0.0]))
        return lambda m: m.update({name: np.full_like(m[name], v)}) if name in m else None
    return lambda m: m.update({name: m[name].T.copy().T}) if name in m else None


def survives(path, capsys):
    """Refused with ScratchRNNError, or loaded and usable by every command: each either
    succeeds or says one line (any other exception fails the test)."""
    try:
        ckpt = sr.load_checkpoint(path)
    except sr.ScratchRNNError as e:
        assert "\n" not in str(e)
        return False
    step = ckpt.meta.get("step", 0)
    capsys.readouterr()
    for argv in (["sample", str(path), "--length", "5"], ["eval", str(path)],
                 ["train", "--resume", str(path), "--max-steps", str(step + 1), "--quiet"]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc in (0, 1) and "Traceback" not in err, (argv, err)
        assert rc == 0 or err.count("\n") == 1, (argv, err)
    return True


@settings(max_examples=EXAMPLES)
@given(data=st.data(), kind=st.sampled_from(sorted(BASES)))
def test_fuzz_every_metadata_field(bases, tmp_path_factory, capsys, data, kind):
    base = bases[kind]
    paths = _paths(base.meta)
    edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), st.none() | JSON_VALUES),
                               min_size=1, max_size=3))
    path = base.write(tmp_path_factory.mktemp("fuzz") / "x.npz", edits)
    event("loaded and used" if survives(path, capsys) else "refused")


@settings(max_examples=EXAMPLES)
@given(data=st.data(), kind=st.sampled_from(sorted(BASES)))
def test_fuzz_every_member(bases, tmp_path_factory, capsys, data, kind):
    base = bases[kind]
    edits = data.draw(st.lists(member_edit(sorted(base.members)), min_size=1, max_size=3))
    path = base.write(tmp_path_factory.mktemp("fuzz") / "x.npz", member_edits=edits)
    event("loaded and used" if survives(path, capsys) else "refused")


@settings(max_examples=EXAMPLES)
@given(data=st.data(), kind=st.sampled_from(sorted(BASES)))
def test_fuzz_bytes_of_a_real_checkpoint(bases, tmp_path_factory, data, kind):
    path = bases[kind].write(tmp_path_factory.mktemp("fuzz") / "x.npz")
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.none() | st.integers(0, len(raw)))
    path.write_bytes(bytes(raw[:cut]))
    try:
        sr.load_checkpoint(path)
        event("loaded")
    except sr.ScratchRNNError as e:
        assert "\n" not in str(e)
        event("refused")


def test_schema_rows_are_checks():
    for key, (required, check) in schema.META.items():
        assert isinstance(required, bool) and callable(check), key


@pytest.mark.parametrize("hint,good,bad", [
    (int, [0, 3, -2], [True, 2.0, "3", None, 2**70]),
    (float | None, [None, 2, 2.5, float("nan")], [True, "x", [1.0]]),
    (str | None, [None, "utf-8"], [3, "a\0b", "\ud800"]),
    (bool, [True, False], [1, None]),  # a field added later by another part of the package
    (list[str] | None, [None, ["a"]], ["a", {}]),
])
def test_config_fields_are_checked_by_their_annotation(hint, good, bad):
    check = schema.field_check(hint)
    for v in good:
        check(v, "config.x")
    for v in bad:
        with pytest.raises(schema.Invalid):
            check(v, "config.x")


@pytest.mark.skipif(not os.environ.get("SCRATCHRNN_SWEEP"), reason="minutes: scripts/fuzz.py")
def test_sweep_every_field_with_every_value(bases, tmp_path, capsys):
    """Not random: every position of every base's metadata, deleted or replaced by each RAW
    value (about 9000 checkpoints)."""
    for base in bases.values():
        for where in _paths(base.meta):
            for value in [None, *RAW]:
                survives(base.write(tmp_path / "x.npz", [(where, value)]), capsys)
