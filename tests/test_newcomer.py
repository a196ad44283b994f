"""What a newcomer trips on: the README's commands in the order it gives them, and the words
`train` shows (its --help's defaults, its progress bar)."""

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from scratchrnn.cli.commands import main
from scratchrnn.store.config import TrainConfig, default_out

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


def _shown(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else (
        f"{value:g}" if isinstance(value, float) else str(value))


def test_train_help_shows_every_default(capsys):
    """Most numeric flags showed no default; now each one with a default says it, taken from
    TrainConfig (so a changed default cannot leave the help behind)."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    options = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    blocks = [" ".join(b.split()) for b in re.split(r"\n  (?=-)", "\n" + options) if b.strip()]
    by_flag = {b.split()[0].rstrip(","): b for b in blocks}
    checked = 0
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in by_flag, flag  # every field is a flag
        value = getattr(TrainConfig(), f.name)
        if value is not None:
            assert f"(default: {_shown(value)})" in by_flag[flag], by_flag[flag]
            checked += 1
    assert checked >= 25
    assert "(default: 256)" in by_flag["--hidden"] and "(default: 0.003)" in by_flag["--lr"]


def test_the_progress_bar_speaks_words(small_text, capsys):
    """The bar said `cps=`, explained nowhere: it says chars/s, and --help says what each
    field is."""
    assert main(["train", "--text", str(small_text), "--hidden", "8", "--layers", "1",
                 "--batch", "2", "--seq-len", "8", *SHORT]) == 0
    err = capsys.readouterr().err
    for field in ("train loss=", "val loss=", "chars/s="):
        assert field in err, err
    assert "cps=" not in err and " val=" not in err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "characters trained on per second" in " ".join(capsys.readouterr().out.split())
