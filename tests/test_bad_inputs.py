"""Every bad input: non-zero exit, exactly one clear line on stderr, no traceback, and no
existing file changed. One table; add a row for each new way to fail."""

import hashlib
import json
import os
import pathlib
import pickle
import resource
import shutil
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hostile import deep, members_of, npy, npy_header, write_zip

from scratchrnn.cli.commands import main

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
    assert main(["train", "--text", str(text), "--out", str(d / "run-ln"), "--cell", "gru",
                 "--layer-norm", *TRAIN]) == 0
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
    variant("orphan.npz", meta_change=lambda m: dict(
        m, config=dict(m["config"], text=str(d / "gone.txt")),
        corpus=dict(m["corpus"], path=str(d / "gone.txt"))))  # the path a run reads first
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
    (d / "long.txt").write_text("It was. " * 600)  # 4,800 characters: a prompt too long
    (d / "huge.txt").write_text("It was. " * 3000)  # 24 kB: refused by its size, unread
    (d / "bell.txt").write_text("It rang \x07")
    # ownership: a folder of the user's files, a second run, a loose checkpoint among user files
    user = d / "userdir"
    user.mkdir()
    (user / "config.json").write_text('{"mine": true}')
    (user / "metrics.jsonl").write_text('{"step": 1, "train_loss": 2.0}\n')
    (user / ".notes.tmp").write_text("draft")
    shutil.copytree(run, d / "run2")
    notrun = d / "notrun"
    notrun.mkdir()
    (notrun / "metrics.jsonl").write_text('{"step": 1, "train_loss": 2.0}\n')
    loose = d / "loose"
    loose.mkdir()
    shutil.copy(run / "checkpoint.npz", loose / "checkpoint.npz")
    (loose / "notes.txt").write_text("mine")
    # resume knows its data: a run whose text changed since, one whose text is gone
    for name in ("changed", "gone"):
        (d / f"{name}.txt").write_text("It was the age of wisdom, the age of foolishness.\n" * 40)
        assert main(["train", "--text", str(d / f"{name}.txt"), "--out", str(d / f"run-{name}"),
                     *TRAIN]) == 0
    with open(d / "changed.txt", "a") as f:
        f.write("One line more.\n")
    (d / "gone.txt").unlink()
    folders(d)
    state_dicts(d)
    run_folders(d)
    any_language(d, variant)
    return d


def any_language(d: pathlib.Path, variant) -> None:
    """Issue 30: texts in other scripts and encodings, a run of the text's own characters,
    and checkpoints whose vocabulary is not what a run writes."""
    (d / "zh.txt").write_text("「春眠不觉晓，处处闻啼鸟。」\n" * 40, encoding="utf-8")
    (d / "sjis.txt").write_bytes("こんにちは、世界。\n".encode("shift_jis") * 40)
    (d / "zh16.txt").write_bytes(("「春眠不觉晓，处处闻啼鸟。」\n" * 40).encode("utf-16"))
    # 70,000 distinct characters (beyond the BMP's surrogates): more than uint16 ids hold
    (d / "many.txt").write_text("".join(map(chr, range(0x10000, 0x10000 + 70_000))))
    (d / "ru.txt").write_text("Мой дядя самых честных правил, «когда не в шутку занемог».\n"
                              * 40, encoding="utf-8")
    assert main(["train", "--text", str(d / "ru.txt"), "--out", str(d / "run-ru"), *TRAIN]) == 0
    variant("surrogatevocab.npz", meta_change=lambda m: dict(m, vocab="\ud800" + m["vocab"][1:]))
    variant("junkkind.npz", meta_change=lambda m: dict(m, vocab_kind="klingon"))
    variant("shortcounts.npz", meta_change=lambda m: dict(m, vocab_counts=m["vocab_counts"][1:]))
    variant("bytesofchars.npz", meta_change=lambda m: dict(m, vocab_kind="bytes"))
    variant("negcounts.npz", meta_change=lambda m: dict(
        m, vocab_counts=[-1] * len(m["vocab_counts"])))


