"""Every bad input: non-zero exit, exactly one clear line on stderr, no traceback, and no
existing file changed. One table; add a row for each new way to fail."""

import hashlib
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hostile import deep, members_of, npy, npy_header, write_zip

from scratchrnn.cli import main

TRAIN = ["--hidden", "16", "--batch", "2", "--seq-len", "8", "--max-steps", "4",
         "--eval-every", "4", "--sample-length", "0", "--quiet"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A text, a finished run, and hostile files beside them."""
    d = tmp_path_factory.mktemp("world")
    text = d / "text.txt"
    text.write_text("It was the best of times, it was the worst of times.\n" * 40)
    run = d / "run"
    assert main(["train", "--text", str(text), "--out", str(run), "--cell", "gru", *TRAIN]) == 0
    good = dict(np.load(run / "checkpoint.npz", allow_pickle=False))
    meta = json.loads(str(good["meta"]))

    def variant(name, change=None, meta_change=None, **savez):
        members = dict(good)
        if meta_change:
            members["meta"] = np.array(json.dumps(meta_change(dict(meta))))
        if change:
            change(members)
        np.savez(d / name, **members, **savez)

    variant("future.npz", meta_change=lambda m: dict(m, format_version=99))
    variant("noshape.npz", change=lambda m: m.update({"p/W_y": np.zeros((3, 3), np.float32)}))
    variant("dtype.npz", change=lambda m: m.update({"p/b_y": m["p/b_y"].astype(np.float64)}))
    variant("novocab.npz", meta_change=lambda m: {k: v for k, v in m.items() if k != "vocab"})
    variant("noparam.npz", change=lambda m: m.pop("p/l0.W_h"))
    variant("badmeta.npz", change=lambda m: m.update({"meta": np.array("{not json")}))
    # metadata with the right keys and wrong types or shapes, members that cannot be ours
    variant("strconfig.npz", meta_change=lambda m: dict(m, config="gru"))
    variant("listvocab.npz", meta_change=lambda m: dict(m, vocab=list(m["vocab"])))
    variant("deepmeta.npz", change=lambda m: m.update(meta=np.array(
        json.dumps(dict(meta, history="@")).replace('"@"', deep(100_000)))))
    variant("badstep.npz", meta_change=lambda m: dict(m, step="4"))
    variant("badrng.npz", meta_change=lambda m: dict(m, rng=[1, 2]))
    variant("badhistory.npz", meta_change=lambda m: dict(m, history=[{"step": [1]}]))
    variant("badoptt.npz", change=lambda m: m.update({"opt/t": np.zeros(3, np.int64)}))
    variant("badstate.npz", change=lambda m: m.update({"state/l0.h": np.zeros((5, 16),
                                                                               np.float32)}))
    variant("unknownmember.npz", notes=np.arange(3))
    n = 3 << 30  # the 3 MB file that inflates to 3 GB
    write_zip(d / "bomb.npz", [*members_of({k: v for k, v in good.items() if k != "p/W_y"}),
                               ("p/W_y.npy", (npy_header((n // 4,), np.float32), n))])
    write_zip(d / "duplicate.npz", [*members_of(good), ("p/b_y.npy", npy(good["p/b_y"]))])
    marker = d / "PWNED"
    variant("pickle.npz", **{"p/evil": np.array([Evil(marker)], dtype=object)})
    (d / "truncated.npz").write_bytes((run / "checkpoint.npz").read_bytes()[:3000])
    (d / "random.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    with zipfile.ZipFile(d / "foreign.npz", "w") as z:
        z.writestr("hello.txt", "not a checkpoint")
    np.savez(d / "plain.npz", x=np.arange(3))
    (d / "empty.txt").write_text("")
    (d / "blank.txt").write_text("  \n\n ")
    (d / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (d / "cp1252.txt").write_bytes("caf\u00e9 au lait, s'il vous pla\u00eet. ".encode("cp1252")
                                   * 30)
    (d / "short.txt").write_text("too short")
    (d / "afile").write_text("x")
    return d


class Evil:
    """A pickle payload: loading it would create the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


CASES = {
    # files
    "missing text": ["train", "--text", "{d}/nope.txt"],
    "text is a folder": ["train", "--text", "{d}"],
    "empty text": ["train", "--text", "{d}/empty.txt"],
    "blank text": ["train", "--text", "{d}/blank.txt"],
    "binary text": ["train", "--text", "{d}/binary.bin"],
    "unknown encoding": ["train", "--text", "{d}/text.txt", "--encoding", "klingon"],
    "wrong encoding": ["train", "--text", "{d}/cp1252.txt", "--encoding", "utf-8"],
    "shorter than a window": ["train", "--text", "{d}/short.txt"],
    "eval text missing": ["eval", "{d}/run", "--text", "{d}/nope.txt"],
    # hyper-parameters
    "hidden zero": ["train", "--text", "{d}/text.txt", "--hidden", "0"],
    "hidden negative": ["train", "--text", "{d}/text.txt", "--hidden", "-5"],
    "hidden not a number": ["train", "--text", "{d}/text.txt", "--hidden", "many"],
    "layers zero": ["train", "--text", "{d}/text.txt", "--layers", "0"],
    "batch zero": ["train", "--text", "{d}/text.txt", "--batch", "0"],
    "seq-len negative": ["train", "--text", "{d}/text.txt", "--seq-len", "-1"],
    "lr zero": ["train", "--text", "{d}/text.txt", "--lr", "0"],
    "lr negative": ["train", "--text", "{d}/text.txt", "--lr", "-0.1"],
    "lr nan": ["train", "--text", "{d}/text.txt", "--lr", "nan"],
    "beta2 one": ["train", "--text", "{d}/text.txt", "--beta2", "1"],
    "beta1 negative": ["train", "--text", "{d}/text.txt", "--beta1", "-0.1"],
    "ema one": ["train", "--text", "{d}/text.txt", "--ema", "1"],
    "unknown optimizer": ["train", "--text", "{d}/text.txt", "--optimizer", "rmsprop"],
    "unknown cell": ["train", "--text", "{d}/text.txt", "--cell", "transformer"],
    "unknown vocab": ["train", "--text", "{d}/text.txt", "--vocab", "klingon"],
    "dropout one": ["train", "--text", "{d}/text.txt", "--dropout", "1"],
    "val-frac too big": ["train", "--text", "{d}/text.txt", "--val-frac", "1.5"],
    "fractions sum to one": ["train", "--text", "{d}/text.txt", "--val-frac", "0.5",
                             "--test-frac", "0.5"],
    "bad time budget": ["train", "--text", "{d}/text.txt", "--time-budget", "soon"],
    "negative clip": ["train", "--text", "{d}/text.txt", "--clip-norm", "-1"],
    "epochs zero": ["train", "--text", "{d}/text.txt", "--epochs", "0"],
    "unknown flag": ["train", "--text", "{d}/text.txt", "--frobnicate"],
    "unknown preset": ["train", "--preset", "huge"],
    "unknown command": ["fly"],
    # checkpoints
    "no checkpoint": ["sample", "{d}/nothing"],
    "truncated checkpoint": ["sample", "{d}/truncated.npz"],
    "random bytes": ["sample", "{d}/random.npz"],
    "foreign zip": ["sample", "{d}/foreign.npz"],
    "npz that is not ours": ["eval", "{d}/plain.npz"],
    "pickled member": ["sample", "{d}/pickle.npz"],
    "future format": ["sample", "{d}/future.npz"],
    "wrong shape": ["sample", "{d}/noshape.npz"],
    "wrong dtype": ["sample", "{d}/dtype.npz"],
    "missing vocabulary": ["sample", "{d}/novocab.npz"],
    "missing parameter": ["sample", "{d}/noparam.npz"],
    "broken metadata": ["sample", "{d}/badmeta.npz"],
    "text as checkpoint": ["sample", "{d}/text.txt"],
}
HOSTILE_CHECKPOINTS = {
    "string config": "strconfig.npz", "list vocabulary": "listvocab.npz",
    "deeply nested metadata": "deepmeta.npz", "step a string": "badstep.npz",
    "rng a list": "badrng.npz", "history of lists": "badhistory.npz",
    "opt/t of shape (3,)": "badoptt.npz", "hidden state of the wrong batch": "badstate.npz",
    "unknown member": "unknownmember.npz", "decompression bomb": "bomb.npz",
    "duplicate member": "duplicate.npz",
}
for _name, _file in HOSTILE_CHECKPOINTS.items():  # refused alike by every command
    for _cmd in (["sample"], ["eval"], ["train", "--resume"]):
        CASES[f"{_name} ({_cmd[0]})"] = [*_cmd, "{d}/" + _file]
CASES |= {
    # resume
    "resume changes hidden": ["train", "--resume", "{d}/run", "--hidden", "64"],
    "resume changes cell": ["train", "--resume", "{d}/run", "--cell", "lstm"],
    "resume with preset": ["train", "--resume", "{d}/run", "--preset", "seed"],
    "resume nothing": ["train", "--resume", "{d}/nothing"],
    # prompts and sampling
    "unknown prompt character": ["sample", "{d}/run", "--prime", "bell\x07"],
    "temperature zero": ["sample", "{d}/run", "--temperature", "0"],
    "top-p above one": ["sample", "{d}/run", "--top-p", "2"],
    "top-k zero": ["sample", "{d}/run", "--top-k", "0"],
    "negative length": ["sample", "{d}/run", "--length", "-1"],
    # output folders
    "out inside a file": ["train", "--text", "{d}/text.txt", "--out", "{d}/afile/run"],
    "out holds a run": ["train", "--text", "{d}/text.txt", "--out", "{d}/run"],
    "plot without metrics": ["plot", "{d}"],
    "empty split": ["eval", "{d}/run", "--split", "test", "--text", "{d}/short.txt"],
}


def snapshot(d: pathlib.Path) -> dict:
    return {p.relative_to(d): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def assert_one_clean_line(rc, err):
    assert rc not in (0, None), "should have failed"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("scratchrnn: error: ") and len(lines[0]) > 40


def test_the_table_is_long_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, capsys):
    before = snapshot(world)
    argv = [a.format(d=world) for a in CASES[name]]
    rc = main(argv)
    assert_one_clean_line(rc, capsys.readouterr().err)
    assert snapshot(world) == before
    assert not (world / "PWNED").exists()


def _limited_subprocess(args, limit_bytes):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], capture_output=True,
                          text=True, preexec_fn=limit, env=env, timeout=120)


