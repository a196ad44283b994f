"""--text beyond one file: a folder (recursively, sorted, binary files skipped and counted), a
glob, several paths. Checked on a real tree (the project's own src/ plus the book): the corpus
is exactly the files cleaned one by one and joined with a newline, in memory and memory-mapped."""

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from scratchrnn.cli.commands import main
from scratchrnn.data import corpus as data
from scratchrnn.data.corpus import corpus_name, load_corpus
from scratchrnn.data.sources import expand
from scratchrnn.data.vocab import Vocab, clean
from scratchrnn.errors import ScratchRNNError

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = ["--hidden", "8", "--layers", "1", "--batch", "2", "--seq-len", "8", "--max-steps",
        "2", "--eval-every", "2", "--sample-length", "0", "--quiet"]


@pytest.fixture
def tree(tmp_path):
    """A copy of the project's src/ with a binary file, a hidden folder and an empty file."""
    root = tmp_path / "src"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / "scratchrnn" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 9)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "scratchrnn" / "empty.txt").write_text("")
    return root


def joined(files, vocab) -> np.ndarray:
    """The expected corpus: each file cleaned on its own, joined with a newline."""
    text = "\n".join(clean(Path(f).read_text(encoding="utf-8-sig"), vocab) for f in files)
    return vocab.encode(text)


def whole(corpus) -> np.ndarray:
    return np.concatenate([corpus.train, corpus.val, corpus.test])


def test_folder_and_book_are_the_files_joined(tree, book):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = load_corpus([str(tree), str(book)])
    # every text file of the tree: not the hidden .git, the binary logo or the empty file
    py = sorted((p for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts
                 and p.name not in ("logo.png", "empty.txt")),
                key=lambda p: p.relative_to(tree).parts)
    assert sum(p.suffix == ".py" for p in py) >= 15  # the project's own modules
    np.testing.assert_array_equal(whole(corpus), joined([*py, book], Vocab.ascii()))
    assert [str(w.message) for w in caught] == ["skipped 1 binary or non-UTF-8 file of `text` "
                                                f"({len(py) + 1} read)"]
    assert corpus.name == "src+1" == corpus_name([str(tree), str(book)])
    assert "def load_corpus" in corpus.vocab.decode(corpus.train[:400_000])


@pytest.mark.filterwarnings("ignore:skipped 1 binary")
def test_memory_mapped_folder_equals_in_memory(tree, small_text, tmp_path, monkeypatch):
    book = small_text
    want = whole(load_corpus([str(tree), str(book)]))
    monkeypatch.setattr(data, "MEMMAP_BYTES", 1000)
    run = tmp_path / "run"
    mapped = load_corpus([str(tree), str(book)], cache=run)
    assert mapped.mapped == run / "corpus.u8"
    np.testing.assert_array_equal(whole(mapped), want)
    key = json.loads((run / "corpus.json").read_text())["key"]
    assert len(key["sources"]) == len(expand([str(tree), str(book)]))
    # a changed source (size and mtime) makes the prepared file stale: prepared again
    first = tree / "scratchrnn" / "__init__.py"
    first.write_text(first.read_text() + "\n# changed\n")
    again = load_corpus([str(tree), str(book)], cache=run)
    assert len(whole(again)) == len(want) + len("\n# changed\n")


def test_glob_picks_only_matching_files(tree):
    files = expand(str(tree / "**" / "*.py"))
    assert files and all(f.suffix == ".py" for f in files)
    assert corpus_name(str(tree / "**" / "*.py")) == "src"
    corpus = load_corpus(str(tree / "**" / "*.py"), val_frac=0, test_frac=0)
    np.testing.assert_array_equal(corpus.train, joined(files, Vocab.ascii()))


def test_several_files_in_the_order_given(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("first\r\n")
    b.write_text("second\tline")
    corpus = load_corpus([str(b), str(a)], val_frac=0, test_frac=0)
    assert corpus.vocab.decode(corpus.train) == "second line\nfirst\n"
    seed = load_corpus([str(b), str(a)], "seed", val_frac=0, test_frac=0)
    assert seed.vocab.decode(seed.train) == "second line first "  # no newline in seed
    assert corpus_name([str(a), str(b)]) == "a+1"


def test_walk_follows_folder_links_reads_each_file_once_and_refuses_file_loops(tmp_path):
    root = tmp_path / "c"
    (root / "b").mkdir(parents=True)
    (root / "b" / "x.txt").write_text("x\n")
    (root / "a.txt").write_text("a\n")
    (root / "link").symlink_to(root / "b")  # a second way to the same file
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "y.txt").write_text("y\n")
    (root / "z").symlink_to(tmp_path / "other")
    assert [p.relative_to(root).as_posix() for p in expand(str(root))] == \
        ["a.txt", "b/x.txt", "z/y.txt"]
    (root / "self").symlink_to(root / "self")
    with pytest.raises(ScratchRNNError, match="self cannot be read"):
        expand(str(root))