def folders(d: pathlib.Path) -> None:
    """--text folders that hold nothing to read, and symlink loops."""
    (d / "emptydir" / "sub").mkdir(parents=True)
    (d / "emptydir" / "sub" / "empty.txt").write_text("")
    (d / "bindir").mkdir()
    (d / "bindir" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (d / "bindir" / "b.bin").write_bytes(bytes(range(256)) * 4)
    (d / "loopdir" / "inner").mkdir(parents=True)
    (d / "loopdir" / "inner" / "a.txt").write_text("some text\n" * 100)
    (d / "loopdir" / "inner" / "back").symlink_to(d / "loopdir")
    (d / "selflink").symlink_to(d / "selflink")


def run_folders(d: pathlib.Path) -> None:
    """Runs whose folder or record is not what a command may assume (round 3): one that kept
    only its results, an imported one (no text recorded), one with no test split."""
    shutil.copytree(d / "run", d / "run-results")
    (d / "run-results" / "checkpoint.npz").unlink()  # deleted to save space: best.npz is left
    assert main(["import", str(d / "sd_good.safetensors"), "--vocab", "abcdefghij", "--out",
                 str(d / "imported")]) == 0
    assert main(["train", "--text", str(d / "text.txt"), "--out", str(d / "run-notest"),
                 "--test-frac", "0", *TRAIN]) == 0
    members = dict(np.load(d / "run" / "checkpoint.npz", allow_pickle=False))
    meta = json.loads(str(members["meta"]))
    members["meta"] = np.array(json.dumps(dict(meta, config=dict(meta["config"],
                                                                 encoding="rot13"))))
    np.savez(d / "rot13.npz", **members)


def state_dicts(d: pathlib.Path) -> None:
    """PyTorch-style state dicts that `scratchrnn import` must refuse (written without torch)."""
    from scratchrnn.interop.export import write_safetensors

    rng = np.random.default_rng(0)
    V, E, H = 10, 4, 6
    good = {"embed.weight": (V, E), "rnn.weight_ih_l0": (3 * H, E),
            "rnn.weight_hh_l0": (3 * H, H), "rnn.bias_ih_l0": (3 * H,),
            "rnn.bias_hh_l0": (3 * H,), "fc.weight": (V, H), "fc.bias": (V,)}
    good = {k: rng.normal(size=s).astype(np.float32) for k, s in good.items()}

    def variant(name, **changes):
        tensors = {k: v for k, v in {**good, **changes}.items() if v is not None}
        with open(d / name, "wb") as f:
            write_safetensors(f, tensors, {})

    variant("sd_good.safetensors")
    variant("sd_bidir.safetensors", **{"rnn.weight_ih_l0_reverse": good["rnn.weight_ih_l0"],
                                       "rnn.weight_hh_l0_reverse": good["rnn.weight_hh_l0"]})
    variant("sd_proj.safetensors", **{"rnn.weight_hr_l0": np.zeros((3, H), np.float32)})
    variant("sd_missing.safetensors", **{"rnn.weight_hh_l0": None})
    variant("sd_int.safetensors", **{"embed.weight": np.zeros((V, E), np.int64)})
    variant("sd_extra.safetensors", **{"norm.weight": np.ones(H, np.float32)})
    variant("sd_two.safetensors", **{"rnn2.weight_ih_l0": good["rnn.weight_ih_l0"],
                                     "rnn2.weight_hh_l0": good["rnn.weight_hh_l0"]})
    variant("sd_inf.safetensors", **{"fc.bias": np.full(V, np.inf, np.float32)})
    variant("sd_gates.safetensors", **{"rnn.weight_hh_l0": np.zeros((2 * H, H), np.float32)})
    (d / "evil.pt").write_bytes(pickle.dumps(Evil(d / "PWNED")))


class Evil:
    """A pickle payload: loading it would create the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


CASES = {
    # files
    "missing text": ["train", "--text", "{d}/nope.txt"],
    "empty folder": ["train", "--text", "{d}/emptydir"],
    "folder of only binary files": ["train", "--text", "{d}/bindir"],
    "symlink loop in a folder": ["train", "--text", "{d}/loopdir"],
    "text is a symlink loop": ["train", "--text", "{d}/selflink"],
    "glob matches nothing": ["train", "--text", "{d}/*.nothing"],
    "one of several missing": ["train", "--text", "{d}/text.txt", "{d}/nope.txt"],
    "text flag without a path": ["train", "--text"],
    "eval on an empty folder": ["eval", "{d}/run", "--text", "{d}/emptydir"],
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
    # --distributed (the MPI refusals under mpiexec are in test_distributed.py)
    "distributed bogus": ["train", "--text", "{d}/text.txt", "--distributed", "bogus"],
    "distributed without mpiexec": ["train", "--text", "{d}/text.txt", "--out", "{d}/mpirun",
                                    "--distributed", "mpi"],
    "distributed resume without mpiexec": ["train", "--resume", "{d}/run", "--max-steps", "8",
                                           "--distributed", "mpi"],
    "unknown cell": ["train", "--text", "{d}/text.txt", "--cell", "transformer"],
    "unknown vocab": ["train", "--text", "{d}/text.txt", "--vocab", "klingon"],
    "dropout one": ["train", "--text", "{d}/text.txt", "--dropout", "1"],
    "weight-drop one": ["train", "--text", "{d}/text.txt", "--weight-drop", "1"],
    "weight-drop negative": ["train", "--text", "{d}/text.txt", "--weight-drop", "-0.1"],
    "weight-drop nan": ["train", "--text", "{d}/text.txt", "--weight-drop", "nan"],
    "weight-drop a word": ["train", "--text", "{d}/text.txt", "--weight-drop", "x"],
    "unknown recurrent-init": ["train", "--text", "{d}/text.txt", "--recurrent-init", "foo"],
    "layer-norm with lstm": ["train", "--text", "{d}/text.txt", "--cell", "lstm",
                             "--layer-norm"],
    "layer-norm with rnn": ["train", "--text", "{d}/text.txt", "--cell", "rnn", "--layer-norm"],
    "layer-norm with the seed preset": ["train", "--text", "{d}/text.txt", "--preset", "seed",
                                        "--layer-norm"],
    "layer-norm given a value": ["train", "--text", "{d}/text.txt", "--layer-norm", "yes"],
    "locked-dropout without dropout": ["train", "--text", "{d}/text.txt", "--dropout", "0",
                                       "--locked-dropout"],
    "locked-dropout with the seed preset": ["train", "--text", "{d}/text.txt", "--preset",
                                            "seed", "--locked-dropout"],
    "locked-dropout given a value": ["train", "--text", "{d}/text.txt", "--locked-dropout",
                                     "yes"],
    "shakespeare preset with lstm": ["train", "--text", "{d}/text.txt", "--preset",
                                     "shakespeare", "--cell", "lstm"],
    "val-frac too big": ["train", "--text", "{d}/text.txt", "--val-frac", "1.5"],
    "fractions sum to one": ["train", "--text", "{d}/text.txt", "--val-frac", "0.5",
                             "--test-frac", "0.5"],
    "bad time budget": ["train", "--text", "{d}/text.txt", "--time-budget", "soon"],
    "auto without a time budget": ["train", "--text", "{d}/text.txt", "--auto"],
    "auto given a value": ["train", "--text", "{d}/text.txt", "--time-budget", "1m",
                           "--auto=yes"],
    "auto on a resumed run": ["train", "--resume", "{d}/run", "--auto"],
    "auto with a preset, no budget": ["train", "--text", "{d}/text.txt", "--preset", "tiny",
                                      "--auto"],
    "negative clip": ["train", "--text", "{d}/text.txt", "--clip-norm", "-1"],
    "epochs zero": ["train", "--text", "{d}/text.txt", "--epochs", "0"],
    "unknown flag": ["train", "--text", "{d}/text.txt", "--frobnicate"],
    "unknown preset": ["train", "--preset", "huge"],
    "dry-run on MPI ranks": ["train", "--text", "{d}/text.txt", "--dry-run", "--distributed",
                             "mpi"],
    "dry-run given a value": ["train", "--text", "{d}/text.txt", "--dry-run", "yes"],
    "json without dry-run": ["train", "--text", "{d}/text.txt", "--out", "{d}/jsonrun", "--json"],
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
    "vocab with a lone surrogate": "surrogatevocab.npz", "vocab_kind junk": "junkkind.npz",
    "vocab_counts of the wrong length": "shortcounts.npz",
    "vocab_kind bytes over 96 characters": "bytesofchars.npz",
    "vocab_counts negative": "negcounts.npz",
}
for _name, _file in HOSTILE_CHECKPOINTS.items():  # refused alike by every command
    for _cmd in (["sample"], ["eval"], ["train", "--resume"]):
        CASES[f"{_name} ({_cmd[0]})"] = [*_cmd, "{d}/" + _file]
CASES |= {
    # resume
    "resume changes hidden": ["train", "--resume", "{d}/run", "--hidden", "64"],
    "resume changes cell": ["train", "--resume", "{d}/run", "--cell", "lstm"],
    "resume changes weight-drop": ["train", "--resume", "{d}/run", "--weight-drop", "0.5"],
    "resume changes recurrent-init": ["train", "--resume", "{d}/run", "--recurrent-init",
                                      "orthogonal"],
    "resume adds layer-norm": ["train", "--resume", "{d}/run", "--layer-norm"],
    "resume adds locked-dropout": ["train", "--resume", "{d}/run", "--locked-dropout"],
    "resume a layer-norm run as lstm": ["train", "--resume", "{d}/run-ln", "--cell", "lstm"],
    "resume with preset": ["train", "--resume", "{d}/run", "--preset", "seed"],
    "resume nothing": ["train", "--resume", "{d}/nothing"],
    "resume after the text changed": ["train", "--resume", "{d}/run-changed"],
    "resume after the text shrank": ["train", "--resume", "{d}/run", "--text", "{d}/short.txt"],
    "resume on another text": ["train", "--resume", "{d}/run", "--text", "{d}/changed.txt"],
    "resume after the text is gone": ["train", "--resume", "{d}/run-gone"],
    "resume names a missing text": ["train", "--resume", "{d}/run", "--text", "{d}/nope.txt"],
    "new text without resume": ["train", "--text", "{d}/text.txt", "--allow-new-text"],
    "resume into another run": ["train", "--resume", "{d}/run", "--out", "{d}/run2"],
    "resume into a user folder": ["train", "--resume", "{d}/run", "--out", "{d}/userdir"],
    "resume into a file": ["train", "--resume", "{d}/run", "--out", "{d}/afile"],
    "resume a checkpoint among user files": ["train", "--resume", "{d}/loose/checkpoint.npz"],
    # prompts and sampling
    "unknown prompt character": ["sample", "{d}/run", "--prime", "bell\x07"],
    "temperature zero": ["sample", "{d}/run", "--temperature", "0"],
    "top-p above one": ["sample", "{d}/run", "--top-p", "2"],
    "top-k zero": ["sample", "{d}/run", "--top-k", "0"],
    "negative length": ["sample", "{d}/run", "--length", "-1"],
    "clamp not three numbers": ["sample", "{d}/run", "--clamp", "0:1"],
    "clamp not a number": ["sample", "{d}/run", "--clamp", "0:a:1"],
    "clamp layer too high": ["sample", "{d}/run", "--clamp", "9:0:1"],
    "clamp unit too high": ["sample", "{d}/run", "--clamp", "0:16:1"],
    "clamp value too big": ["sample", "{d}/run", "--clamp", "0:0:1e9"],
    "clamp value nan": ["sample", "{d}/run", "--clamp", "0:0:nan"],
    # sampling options (issue 31)
    "beam zero": ["sample", "{d}/run", "--beam", "0"],
    "beam negative": ["sample", "{d}/run", "--beam", "-2"],
    "beam too wide": ["sample", "{d}/run", "--beam", "100000"],
    "beam not a number": ["sample", "{d}/run", "--beam", "wide"],
    "beam with temperature": ["sample", "{d}/run", "--beam", "3", "--temperature", "0.8"],
    "beam with top-k": ["sample", "{d}/run", "--beam", "3", "--top-k", "5"],
    "beam with top-p": ["sample", "{d}/run", "--beam", "3", "--top-p", "0.9"],
    "beam with argmax": ["sample", "{d}/run", "--beam", "3", "--argmax"],
    "beam times length too many steps": ["sample", "{d}/run", "--beam", "256", "--length",
                                         "100000"],
    "num-samples zero": ["sample", "{d}/run", "--num-samples", "0"],
    "num-samples negative": ["sample", "{d}/run", "--num-samples", "-1"],
    "num-samples too many": ["sample", "{d}/run", "--num-samples", "9" * 20],
    "num-samples times length": ["sample", "{d}/run", "--num-samples", "1000", "--length",
                                 "100000"],
    "num-samples with beam": ["sample", "{d}/run", "--num-samples", "2", "--beam", "2"],
    "stop-at empty": ["sample", "{d}/run", "--stop-at", ""],
    "stop-at too long": ["sample", "{d}/run", "--stop-at", "ab" * 200],
    "prime and prime-file": ["sample", "{d}/run", "--prime", "It", "--prime-file",
                             "{d}/text.txt"],
    "prime-file a folder": ["sample", "{d}/run", "--prime-file", "{d}"],
    "prime-file missing": ["sample", "{d}/run", "--prime-file", "{d}/nope.txt"],
    "prime-file empty": ["sample", "{d}/run", "--prime-file", "{d}/empty.txt"],
    "prime-file not UTF-8": ["sample", "{d}/run", "--prime-file", "{d}/binary.bin"],
    "prime-file too long": ["sample", "{d}/run", "--prime-file", "{d}/long.txt"],
    "prime-file too big": ["sample", "{d}/run", "--prime-file", "{d}/huge.txt"],
    "prime-file in cp1252": ["sample", "{d}/run", "--prime-file", "{d}/cp1252.txt"],
    "prime-file with a character the model lacks": ["sample", "{d}/run", "--prime-file",
                                                    "{d}/bell.txt"],
    "prime-file empty path": ["sample", "{d}/run", "--prime-file", ""],
    # the playground
    "serve no checkpoint": ["serve", "{d}/nothing"],
    "serve broken checkpoint": ["serve", "{d}/truncated.npz"],
    "serve port too high": ["serve", "{d}/run", "--port", "70000"],
    "serve port negative": ["serve", "{d}/run", "--port", "-1"],
    "serve port not a number": ["serve", "{d}/run", "--port", "http"],
    # output folders
    "out inside a file": ["train", "--text", "{d}/text.txt", "--out", "{d}/afile/run"],
    "out holds a run": ["train", "--text", "{d}/text.txt", "--out", "{d}/run"],
    "out is a folder of user files": ["train", "--text", "{d}/text.txt", "--out", "{d}/userdir"],
    "out of user files with overwrite": ["train", "--text", "{d}/text.txt", "--out",
                                         "{d}/userdir", "--overwrite"],
    "out is a file": ["train", "--text", "{d}/text.txt", "--out", "{d}/afile"],
    "out name too long": ["train", "--text", "{d}/text.txt", "--out", "{d}/" + "r" * 300],
    "out in a missing folder under a file": ["train", "--text", "{d}/text.txt", "--out",
                                             "{d}/afile/x/y"],
    "plot onto a user file": ["plot", "{d}/run", "--out", "{d}/text.txt"],
    "plot onto a user loss.png": ["plot", "{d}/run", "--out", "{d}/userdir/metrics.jsonl"],
    "plot onto a folder": ["plot", "{d}/run", "--out", "{d}/userdir"],
    "plot into a folder that is not a run": ["plot", "{d}/notrun"],
    "plot without metrics": ["plot", "{d}"],
    "empty split": ["eval", "{d}/run", "--split", "test", "--text", "{d}/short.txt"],
    # export
    "export unknown format": ["export", "{d}/run", "--format", "keras"],
    "export without format": ["export", "{d}/run"],
    "export no checkpoint": ["export", "{d}/nothing", "--format", "torch"],
    "export over a foreign file": ["export", "{d}/run", "--format", "torch", "--out",
                                   "{d}/text.txt"],
    "export onnx over a foreign file": ["export", "{d}/run", "--format", "onnx", "--out",
                                        "{d}/plain.npz"],
    "export out is a folder": ["export", "{d}/run", "--format", "torch", "--out", "{d}"],
    "export a layer-norm model": ["export", "{d}/run-ln", "--format", "torch"],
    "export a layer-norm model to onnx": ["export", "{d}/run-ln", "--format", "onnx"],
    "export html no checkpoint": ["export", "{d}/nothing", "--format", "html"],
    "export html of a folder that is not a run": ["export", "{d}/notrun", "--format", "html"],
    "export html pickled checkpoint": ["export", "{d}/pickle.npz", "--format", "html"],
    "export html over a foreign file": ["export", "{d}/run", "--format", "html", "--out",
                                        "{d}/text.txt"],
    "export html over a torch state dict": ["export", "{d}/run", "--format", "html", "--out",
                                            "{d}/sd_good.safetensors"],
    "export html out is a folder": ["export", "{d}/run", "--format", "html", "--out", "{d}"],
    "export html out under a file": ["export", "{d}/run", "--format", "html", "--out",
                                     "{d}/afile/page.html"],
    "export html beside a checkpoint among user files": ["export", "{d}/loose", "--format",
                                                         "html"],
    # import
    "import missing file": ["import", "{d}/nope.safetensors", "--vocab", "abcdefghij"],
    "import a text file": ["import", "{d}/text.txt", "--vocab", "abcdefghij"],
    "import a pickle": ["import", "{d}/evil.pt", "--vocab", "abcdefghij"],
    "import without vocabulary": ["import", "{d}/sd_good.safetensors"],
    "import wrong vocabulary size": ["import", "{d}/sd_good.safetensors", "--vocab", "abc"],
    "import repeated vocabulary": ["import", "{d}/sd_good.safetensors", "--vocab", "aacdefghij"],
    "import bidirectional": ["import", "{d}/sd_bidir.safetensors", "--vocab", "abcdefghij"],
    "import proj_size": ["import", "{d}/sd_proj.safetensors", "--vocab", "abcdefghij"],
    "import missing weight": ["import", "{d}/sd_missing.safetensors", "--vocab", "abcdefghij"],
    "import integer tensor": ["import", "{d}/sd_int.safetensors", "--vocab", "abcdefghij"],
    "import unknown tensor": ["import", "{d}/sd_extra.safetensors", "--vocab", "abcdefghij"],
    "import two recurrent modules": ["import", "{d}/sd_two.safetensors", "--vocab",
                                     "abcdefghij"],
    "import infinite weights": ["import", "{d}/sd_inf.safetensors", "--vocab", "abcdefghij"],
    "import vocab longer than a file name": ["import", "{d}/sd_good.safetensors", "--vocab",
                                             "ab" * 150],
    "import two gates": ["import", "{d}/sd_gates.safetensors", "--vocab", "abcdefghij"],
    "import into a non-empty folder": ["import", "{d}/sd_good.safetensors", "--vocab",
                                       "abcdefghij", "--out", "{d}"],
    # sizes checked before anything is allocated (issue 15)
    "hidden astronomical": ["train", "--text", "{d}/text.txt", "--hidden", "9" * 20],
    "layers absurd": ["train", "--text", "{d}/text.txt", "--layers", "100000000"],
    "batch astronomical": ["train", "--text", "{d}/text.txt", "--batch", "9" * 20],
    "seq-len astronomical": ["train", "--text", "{d}/text.txt", "--seq-len", "9" * 20],
    "model beyond memory": ["train", "--text", "{d}/text.txt", "--layers", "1000",
                            "--hidden", "8192"],
    "sample-length absurd": ["train", "--text", "{d}/text.txt", "--sample-length", "9" * 20],
    "sample-length negative": ["train", "--text", "{d}/text.txt", "--sample-length", "-1"],
    "sample length absurd": ["sample", "{d}/run", "--length", "9" * 20],
    # more hostile numbers
    "seed negative": ["train", "--text", "{d}/text.txt", "--seed", "-1"],
    "sample seed negative": ["sample", "{d}/run", "--seed", "-1"],
    "init-std inf": ["train", "--text", "{d}/text.txt", "--init-std", "inf"],
    "min-lr nan": ["train", "--text", "{d}/text.txt", "--min-lr", "nan"],
    "warmup negative": ["train", "--text", "{d}/text.txt", "--warmup", "-1"],
    "time budget inf": ["train", "--text", "{d}/text.txt", "--time-budget", "inf"],
    "time budget overflows": ["train", "--text", "{d}/text.txt", "--time-budget", "9" * 400],
    "eval-every zero": ["train", "--text", "{d}/text.txt", "--eval-every", "0"],
    "log-every negative": ["train", "--text", "{d}/text.txt", "--log-every", "-3"],
    "val-chars one": ["train", "--text", "{d}/text.txt", "--val-chars", "1"],
    "val-chars zero": ["train", "--text", "{d}/text.txt", "--val-chars", "0"],
    "test-frac nan": ["train", "--text", "{d}/text.txt", "--test-frac", "nan"],
    "temperature inf": ["sample", "{d}/run", "--temperature", "inf"],
    "temperature nan": ["sample", "{d}/run", "--temperature", "nan"],
    "top-k negative": ["sample", "{d}/run", "--top-k", "-5"],
    "top-p nan": ["sample", "{d}/run", "--top-p", "nan"],
    "resume with absurd sample-length": ["train", "--resume", "{d}/run", "--sample-length",
                                         "9" * 20],
    # empty strings
    "empty text flag": ["train", "--text", ""],
    "empty out flag": ["train", "--text", "{d}/text.txt", "--out", ""],
    "empty encoding": ["train", "--text", "{d}/text.txt", "--encoding", ""],
    "empty eval text": ["eval", "{d}/run", "--text", ""],
    "empty plot out": ["plot", "{d}/run", "--out", ""],
    # visualize
    "visualize chars zero": ["visualize", "{d}/run", "--chars", "0"],
    "visualize chars huge": ["visualize", "{d}/run", "--chars", "1000000000"],
    "visualize chars not a number": ["visualize", "{d}/run", "--chars", "many"],
    "visualize text and split": ["visualize", "{d}/run", "--text", "{d}/text.txt", "--split",
                                 "val"],
    "visualize unknown split": ["visualize", "{d}/run", "--split", "train"],
    "visualize text missing": ["visualize", "{d}/run", "--text", "{d}/nope.txt"],
    "visualize binary text": ["visualize", "{d}/run", "--text", "{d}/binary.bin"],
    "visualize corpus gone": ["visualize", "{d}/orphan.npz", "--split", "test"],
    "visualize over a foreign file": ["visualize", "{d}/run", "--out", "{d}/text.txt"],
    "visualize out is a folder": ["visualize", "{d}/run", "--out", "{d}"],
    "visualize no checkpoint": ["visualize", "{d}/nothing"],
    "visualize pickled checkpoint": ["visualize", "{d}/pickle.npz"],
    "visualize text too short": ["visualize", "{d}/run", "--text", "{d}/afile"],
    # round 3: run folders
    "out holds only the results of a run": ["train", "--text", "{d}/text.txt", "--out",
                                            "{d}/run-results"],
    "import into a run's results": ["import", "{d}/sd_good.safetensors", "--vocab",
                                    "abcdefghij", "--out", "{d}/run-results"],
    "import into a run": ["import", "{d}/sd_good.safetensors", "--vocab", "abcdefghij",
                          "--out", "{d}/run"],
    "eval an imported run": ["eval", "{d}/imported"],
    "eval an imported run's test split": ["eval", "{d}/imported", "--split", "test"],
    "visualize an imported run": ["visualize", "{d}/imported"],
    "eval a test split the run never had": ["eval", "{d}/run-notest", "--split", "test"],
    "visualize a test split the run never had": ["visualize", "{d}/run-notest", "--split",
                                                 "test"],
    "eval after the text changed": ["eval", "{d}/run-changed"],
    "eval all after the text changed": ["eval", "{d}/run-changed", "--split", "all"],
    "visualize after the text changed": ["visualize", "{d}/run-changed"],
    "eval after the text is gone": ["eval", "{d}/run-gone"],
    "visualize after the text is gone": ["visualize", "{d}/run-gone"],
    "encoding that fails oddly": ["train", "--text", "{d}/text.txt", "--encoding", "punycode",
                                  "--out", "{d}/enc-out"],
    "encoding that decodes nothing": ["train", "--text", "{d}/text.txt", "--encoding",
                                      "undefined", "--out", "{d}/enc-out"],
    "encoding str to str": ["train", "--text", "{d}/text.txt", "--encoding", "rot13", "--out",
                            "{d}/enc-out"],
    "encoding bytes to bytes": ["train", "--text", "{d}/text.txt", "--encoding", "zlib",
                                "--out", "{d}/enc-out"],
    "encoding base64": ["train", "--text", "{d}/text.txt", "--encoding", "base64"],
    "encoding hex": ["train", "--text", "{d}/text.txt", "--encoding", "hex"],
    "encoding with a NUL": ["train", "--text", "{d}/text.txt", "--encoding", "utf-8\x00"],
    "encoding idna on accents": ["train", "--text", "{d}/cp1252.txt", "--encoding", "idna",
                                 "--out", "{d}/enc-out"],
    "encoding utf-32 on ASCII": ["train", "--text", "{d}/text.txt", "--encoding", "utf-32",
                                 "--out", "{d}/enc-out"],
    "encoding of a folder": ["train", "--text", "{d}/loopdir/inner/a.txt", "{d}/text.txt",
                             "--encoding", "punycode", "--out", "{d}/enc-out"],
    "resume with a wrong encoding": ["train", "--resume", "{d}/run", "--encoding", "rot13"],
    "visualize beside a checkpoint among user files": ["visualize", "{d}/loose/checkpoint.npz",
                                                       "--text", "{d}/text.txt"],
    "export beside a checkpoint among user files": ["export", "{d}/loose/checkpoint.npz",
                                                    "--format", "torch"],
    "export onnx beside a checkpoint among user files": ["export", "{d}/loose", "--format",
                                                         "onnx"],
    "plot over another run's loss.png": ["plot", "{d}/run", "--out", "{d}/run2/loss.png"],
}
CASES |= {  # any language (issue 30)
    "UTF-8 read as shift_jis": ["train", "--text", "{d}/zh.txt", "--encoding", "shift_jis"],
    "shift_jis read as utf-8": ["train", "--text", "{d}/sjis.txt", "--encoding", "utf-8"],
    "UTF-16 without its encoding": ["train", "--text", "{d}/zh16.txt"],
    "binary text read as latin-1": ["train", "--text", "{d}/binary.bin", "--encoding",
                                    "latin-1"],
    "binary text read as utf-16": ["train", "--text", "{d}/binary.bin", "--encoding", "utf-16"],
    "more distinct characters than ids hold": ["train", "--text", "{d}/many.txt"],
    "more distinct characters than ids hold (unicode)": ["train", "--text", "{d}/many.txt",
                                                         "--vocab", "unicode"],
    "min-count zero": ["train", "--text", "{d}/zh.txt", "--min-count", "0"],
    "min-count negative": ["train", "--text", "{d}/zh.txt", "--min-count", "-1"],
    "min-count that leaves nothing": ["train", "--text", "{d}/zh.txt", "--min-count",
                                      "100000"],
    "min-count with vocab ascii": ["train", "--text", "{d}/zh.txt", "--vocab", "ascii",
                                   "--min-count", "2"],
    "min-count with vocab bytes": ["train", "--text", "{d}/zh.txt", "--vocab", "bytes",
                                   "--min-count", "2"],
    "vocab nonsense": ["train", "--text", "{d}/zh.txt", "--vocab", "nonsense"],
    "min-count where vocab auto chooses ascii": ["train", "--text", "{d}/text.txt",
                                                 "--min-count", "2"],
    "eval a text of another script": ["eval", "{d}/run-ru", "--text", "{d}/zh.txt"],
    "prompt of unseen characters": ["sample", "{d}/run-ru", "--prime", "Мой \u05d0"],
    "prompt of another script": ["sample", "{d}/run-ru", "--prime", "春眠"],
    "prompt with half a surrogate pair": ["sample", "{d}/run-ru", "--prime", "Мой \ud83d"],
    "prompt of bytes not UTF-8": ["sample", "{d}/run-ru", "--prime", "Мой \udcff"],
    "stop-at of bytes not UTF-8": ["sample", "{d}/run-ru", "--stop-at", "\udcff"],
}
for _argv in (["eval"], ["sample"], ["visualize"], ["train", "--resume"],
              ["export", "{d}/rot13.npz", "--format", "torch"]):  # its config: no text encoding
    _argv = _argv if "{d}/rot13.npz" in _argv else [*_argv, "{d}/rot13.npz"]
    CASES[f"checkpoint encoding rot13 ({_argv[0]})"] = _argv


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
    assert len(CASES) >= 85


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, capsys):
    before = snapshot(world)
    argv = [a.format(d=world) for a in CASES[name]]
    rc = main(argv)
    assert_one_clean_line(rc, capsys.readouterr().err)
    assert snapshot(world) == before
    assert not (world / "PWNED").exists()


# --dry-run goes through training's own checks (its own refusals: on MPI ranks, --json)
DRY_RUNS = sorted(name for name, argv in CASES.items() if argv[0] == "train"
                  and not {"--distributed", "--dry-run", "--json"} & set(argv))


@pytest.mark.parametrize("name", DRY_RUNS)
def test_dry_run_refuses_what_train_refuses(name, world, capsys):
    argv = [a.format(d=world) for a in CASES[name]]
    main(argv)
    said = capsys.readouterr().err
    before, paths = snapshot(world), sorted(world.rglob("*"))
    rc = main([argv[0], "--dry-run", *argv[1:]])
    err = capsys.readouterr().err
    assert_one_clean_line(rc, err)
    assert err == said
    assert snapshot(world) == before and sorted(world.rglob("*")) == paths


def _limited_subprocess(args, limit_bytes):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], capture_output=True,
                          text=True, preexec_fn=limit, env=env, timeout=120)


def test_file_vanishing_while_read(tmp_path, monkeypatch, capsys):
    """A file of a --text folder deleted between listing and reading: one line, no run."""
    from scratchrnn.data import prepare

    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text("It was the best of times.\n" * 50)
    read = prepare.raw_chunks

    def deleting(path, chunk_bytes):
        if path.name == "a.txt":
            (folder / "b.txt").unlink()
        yield from read(path, chunk_bytes)

    monkeypatch.setattr(prepare, "raw_chunks", deleting)
    rc = main(["train", "--text", str(folder), "--out", str(tmp_path / "run"), *TRAIN])
    err = capsys.readouterr().err
    assert_one_clean_line(rc, err)
    assert "b.txt disappeared while the corpus was being read" in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


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


@pytest.mark.parametrize("argv", [["--hidden", "9" * 20], ["--layers", "100000000"],
                                  ["--batch", "9" * 20], ["--layers", "1000", "--hidden", "8192"]])
def test_size_refusals_are_immediate(argv, world, capsys):
    """Refused by arithmetic before anything is made: fast, and no memory to speak of."""
    import time
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        rc = main(["train", "--text", str(world / "text.txt"), "--out", str(world / "no"), *argv])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5 and peak < 5 << 20
    assert_one_clean_line(rc, capsys.readouterr().err)
    assert not (world / "no").exists()


def test_fresh_run_diverging_at_step_one_says_nothing_was_saved(world, tmp_path, capsys):
    out = tmp_path / "fresh"
    rc = main(["train", "--text", str(world / "text.txt"), "--out", str(out), "--hidden", "16",
               "--batch", "2", "--seq-len", "8", "--max-steps", "20", "--eval-every", "10",
               "--lr", "1e38", "--warmup", "0", "--clip-value", "0", "--quiet"])
    err = capsys.readouterr().err
    assert_one_clean_line(rc, err)
    assert "diverged at step" in err and "before this run saved a checkpoint" in err
    assert "checkpoint.npz" not in err and not (out / "checkpoint.npz").exists()


def test_prompt_that_cleans_to_nothing_is_no_prompt(world, capsys):
    assert main(["sample", str(world / "run"), "--length", "10", "--seed", "1"]) == 0
    plain = capsys.readouterr().out
    for prompt in ("\u0301", "\u200b"):
        assert main(["sample", str(world / "run"), "--prime", prompt, "--length", "10",
                     "--seed", "1"]) == 0
        captured = capsys.readouterr()
        assert captured.out == prompt + plain
        assert captured.err.count("\n") == 1 and "scratchrnn: warning: " in captured.err


@pytest.mark.parametrize("prime, says", [
    ("Мой \u05d0", "'\u05d0' U+05D0"), ("春眠", "'春' U+6625, '眠' U+7720"),
    ("Мой \ud83d", "U+D83D, half a surrogate pair"), ("Мой \udcff", "U+DCFF"),
    ("Мой \udcff", "a byte that is not UTF-8")])
def test_a_refused_prompt_names_the_character_and_its_code(prime, says, world, capsys):
    assert main(["sample", str(world / "run-ru"), "--prime", prime]) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_eval_warns_about_characters_outside_a_corpus_vocabulary(world, tmp_path, capsys):
    run = tmp_path / "corpus"
    assert main(["train", "--text", str(world / "text.txt"), "--out", str(run), "--vocab",
                 "corpus", *TRAIN]) == 0
    other = tmp_path / "other.txt"
    other.write_text("Zebras quiz the jukebox.\n" * 50)
    capsys.readouterr()
    assert main(["eval", str(run), "--text", str(other)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scratchrnn: warning: ")
    assert "are not in the model's vocabulary" in err[0]
    assert "('Z' U+005A, 'j' U+006A, 'k' U+006B, 'q' U+0071" in err[0]
    assert main(["eval", str(run), "--text", str(world / "text.txt")]) == 0
    assert capsys.readouterr().err == ""  # the model's own text: nothing to say


def test_eval_json_is_strict_json(world, monkeypatch, capsys):
    monkeypatch.setattr("scratchrnn.cli.commands.evaluate", lambda *a, **k: 800.0)  # exp(800) = inf
    assert main(["eval", str(world / "run"), "--json"]) == 0
    out = capsys.readouterr().out
    row = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert row["perplexity"] is None and row["nats_per_char"] == 800.0


def test_metrics_with_a_bad_byte_are_still_read(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    good = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(b'{"step": 0, "train_loss": 9.0}\n\xff\xfe{"step"\n'
                                        + good)
    rows = __import__("scratchrnn").read_metrics(run)
    assert rows[0] == {"step": 0, "train_loss": 9.0} and len(rows) == good.count(b"\n") + 1
    assert main(["plot", str(run), "--out", str(tmp_path / "x.png")]) == 0


# round 3: reads. A FIFO, a device or a socket where a command reads a file: refused in one
# line, never read for ever. These run in one child process with a time and memory cap per
# command, so a read that never ends fails the test instead of hanging it.
READ_SPECIAL = {"a FIFO": "{s}/fifo", "/dev/zero": "/dev/zero",
                "a symlink to /dev/urandom": "{s}/urandom", "a socket": "{s}/socket"}
READS = {}
for _kind, _path in READ_SPECIAL.items():
    for _cmd in (["sample"], ["eval"], ["visualize"], ["export", "--format", "torch"],
                 ["serve"], ["train", "--resume"]):
        READS[f"{_cmd[0]} a checkpoint that is {_kind}"] = [*_cmd, _path]
READS |= {
    "sample a run whose checkpoint is a FIFO": ["sample", "{s}/fiforun"],
    "sample with a --prime-file that is a FIFO": ["sample", "{d}/run", "--prime-file",
                                                  "{s}/fifo"],
    "sample with a --prime-file that is /dev/zero": ["sample", "{d}/run", "--prime-file",
                                                     "/dev/zero"],
    "sample with a --prime-file linking to /dev/urandom": ["sample", "{d}/run",
                                                           "--prime-file", "{s}/urandom"],
    "plot a run whose metrics are a FIFO": ["plot", "{s}/fiforun"],
    "train on a FIFO": ["train", "--text", "{s}/fifo", "--out", "{s}/out"],
    "train on /dev/zero": ["train", "--text", "/dev/zero", "--out", "{s}/out"],
    "eval on a symlink to /dev/urandom": ["eval", "{d}/run", "--text", "{s}/urandom"],
    "visualize a FIFO": ["visualize", "{d}/run", "--text", "{s}/fifo", "--out", "{s}/x.html"],
    "import a FIFO": ["import", "{s}/fifo", "--vocab", "abcdefghij", "--out", "{s}/out"],
    "the cached book is a FIFO": ["train", "--out", "{s}/out", *TRAIN],
    "the cached book links to /dev/zero": ["train", "--out", "{s}/out", *TRAIN],
    "import with a --vocab that links to /dev/urandom": ["import", "{d}/sd_good.safetensors",
                                                         "--vocab", "{s}/urandom", "--out",
                                                         "{s}/out"],
}
READ_HOMES = {"the cached book is a FIFO": "fifohome", "the cached book links to /dev/zero":
              "zerohome"}  # $SCRATCHRNN_HOME for these
READ_SAYS = {"plot a run whose metrics are a FIFO": "no metrics",
             "import a FIFO": "is not a file",  # else "not a regular file"
             "import with a --vocab that links to /dev/urandom": "--vocab"}  # read as letters
_READ_RUNNER = """
import contextlib, io, json, os, signal, sys
from scratchrnn.cli.commands import main
def stop(*_):
    raise TimeoutError("still reading after 20 s")
signal.signal(signal.SIGALRM, stop)
for name, argv, home in json.loads(sys.stdin.read()):
    os.environ["SCRATCHRNN_HOME"] = home
    err = io.StringIO()
    signal.alarm(20)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
    except BaseException as e:
        rc = None
        err.write(f"Traceback: {type(e).__name__}: {e}")
    signal.alarm(0)
    print(json.dumps([name, rc, err.getvalue()]), flush=True)
"""


@pytest.fixture(scope="module")
def reads(world, tmp_path_factory):
    """{case: (exit code, stderr)} of every READS case, all run in one capped child process."""
    from hostile import special_files

    s = tmp_path_factory.mktemp("special")
    special_files(s)
    shutil.copytree(world / "run", s / "fiforun")
    for name in ("checkpoint.npz", "metrics.jsonl"):
        (s / "fiforun" / name).unlink()
        os.mkfifo(s / "fiforun" / name)
    for home, make in (("fifohome", os.mkfifo), ("zerohome", lambda p: p.symlink_to("/dev/zero"))):
        (s / home).mkdir()
        make(s / home / "pg98.txt")
    cases = [[name, [a.format(d=world, s=s) for a in argv], str(s / READ_HOMES.get(name, "home"))]
             for name, argv in READS.items() if "socket" not in name or (s / "socket").exists()]
    def kinds():  # every file of ours and what it is: a FIFO must stay a FIFO
        return snapshot(world), {p: stat.S_IFMT(p.lstat().st_mode) for p in s.rglob("*")
                                 if "out" not in p.relative_to(s).parts}

    before = kinds()

    def cap():  # a read that never ends stops at this much memory, if not at the alarm
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _READ_RUNNER], input=json.dumps(cases),
                          capture_output=True, text=True, env=env, preexec_fn=cap,
                          timeout=60 + 20 * len(cases))
    results = {name: (rc, err) for name, rc, err in map(json.loads, proc.stdout.splitlines())}
    assert kinds() == before  # nothing written or replaced
    # (a failed training leaves its new --out folder behind, marker and lock only: train.py)
    assert not list((s / "out").glob("*.npz"))
    return results


def test_the_reads_table_covers_every_command():
    assert {argv[0] for argv in READS.values()} == {"sample", "eval", "visualize", "export",
                                                    "serve", "train", "plot", "import"}


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_only_regular_files(name, reads):
    if "socket" in name and name not in reads:
        pytest.skip("the temp folder's path is too long for a socket")
    rc, err = reads[name]
    assert_one_clean_line(rc, err)
    assert READ_SAYS.get(name, "not a regular file") in err


def test_a_run_whose_marker_and_metrics_are_fifos_goes_on(world, tmp_path):
    """FIFOs in place of a run's marker and metrics.jsonl are no marker and no metrics (they
    blocked the commands that looked): plot and visualize read the run, and training goes
    on and replaces them with files. In a child process with a timeout."""
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    for name in ("scratchrnn-run.json", "metrics.jsonl"):
        (run / name).unlink()
        os.mkfifo(run / name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for args in (["visualize", str(run), "--chars", "50"], ["plot", str(run)],
                 ["train", "--resume", str(run), "--max-steps", "6", "--quiet"]):
        proc = subprocess.run([sys.executable, "-m", "scratchrnn", *args], env=env,
                              capture_output=True, text=True, timeout=120)
        if args[0] == "plot":  # no metrics to plot: said in one line
            assert_one_clean_line(proc.returncode, proc.stderr)
            assert "no metrics" in proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr
    assert (run / "metrics.jsonl").is_file() and (run / "scratchrnn-run.json").is_file()
    assert main(["plot", str(run)]) == 0