def test_disk_full_keeps_the_last_checkpoint(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    before = snapshot(run)
    # every file may grow to 4 kB only: the checkpoint cannot be written, a "full disk"
    proc = _limited_subprocess(["train", "--resume", str(run), "--max-steps", "8", "--quiet"],
                              4000)
    assert_one_clean_line(proc.returncode, proc.stderr)
    assert "could not write the checkpoint" in proc.stderr
    after = snapshot(run)
    assert after[pathlib.Path("checkpoint.npz")] == before[pathlib.Path("checkpoint.npz")]
    assert after[pathlib.Path("best.npz")] == before[pathlib.Path("best.npz")]
    assert not list(run.glob(".*.tmp"))
    assert main(["train", "--resume", str(run), "--max-steps", "8", "--quiet"]) == 0


def test_diverging_run_stops_and_keeps_its_checkpoint(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    before = snapshot(run)
    rc = main(["train", "--resume", str(run), "--max-steps", "20", "--lr", "1e38",
               "--warmup", "0", "--clip-value", "0", "--quiet"])
    err = capsys.readouterr().err
    assert_one_clean_line(rc, err)
    assert "diverged at step" in err and "--lr" in err and str(run / "checkpoint.npz") in err
    assert snapshot(run)[pathlib.Path("checkpoint.npz")] == before[pathlib.Path("checkpoint.npz")]
