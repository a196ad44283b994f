"""Ownership of files: run folders carry a marker and a lock, a command writes only files it owns,
temp files are cleaned by pattern only, read-only commands keep their cache to themselves, and
resume checks its text by content."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn import fsutil
from scratchrnn.cli.commands import main
from scratchrnn.store import owner

TRAIN = ["--hidden", "16", "--batch", "2", "--seq-len", "8", "--max-steps", "4",
         "--eval-every", "4", "--sample-length", "0", "--quiet"]


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(d.rglob("*"))}


def env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "scratchrnn", *args], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("scratchrnn: error: "), lines
    return lines[0]


@pytest.fixture
def run(small_text, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(out), *TRAIN]) == 0
    return out


# --- train --out ---------------------------------------------------------------------------

def test_user_files_survive_a_refused_train_out(small_text, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "config.json").write_text('{"my": "settings"}')
    (user / "metrics.jsonl").write_text('{"step": 1}\n')
    (user / ".notes.tmp").write_text("a draft")
    (user / ".checkpoint.npz.123.tmp").write_text("named like an old temp file, still mine")
    before = snapshot(user)
    for extra in ([], ["--overwrite"], ["--frobnicate"], ["--hidden", "0"]):
        rc = main(["train", "--text", str(small_text), "--out", str(user), *TRAIN, *extra])
        assert rc != 0
        assert "Traceback" not in one_line(capsys.readouterr().err)
        assert snapshot(user) == before  # nothing written: no marker, no lock, no temp removed


def test_a_new_or_empty_folder_becomes_a_run(small_text, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, tmp_path / "a" / "b"):
        assert main(["train", "--text", str(small_text), "--out", str(out), *TRAIN]) == 0
        assert owner.has_marker(out) and owner.is_run_folder(out)
        assert json.loads((out / owner.MARKER).read_text())["format"] == owner.FORMAT


def test_a_run_that_failed_to_start_can_be_started_again(small_text, tmp_path, capsys):
    out, short = tmp_path / "run", tmp_path / "short.txt"
    short.write_text("too short")
    assert main(["train", "--text", str(short), "--out", str(out), *TRAIN]) == 1
    assert "fewer than --batch" in one_line(capsys.readouterr().err)
    assert not out.exists()  # nothing of a run was written: no trace of it is left
    empty = tmp_path / "empty" / "deeper"
    empty.parent.mkdir()
    for argv in (["--text", str(short), "--out", str(empty)],
                 ["--text", str(small_text), "--encoding", "punycode", "--out", str(empty)]):
        assert main(["train", *argv, *TRAIN]) == 1
        one_line(capsys.readouterr().err)
        assert os.listdir(empty.parent) == []  # the folder it made goes, not the one it found
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(["train", "--text", str(short), "--out", str(mine), *TRAIN]) == 1
    assert mine.is_dir() and os.listdir(mine) == []
    assert main(["train", "--text", str(small_text), "--out", str(out), *TRAIN]) == 0


def test_overwrite_replaces_only_the_runs_own_files(run, small_text, capsys):
    (run / "notes.txt").write_text("my notes about this run")
    (run / ".notes.tmp").write_text("mine")
    dead = fsutil.temp_path(run / "checkpoint.npz").name.replace(f"-{os.getpid()}-", "-999999-")
    (run / dead).write_text("left by a killed training")  # pid 999999: not running
    old = sr.load_checkpoint(run).model.params
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 1
    assert "already holds a run" in one_line(capsys.readouterr().err)
    assert main(["train", "--text", str(small_text), "--out", str(run), "--seed", "7",
                 "--overwrite", *TRAIN]) == 0
    assert (run / "notes.txt").read_text() == "my notes about this run"
    assert (run / ".notes.tmp").read_text() == "mine"
    assert not (run / dead).exists()
    new = sr.load_checkpoint(run).model.params
    assert any(not np.array_equal(new[k], old[k]) for k in old)


@pytest.mark.parametrize("kept", [("best.npz", "metrics.jsonl", "loss.png"), ("best.npz",),
                                  ("metrics.jsonl",), ("loss.png",)])
def test_any_result_of_a_run_keeps_train_and_import_out(run, small_text, tmp_path, kept, capsys):
    # the latest checkpoint deleted to save space: what is left is still the run's work
    model = tmp_path / "model.safetensors"
    assert main(["export", str(run), "--format", "torch", "--out", str(model)]) == 0
    for name in owner.RESULTS:
        if name not in kept:
            (run / name).unlink()
    before = snapshot(run)
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 1
    line = one_line(capsys.readouterr().err)
    assert "already holds the results of a run" in line and all(k in line for k in kept)
    assert ("--resume" in line) == ("best.npz" in kept)
    assert main(["import", str(model), "--out", str(run)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "already holds a run" in line and "--overwrite" not in line
    assert snapshot(run) == before
    assert main(["train", "--text", str(small_text), "--out", str(run), "--overwrite",
                 *TRAIN]) == 0


def test_a_run_that_kept_only_its_export_is_taken(run, small_text, capsys):
    assert main(["export", str(run), "--format", "torch"]) == 0
    assert main(["visualize", str(run), "--chars", "20"]) == 0
    for name in owner.RESULTS:
        (run / name).unlink()
    before = snapshot(run)
    capsys.readouterr()
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 1
    line = one_line(capsys.readouterr().err)
    assert "(inside.html, model.safetensors)" in line and "--resume" not in line
    assert snapshot(run) == before
    assert main(["train", "--text", str(small_text), "--out", str(run), "--overwrite",
                 *TRAIN]) == 0
    assert (run / "model.safetensors").is_file()  # the user's to drop: --overwrite keeps it


def test_a_run_from_before_markers_with_only_its_best_is_ours(run, small_text, capsys):
    for name in (owner.MARKER, owner.LOCK, "checkpoint.npz"):
        (run / name).unlink()
    assert owner.is_run_folder(run)  # best.npz beside config.json
    before = snapshot(run)
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 1
    assert f"--resume {run / 'best.npz'}" in one_line(capsys.readouterr().err)
    assert snapshot(run) == before


def test_a_run_from_before_markers_is_ours(run, small_text, capsys):
    (run / owner.MARKER).unlink()
    (run / owner.LOCK).unlink()
    (run / ".best.npz.4242.tmp").write_bytes(b"half a checkpoint of an old version")
    assert owner.is_run_folder(run)  # checkpoint.npz beside config.json
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet"]) == 0
    assert owner.has_marker(run) and not (run / ".best.npz.4242.tmp").exists()


def test_stale_temp_cleanup_takes_only_our_pattern(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    ours_dead = fsutil.temp_path(d / "x.npz").name.replace(f"-{os.getpid()}-", "-999999-")
    ours_live = fsutil.temp_path(d / "y.npz").name.replace(f"-{os.getpid()}-",
                                                           f"-{os.getppid()}-")
    users = [".x.npz.tmp", ".notes.tmp", "x.scratchrnn-1-abcdef12.tmp",
             ".x.scratchrnn-1-ABCDEF12.tmp", ".x.scratchrnn-abc-abcdef12.tmp",
             ".checkpoint.npz.12.tmp"]
    for name in [ours_dead, ours_live, *users]:
        (d / name).write_text("x")
    assert fsutil.clean_stale_temps(d) == 1
    assert sorted(os.listdir(d)) == sorted([ours_live, *users])  # the live writer's stays


def test_temp_names_fit_and_long_names_still_write(tmp_path):
    tmp_path = tmp_path / "names"
    tmp_path.mkdir()
    for name in ["a.npz", "x" * 255, "é" * 127, "長" * 85]:
        tmp = fsutil.temp_path(tmp_path / name)
        assert len(tmp.name.encode()) <= 255 and fsutil.is_temp_name(tmp.name)
        fsutil.atomic_write_bytes(tmp_path / name, b"data")
        assert (tmp_path / name).read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == sorted(["a.npz", "x" * 255, "é" * 127, "長" * 85])


# --- the lock ------------------------------------------------------------------------------

def test_the_lock_keeps_a_second_training_out_in_process(run):
    with owner.RunFolder(run, resume_from=run):
        with pytest.raises(sr.ScratchRNNError, match="another scratchrnn training is using"):
            sr.train(resume=run, max_steps=8, progress=False)
    assert sr.train(resume=run, max_steps=8, progress=False).step == 8  # released


def test_two_trainings_on_one_folder_real_processes(small_text, tmp_path, capsys):
    out = tmp_path / "run"
    first = cli("train", "--text", str(small_text), "--out", str(out), "--hidden", "16",
                "--batch", "2", "--seq-len", "8", "--eval-every", "2", "--sample-length", "0",
                "--epochs", "1000", "--time-budget", "12s", "--quiet")
    t0 = time.time()
    while not (out / "checkpoint.npz").exists():
        assert first.poll() is None, first.communicate()
        assert time.time() - t0 < 60
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--resume", str(out)],
                            env=env(), capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    line = one_line(second.stderr)
    assert "another scratchrnn training is using" in line and str(out) in line
    assert first.poll() is None, "the first training must still be running"
    # a fresh run with --overwrite, from this process (no start-up time): refused as well
    before = (out / "config.json").read_bytes()
    assert main(["train", "--text", str(small_text), "--out", str(out), "--overwrite",
                 *TRAIN]) == 1
    assert "another scratchrnn training is using" in one_line(capsys.readouterr().err)
    assert first.poll() is None and (out / "config.json").read_bytes() == before
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert "time_budget" in stdout
    assert sr.load_checkpoint(out).meta["step"] > 2


# --- --resume A --out B ----------------------------------------------------------------------

def test_resume_into_a_new_folder_copies_on_and_leaves_a_alone(run, tmp_path):
    before = snapshot(run)
    b = tmp_path / "b"
    assert main(["train", "--resume", str(run), "--out", str(b), "--max-steps", "8",
                 "--quiet"]) == 0
    assert sr.load_checkpoint(b).meta["step"] == 8 and owner.has_marker(b)
    assert snapshot(run) == before
    assert main(["train", "--resume", str(run), "--out", str(run), "--max-steps", "6",
                 "--quiet"]) == 0  # --out naming the run itself continues it
    assert sr.load_checkpoint(run).meta["step"] == 6
    before_b = snapshot(b)
    assert main(["train", "--resume", str(run), "--out", str(b), "--max-steps", "9",
                 "--quiet"]) == 1
    assert snapshot(b) == before_b


# --- read-only commands --------------------------------------------------------------------

def test_eval_of_a_copied_checkpoint_writes_nothing_beside_it(run, tmp_path, monkeypatch,
                                                              capsys):
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)  # the corpus counts as large
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(run / "checkpoint.npz", folder / "checkpoint.npz")
    (folder / "corpus.json").write_text('{"my": "corpus notes"}')
    (folder / "corpus.u8").write_bytes(b"my own bytes")
    (folder / "notes.txt").write_text("mine")
    before = snapshot(folder)
    for argv in (["eval", str(folder / "checkpoint.npz")], ["eval", str(folder)],
                 ["eval", str(folder), "--split", "test", "--json"],
                 ["sample", str(folder), "--length", "20"]):
        assert main(argv) == 0, capsys.readouterr().err
    assert snapshot(folder) == before
    cached = list((Path(os.environ["SCRATCHRNN_HOME"]) / "prepared").rglob("corpus.u8"))
    assert len(cached) == 1  # one cache entry for the one source, reused


def test_eval_reuses_the_corpus_training_prepared_in_its_run(small_text, tmp_path, monkeypatch):
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)
    out = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(out), *TRAIN]) == 0
    assert (out / "corpus.u8").is_file()
    before = snapshot(out)
    assert main(["eval", str(out)]) == 0
    assert snapshot(out) == before
    assert not (Path(os.environ["SCRATCHRNN_HOME"]) / "prepared").exists()


def stamps(d: Path) -> dict:
    """Every name under `d` with its content and mtime, and `d`'s own mtime (a file made and
    removed again shows there). As root, chmod stops no write: this is the check that counts."""
    return {str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                    if p.is_file() else "dir", p.stat().st_mtime_ns)
            for p in [d, *sorted(d.rglob("*"))]}


@pytest.mark.parametrize("spoil", ["intact", "corpus.u8 deleted", "source touched",
                                   "index garbled"])
def test_read_only_commands_write_nothing_in_a_read_only_run(small_text, tmp_path, monkeypatch,
                                                            capsys, spoil):
    from scratchrnn.serve import server as serve

    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)  # prepared in the run
    out = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(out), *TRAIN]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    if spoil == "corpus.u8 deleted":
        (out / "corpus.u8").unlink()
    elif spoil == "source touched":  # same content, a newer mtime: the index no longer vouches
        os.utime(small_text, ns=(time.time_ns(), time.time_ns() + 10**9))
    elif spoil == "index garbled":
        (out / "corpus.json").write_text("[1, 2")
    before = stamps(out)
    subprocess.run(["chmod", "-R", "a-w", str(out)], check=True)
    try:
        for argv in (["eval", str(out), "--json"], ["eval", str(out / "best.npz")],
                     ["eval", str(out), "--split", "test"],
                     ["sample", str(out), "--length", "20"],
                     ["visualize", str(out), "--chars", "50", "--out", str(tmp_path / "p.html")],
                     ["plot", str(out), "--out", str(tmp_path / "p.png")]):
            assert main(argv) == 0, capsys.readouterr().err
            if argv[-1] == "--json":
                assert json.loads(capsys.readouterr().out) == expected
        serve.make_server(out, port=0).server_close()
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(out)], check=True)
    assert stamps(out) == before
    cache = Path(os.environ["SCRATCHRNN_HOME"]) / "prepared"
    assert cache.exists() == (spoil != "intact")  # a spoilt one is prepared in the cache


def test_plot_out_writes_new_paths_and_its_own_plot_only(run, tmp_path, capsys):
    new = tmp_path / "new.png"
    assert main(["plot", str(run), "--out", str(new)]) == 0 and new.is_file()
    assert main(["plot", str(run), "--out", str(new)]) == 1  # now a file it does not own
    assert "not written by scratchrnn" in one_line(capsys.readouterr().err)
    stamp = (run / "loss.png").stat().st_mtime_ns
    assert main(["plot", str(run), "--out", str(run / "loss.png")]) == 0
    assert main(["plot", str(run)]) == 0
    assert (run / "loss.png").stat().st_mtime_ns != stamp


def test_check_output_api(run, tmp_path):
    user = tmp_path / "user.html"
    user.write_text("<p>mine</p>")
    assert owner.check_output(tmp_path / "fresh.html", "page") == tmp_path / "fresh.html"
    with pytest.raises(sr.ScratchRNNError, match="not written by scratchrnn"):
        owner.check_output(user, "page")
    with pytest.raises(sr.ScratchRNNError, match="is a folder"):
        owner.check_output(tmp_path, "page")
    (run / "notes.html").write_text("mine, in a run folder")
    with pytest.raises(sr.ScratchRNNError, match="not written by scratchrnn"):
        owner.check_output(run / "notes.html", "page", names=("loss.png",))
    (run / "model.onnx").write_bytes(b"x")
    assert owner.check_output(run / "model.onnx", "export", names=("model.onnx",))
    assert owner.check_output(user, "page", ours=lambda p: b"mine" in p.read_bytes())
    with pytest.raises(sr.ScratchRNNError):
        owner.check_output(tmp_path / ("x" * 300), "page")


# --- resume knows its data -----------------------------------------------------------------

def test_checkpoint_records_its_corpus(run, small_text):
    meta = sr.load_checkpoint(run).meta["corpus"]
    corpus = sr.load_corpus(small_text)
    ids = np.concatenate([corpus.train, corpus.val, corpus.test])
    assert meta == {"chars": len(ids), "sha256": hashlib.sha256(ids.tobytes()).hexdigest(),
                    "path": os.path.abspath(small_text)}
    assert json.loads((run / "config.json").read_text())["text"] == str(small_text)


def test_hash_streams_over_a_mapped_corpus(small_text, tmp_path, monkeypatch):
    from scratchrnn.store import resume

    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)
    monkeypatch.setattr(resume, "HASH_CHUNK", 7)  # many chunks, cut across the splits
    mapped = sr.load_corpus(small_text, cache=tmp_path / "c")
    assert isinstance(mapped.train, np.memmap)
    assert resume.corpus_identity(mapped, small_text) == resume.corpus_identity(
        sr.load_corpus(small_text), small_text)


def test_resume_from_another_working_folder_with_a_relative_text(small_text, tmp_path,
                                                                 monkeypatch):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    shutil.copy(small_text, start / "book.txt")
    monkeypatch.chdir(start)
    assert main(["train", "--text", "book.txt", "--out", "run", *TRAIN]) == 0
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(start / "run"), "--max-steps", "6", "--quiet"]) == 0
    assert sr.load_checkpoint(start / "run").meta["step"] == 6
    monkeypatch.chdir(start)  # giving the same relative path again is no change
    assert main(["train", "--resume", "run", "--text", "book.txt", "--max-steps", "8",
                 "--quiet"]) == 0


def test_resume_with_the_same_text_under_another_path(run, small_text, tmp_path, capsys):
    moved = tmp_path / "moved" / "renamed.txt"
    moved.parent.mkdir()
    shutil.move(small_text, moved)
    assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet"]) == 1
    assert "not there any more" in one_line(capsys.readouterr().err)
    assert main(["train", "--resume", str(run), "--text", str(moved), "--max-steps", "6",
                 "--quiet"]) == 0
    ckpt = sr.load_checkpoint(run)
    assert ckpt.meta["step"] == 6 and ckpt.meta["corpus"]["path"] == str(moved)
    # the new path is remembered: the next resume needs no --text
    assert main(["train", "--resume", str(run), "--max-steps", "8", "--quiet"]) == 0


def test_allow_new_text_continues_over_a_changed_or_shrunk_text(run, small_text, capsys):
    old = sr.load_checkpoint(run).meta["corpus"]
    small_text.write_text(small_text.read_text()[:60])  # shrank: the old window is past it
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet"]) == 1
    assert "changed since the run started" in one_line(capsys.readouterr().err)
    assert snapshot(run) == before
    assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet",
                 "--allow-new-text"]) == 0
    ckpt = sr.load_checkpoint(run)
    assert ckpt.meta["step"] == 6 and ckpt.meta["corpus"]["chars"] < old["chars"]
    assert main(["train", "--resume", str(run), "--max-steps", "8", "--quiet"]) == 0


def test_a_run_saved_without_corpus_meta_still_resumes(run, capsys):
    ckpt = sr.load_checkpoint(run)
    meta = {k: v for k, v in ckpt.meta.items() if k != "corpus"}
    sr.save_checkpoint(run / "checkpoint.npz", ckpt.trained, ckpt.vocab, ckpt.config, meta,
                       ckpt.opt_state, ckpt.state)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "6", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("scratchrnn: warning:") == 1 and "recorded its text" in err
    assert "corpus" in sr.load_checkpoint(run).meta  # recorded from now on