def test_train_and_eval_on_a_folder_and_several_paths(tree, small_text, capsys):
    """Through the command line: the skipped binary file is one warning line on stderr."""
    assert main(["train", "--text", str(small_text), *TINY]) == 0
    cfg = json.loads(Path("runs/small/config.json").read_text())
    assert cfg["text"] == str(small_text)  # one path is saved as the string it always was
    capsys.readouterr()
    assert main(["train", "--text", str(tree), str(small_text), *TINY]) == 0
    assert capsys.readouterr().err.count("scratchrnn: warning: skipped 1 binary") == 1
    cfg = json.loads(Path("runs/src+1/config.json").read_text())
    assert cfg["text"] == [str(tree), str(small_text)]
    assert main(["eval", "runs/src+1", "--json"]) == 0
    assert main(["eval", "runs/small", "--text", str(tree / "scratchrnn"), "--json"]) == 0
    assert main(["train", "--resume", "runs/src+1", "--text", str(tree), str(small_text),
                 "--max-steps", "3", "--quiet"]) == 0
    assert main(["train", "--text", str(tree / "**" / "*.py"), *TINY]) == 0
    assert Path("runs/src/checkpoint.npz").is_file()


@pytest.mark.filterwarnings("ignore:skipped 1 binary")
def test_a_folder_named_with_a_dot(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert corpus_name(".") == "src" and corpus_name("./") == "src"
    assert os.path.basename(str(expand(".")[0])) != ""


def test_special_files_are_not_read(tmp_path):
    """A FIFO would block a reader forever: in a folder it is passed over, named it is refused."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("text\n")
    os.mkfifo(tmp_path / "d" / "pipe")
    assert expand(str(tmp_path / "d")) == [tmp_path / "d" / "a.txt"]
    with pytest.raises(ScratchRNNError, match="is not a regular file"):
        expand(str(tmp_path / "d" / "pipe"))


def test_folder_and_glob_with_every_special_file_read_only_the_text(small_text, tmp_path):
    """A FIFO, a socket, a device link and a folder among text files: passed over by the walk
    and the glob, in bounded time (a child process with a timeout), and the corpus is the
    text alone."""
    from hostile import special_files

    folder = tmp_path / "mixed"
    special_files(folder)
    shutil.copy(small_text, folder / "a.txt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for spec in (str(folder), str(folder / "*")):
        proc = subprocess.run([sys.executable, "-m", "scratchrnn", "eval", str(_tiny_run(
            small_text, tmp_path)), "--text", spec, "--json"], env=env, capture_output=True,
            text=True, timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert json.loads(proc.stdout)["chars"] == len(load_corpus(small_text, val_frac=0,
                                                                   test_frac=0).train)


def _tiny_run(text, tmp_path) -> Path:
    out = tmp_path / "run"
    if not out.exists():
        assert main(["train", "--text", str(text), "--out", str(out), *TINY]) == 0
    return out


def test_a_text_named_in_bytes_that_are_not_utf8(small_text, tmp_path, monkeypatch, capsys):
    """The run name from b'\\xff.txt' is printable: training (with its loss plot), plot and
    visualize all work. (The name was '\\udcff', which matplotlib and the page's UTF-8
    refused with a traceback.)"""
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"\xff\xfe.txt")
    shutil.copy(small_text, name)
    assert corpus_name(name) == "__" and corpus_name([name, name]) == "__+1"
    train = ["train", "--text", name, *TINY]
    assert main(train) == 0 and (tmp_path / "runs" / "__" / "loss.png").is_file()
    assert main(["plot", "runs/__", "--out", "again.png"]) == 0
    assert main(["visualize", "runs/__", "--chars", "50"]) == 0
    assert main(["visualize", "runs/__", "--text", name, "--chars", "50", "--out",
                 "x.html"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_outputs_named_in_bytes_that_are_not_utf8_print_as_those_bytes(small_text, tmp_path):
    """`--out` names that are not UTF-8 reach stdout as the file's own bytes, even where stdout
    is strict UTF-8 (a UTF-8 locale): it raised UnicodeEncodeError after the file was written."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict",
           "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "scratchrnn", *args], cwd=tmp_path,
                              env=env, capture_output=True, timeout=120)

    done = run("train", "--text", str(small_text), "--out", b"r\xff", *TINY)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-400:]
    assert done.stdout.rstrip().endswith(b"r\xff")
    for args in (["export", b"r\xff", "--format", "torch", "--out", b"m\xff.safetensors"],
                 ["plot", b"r\xff", "--out", b"l\xff.png"],
                 ["visualize", b"r\xff", "--chars", "50", "--out", b"p\xff.html"]):
        done = run(*args)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-400:]
        assert done.stdout.strip() == args[-1]
        assert (tmp_path / os.fsdecode(args[-1])).is_file()
