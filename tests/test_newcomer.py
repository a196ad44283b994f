"""What a newcomer trips on: the README's commands in the order it gives them, and the words
`train` shows (its --help's defaults, its progress bar)."""

import shutil
from pathlib import Path

import pytest

from scratchrnn.cli import main
from scratchrnn.config import default_out

SHORT = ["--max-steps", "2", "--eval-every", "2", "--val-chars", "300", "--sample-length", "0"]


@pytest.fixture
def newcomer(tmp_path, monkeypatch, book):
    """A fresh working folder, the book where the downloader caches it (as .ci/run does)."""
    (tmp_path / "cache").mkdir()
    shutil.copy(book, tmp_path / "cache" / "pg98.txt")
    monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_the_readme_sequence_runs_as_written(newcomer, capsys):
    """`scratchrnn train`, then `scratchrnn train --preset tiny`: the preset run was refused
    because runs/pg98 held the first. Each goes to a folder of its own, named in the first
    line; an explicit --out still goes where it says."""
    assert main(["train", "--quiet", "--hidden", "16", *SHORT]) == 0
    assert "-> runs/pg98\n" in capsys.readouterr().out
    assert main(["train", "--preset", "tiny", "--quiet", *SHORT]) == 0
    assert "-> runs/pg98-tiny\n" in capsys.readouterr().out
    for run in ("pg98", "pg98-tiny"):
        assert (newcomer / "runs" / run / "checkpoint.npz").is_file()
    assert main(["train", "--preset", "tiny", "--quiet", "--out", "mine", *SHORT]) == 0
    assert (newcomer / "mine" / "checkpoint.npz").is_file()
    assert default_out("data/tinyshakespeare.txt", "shakespeare") == Path(
        "runs/tinyshakespeare-shakespeare")
    assert default_out() == Path("runs/pg98")
