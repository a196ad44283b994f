"""Data-parallel training over MPI: real `mpiexec -n 2` runs against the one-process run (the
same parameters to round-off in float64, dropout included), checkpoints that resume at another
number of ranks, a failing or hanging rank taking the job down, SIGTERM saving, and the one-line
refusals. The MPI tests skip where mpiexec or mpi4py is missing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scratchrnn.cli.commands import main
from scratchrnn.training.distributed import LAUNCHER_VARS

SRC = Path(__file__).resolve().parents[1] / "src"
MPIEXEC = shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401

    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi = pytest.mark.skipif(not (MPIEXEC and HAVE_MPI4PY),
                               reason="needs mpiexec and mpi4py (pip install 'scratchrnn[mpi]')")

# lstm: two state arrays per layer to gather; dropout: masks that must not depend on the split
MODEL = ["--cell", "lstm", "--hidden", "16", "--layers", "2", "--dropout", "0.3", "--batch", "4",
         "--seq-len", "8", "--dtype", "float64", "--sample-length", "0", "--quiet"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    from conftest import SMALL_TEXT

    path = tmp_path_factory.mktemp("mpi") / "text.txt"
    path.write_text(SMALL_TEXT * 3)
    return path


def mpirun(n, argv, *, env=None, timeout=120, popen=False, each=None, cwd=None):
    """`mpiexec -n N python -m scratchrnn train --distributed mpi ARGV` from the worktree's
    source; Open MPI is told that root and more ranks than cores are fine (MPICH ignores it).
    `each` (N lists) adds its own flags to each rank's command line: `mpiexec -n 1 ... : -n 1
    ...`, one rank per command."""
    full_env = dict(os.environ, PYTHONPATH=str(SRC), OMPI_ALLOW_RUN_AS_ROOT="1",
                    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
                    **(env or {}))
    train = [sys.executable, "-m", "scratchrnn", "train", "--distributed", "mpi",
             *map(str, argv)]
    cmd = [MPIEXEC, "-n", str(n), *train]
    if each is not None:
        assert len(each) == n
        cmd = [MPIEXEC]
        for extra in each:
            cmd += [*(cmd[1:] and [":"]), "-n", "1", *train, *map(str, extra)]
    if popen:
        return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def arrays(run: Path) -> dict:
    with np.load(run / "checkpoint.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def meta(run: Path) -> dict:
    return json.loads(str(arrays(run)["meta"]))


def assert_same_run(a: Path, b: Path):
    """Parameters, optimizer state, every stream's hidden state, step and RNG state."""
    x, y = arrays(a), arrays(b)
    assert sorted(x) == sorted(y)
    for k in x:
        if k != "meta":
            np.testing.assert_allclose(y[k], x[k], rtol=1e-10, atol=1e-13, err_msg=k)
    mx, my = json.loads(str(x["meta"])), json.loads(str(y["meta"]))
    for key in ("step", "epoch", "window", "rng"):
        assert mx[key] == my[key], key


def one_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("scratchrnn:")]


@pytest.fixture(scope="module")
def reference(text, tmp_path_factory):
    """The one-process run, 24 steps."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", "--text", str(text), "--out", str(out), *MODEL, "--max-steps", "24",
                 "--eval-every", "12"]) == 0
    return out


@pytest.fixture(scope="module")
def saved_at_2(text, tmp_path_factory):
    """The same run stopped after 12 steps at 2 ranks."""
    out = tmp_path_factory.mktemp("half2") / "run"
    r = mpirun(2, ["--text", text, "--out", out, *MODEL, "--max-steps", "12",
                   "--eval-every", "12"])
    assert r.returncode == 0, r.stderr
    return out


@needs_mpi
def test_two_ranks_train_the_one_process_run(text, reference, tmp_path):
    out = tmp_path / "run"
    r = mpirun(2, ["--text", text, "--out", out, *MODEL, "--max-steps", "24",
                   "--eval-every", "12"])
    assert r.returncode == 0, r.stderr
    assert_same_run(reference, out)
    assert r.stdout.count("training CharRNN") == 1  # rank 1 is quiet
    # rank 0 wrote the run folder's one metrics file, with the global batch's throughput
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [10, 12, 20, 24]


@needs_mpi
@pytest.mark.parametrize("resume_at", [1, 2])
def test_a_run_saved_at_2_ranks_resumes_at_any_n(resume_at, saved_at_2, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(saved_at_2, out)
    assert meta(out)["step"] == 12
    args = ["--resume", out, "--max-steps", "24", "--quiet"]
    if resume_at == 1:
        assert main(["train", *map(str, args)]) == 0
    else:
        r = mpirun(2, args)
        assert r.returncode == 0, r.stderr
    assert_same_run(reference, out)


@needs_mpi
def test_a_one_process_run_resumes_at_2_ranks(text, reference, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--text", str(text), "--out", str(out), *MODEL, "--max-steps", "12",
                 "--eval-every", "12"]) == 0
    r = mpirun(2, ["--resume", out, "--max-steps", "24", "--quiet"])
    assert r.returncode == 0, r.stderr
    assert_same_run(reference, out)


@needs_mpi
def test_a_batch_that_does_not_split_is_one_line(text, tmp_path):
    out = tmp_path / "run"
    r = mpirun(2, ["--text", text, "--out", out, *MODEL, "--batch", "3", "--max-steps", "2"])
    assert r.returncode != 0
    lines = one_lines(r.stderr)
    assert len(lines) == 1 and "--batch 3 does not split evenly over 2 MPI ranks" in lines[0]
    assert not out.exists()


FAULT = ["--cell", "gru", "--hidden", "16", "--batch", "4", "--seq-len", "8", "--max-steps",
         "100000", "--eval-every", "5", "--sample-length", "0", "--quiet"]


@needs_mpi
@pytest.mark.parametrize("fault, says", [
    ("raise:1:7", "MPI rank 1 of 2 failed: RuntimeError: test fault at step 7; the job is "
                  "stopped, its last checkpoint is"),
    ("raise:0:7", "RuntimeError: test fault at step 7"),
    ("hang:1:7", "an MPI rank sent no gradients for 2 s"),
    ("exit:1:7", None),  # a crash: mpiexec itself ends the job and says so
])
def test_a_failing_rank_takes_the_job_down(fault, says, text, tmp_path):
    out = tmp_path / "run"
    t0 = time.monotonic()
    r = mpirun(2, ["--text", text, "--out", out, *FAULT], timeout=60,
               env={"SCRATCHRNN_MPI_TEST_FAULT": fault, "SCRATCHRNN_MPI_TIMEOUT": "2"})
    assert time.monotonic() - t0 < 40  # no hang
    assert r.returncode != 0
    lines = one_lines(r.stderr)
    if says:
        assert len(lines) == 1 and lines[0].startswith("scratchrnn: error: ") and says in lines[0]
    assert meta(out)["step"] == 5  # the last checkpoint, intact


@needs_mpi
def test_a_bad_flag_under_mpiexec_is_one_line(tmp_path):
    r = mpirun(2, ["--hidden", "many"])
    assert r.returncode != 0
    lines = one_lines(r.stderr)
    assert len(lines) == 1 and "--hidden: invalid int value" in lines[0]


@needs_mpi
def test_a_time_budget_stops_every_rank_at_the_same_step(text, tmp_path):
    """Each rank reads its own clock; the agreed stop flag keeps them in step (a rank that went
    on alone would leave the others waiting, and rank 0 would time out)."""
    out = tmp_path / "run"
    r = mpirun(2, ["--text", text, "--out", out, *FAULT, "--time-budget", "2s"], timeout=60,
               env={"SCRATCHRNN_MPI_TIMEOUT": "10"})
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stdout.splitlines() if line.startswith("stopped at step")]
    assert len(said) == 1 and "(time_budget)" in said[0]
    assert meta(out)["step"] == int(said[0].split()[3])
    # each rank would time its own share of the machine: auto leaves the defaults, and says so
    assert "--auto chooses nothing under mpiexec: give the model options you want" in r.stdout
    assert "auto" not in meta(out) and meta(out)["config"]["layers"] == 2


@needs_mpi
def test_sigterm_to_mpiexec_saves_a_checkpoint(text, tmp_path):
    out = tmp_path / "run"
    proc = mpirun(2, ["--text", text, "--out", out, *FAULT, "--log-every", "1"], popen=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").stat().st_size:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    said = [line for line in stdout.splitlines() if line.startswith("interrupted by SIG")]
    assert len(said) == 1, stdout + stderr
    step = int(said[0].split(" at step ")[1].split(";")[0])
    assert meta(out)["step"] == step > 0
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == step


def test_distributed_needs_mpiexec(text, tmp_path, monkeypatch, capsys):
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    code = main(["train", "--text", str(text), "--out", str(tmp_path / "run"), "--distributed",
                 "mpi", "--max-steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "runs under mpiexec" in err[0]
    assert not (tmp_path / "run").exists()


def test_distributed_without_mpi4py_is_one_line(text, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    code = main(["train", "--text", str(text), "--out", str(tmp_path / "run"), "--distributed",
                 "mpi", "--max-steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "needs mpi4py" in err[0] and "[mpi]" in err[0]
    assert not (tmp_path / "run").exists()


def test_dropout_masks_do_not_depend_on_the_split():
    from scratchrnn.training.distributed import _StreamRows

    whole = np.random.default_rng(5).random((7, 6, 3), dtype=np.float32)  # (T, B, H)
    for rows in (slice(0, 3), slice(3, 6), slice(2, 4)):
        part = _StreamRows(np.random.default_rng(5), 6, rows).random((7, 99, 3), np.float32)
        np.testing.assert_array_equal(part, whole[:, rows])


def test_weight_drop_masks_are_the_same_on_every_rank():
    """A W_h mask belongs to no stream: each rank draws the whole of it, as one process does,
    and its generator moves on exactly as the one process's."""
    from scratchrnn.training.distributed import _StreamRows

    one = np.random.default_rng(5)
    whole = one.random((4, 12), dtype=np.float32)  # (H, G*H)
    for rows in (slice(0, 3), slice(3, 6)):
        rank = _StreamRows(np.random.default_rng(5), 6, rows)
        np.testing.assert_array_equal(rank.random((4, 12), np.float32), whole)
        assert rank.rng.bit_generator.state == one.bit_generator.state


def test_locked_dropout_masks_do_not_depend_on_the_split():
    """A locked (1, B, H) mask: each rank gets its streams' rows of the one the single
    process draws, and the generator moves on as the single process's does."""
    from scratchrnn.training.distributed import _StreamRows

    one = np.random.default_rng(5)
    whole = one.random((1, 6, 3), dtype=np.float32)  # (1, B, H)
    for rows in (slice(0, 3), slice(3, 6), slice(2, 4)):
        rank = _StreamRows(np.random.default_rng(5), 6, rows)
        part = rank.random((1, rows.stop - rows.start, 3), np.float32)  # (1, B/N, H)
        np.testing.assert_array_equal(part, whole[:, rows])
        assert rank.rng.bit_generator.state == one.bit_generator.state


@needs_mpi
def test_two_ranks_train_the_one_process_run_with_locked_dropout(text, tmp_path):
    args = ["--text", text, *MODEL, "--locked-dropout", "--max-steps", "8", "--eval-every", "8"]
    assert main(["train", *map(str, args), "--out", str(tmp_path / "one")]) == 0
    r = mpirun(2, [*args, "--out", tmp_path / "two"])
    assert r.returncode == 0, r.stderr
    assert meta(tmp_path / "two")["model"]["locked_dropout"] is True
    assert_same_run(tmp_path / "one", tmp_path / "two")


@needs_mpi
def test_two_ranks_train_the_one_process_run_with_weight_drop(text, tmp_path):
    args = ["--text", text, *MODEL, "--weight-drop", "0.4", "--max-steps", "8",
            "--eval-every", "8"]
    assert main(["train", *map(str, args), "--out", str(tmp_path / "one")]) == 0
    r = mpirun(2, [*args, "--out", tmp_path / "two"])
    assert r.returncode == 0, r.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.parametrize("argv, local, preset, want", [
    (["train", "--distributed", "mpi"], "2", None, "share"),
    (["train", "--distributed=mpi"], "1", None, "share"),
    (["train", "--distributed", "mpi"], "2", "3", "3"),  # the user's count wins
    (["train"], "2", None, None),  # not a distributed run: left alone
])
def test_blas_threads_per_rank(argv, local, preset, want, monkeypatch):
    from scratchrnn import threads
    from scratchrnn.cli import entry

    monkeypatch.setattr(sys, "argv", ["scratchrnn", *argv])
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", local)
    for var in threads.ENV_VARS:
        monkeypatch.setenv(var, "")  # so that teardown restores what was there before
        monkeypatch.delenv(var)
    if preset:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", preset)
    entry._blas_threads()
    if want == "share":
        cores = os.cpu_count()
        want = str(max(1, min(len(os.sched_getaffinity(0)), cores // int(local))))
    assert os.environ.get("OPENBLAS_NUM_THREADS") == want


def files(folder: Path) -> dict:
    """Every file under `folder` with its bytes and mtime: what a refused run must not touch."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


TINY = ["--cell", "gru", "--hidden", "8", "--batch", "4", "--seq-len", "8", "--sample-length",
        "0", "--quiet", "--max-steps", "4", "--eval-every", "4"]


@needs_mpi
@pytest.mark.parametrize("each, says", [
    # different buffer sizes: Open MPI crashed (exit 134, a C backtrace)
    ([["--hidden", "8"], ["--hidden", "12"]], ["--hidden (rank 0: 8, rank 1: 12)"]),
    # different step counts and eval cadences: a SIGSEGV at the first unmatched collective
    ([["--max-steps", "4", "--eval-every", "2"], ["--max-steps", "6", "--eval-every", "3"]],
     ["--max-steps (rank 0: 4, rank 1: 6)", "--eval-every (rank 0: 2, rank 1: 3)"]),
    # runs that went to the end on ranks that no longer matched
    ([["--seed", "0", "--lr", "0.003"], ["--seed", "1", "--lr", "0.01", "--text", "OTHER"]],
     ["--seed (rank 0: 0, rank 1: 1)", "--lr (rank 0: 0.003, rank 1: 0.01)", "--text (rank 0: ",
      "the text's content (rank 0: "]),
], ids=["hidden", "max-steps+eval-every", "seed+lr+text"])
def test_ranks_started_with_other_flags_stop_together(each, says, text, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(text.read_text()[::-1])
    out = tmp_path / "run"
    each = [[other if a == "OTHER" else a for a in extra] for extra in each]
    r = mpirun(2, ["--text", text, "--out", out, *TINY], each=each, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "Process received signal" not in r.stderr  # no C backtrace
    lines = one_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("scratchrnn: error: the MPI ranks disagree on")
    assert lines[0].endswith("start every rank with the same flags and the same files")
    for said in says:
        assert said in lines[0]
    assert lines[0].count(" (rank 0: ") == len(says)  # nothing named that agrees
    assert not out.exists()


@needs_mpi
def test_a_bad_flag_on_one_rank_only_is_named_by_rank_0(text, tmp_path):
    """That rank fails before MPI starts, where rank 0 cannot see it fail: it tells rank 0."""
    out = tmp_path / "run"
    r = mpirun(2, ["--text", text, "--out", out, *TINY], each=[[], ["--hidden", "many"]],
               timeout=60)
    assert r.returncode == 1, r.stderr
    lines = one_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("scratchrnn: error: MPI rank 1 of 2 failed: "
                                                   "argument --hidden: invalid int value")
    assert not out.exists()


@needs_mpi
def test_ranks_resuming_with_other_flags_leave_the_run_as_it_was(text, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--text", str(text), "--out", str(out), *TINY]) == 0
    before = files(out)
    r = mpirun(2, ["--resume", out, "--quiet"], each=[["--max-steps", "6"], ["--max-steps", "8"]],
               timeout=60)
    assert r.returncode == 1, r.stderr
    lines = one_lines(r.stderr)
    assert len(lines) == 1 and "disagree on --max-steps (rank 0: 6, rank 1: 8);" in lines[0]
    assert files(out) == before


@needs_mpi
def test_ranks_that_name_the_same_settings_differently_train(text, tmp_path):
    """The same text by an absolute and a relative path, and --quiet on one rank only (it
    changes nothing but rank 0's output), are the same run."""
    out = tmp_path / "run"
    loud = [a for a in TINY if a != "--quiet"]
    r = mpirun(2, ["--out", out, *loud], each=[["--text", text], ["--text", text.name, "--quiet"]],
               cwd=text.parent, timeout=60)
    assert r.returncode == 0, r.stderr
    assert meta(out)["step"] == 4


def test_every_training_option_is_compared(text, tmp_path):
    """A new TrainConfig field is compared across ranks without being listed anywhere."""
    import dataclasses

    from scratchrnn.store.config import TrainConfig
    from scratchrnn.training.distributed import run_fields

    cfg = TrainConfig(text=str(text), out=str(tmp_path / "run"))
    fields = run_fields(cfg, None, False)
    for f in dataclasses.fields(TrainConfig):
        assert f"`{f.name}`" in fields
    changed = run_fields(cfg.replace(beta2=0.99), None, False)
    assert [k for k in fields if fields[k] != changed[k]] == ["`beta2`"]


def test_a_disagreement_names_the_first_rank_that_differs():
    from scratchrnn.training.distributed import disagreement

    same, seed = ("a", "8"), {"`seed`": ("s0", "0")}
    ranks = [{"`hidden`": same, **seed}, {"`hidden`": same, **seed},
             {"`hidden`": ("b", "12"), **seed}, {"`hidden`": ("c", "14"), "`seed`": ("s1", "1")}]
    assert disagreement(ranks) == (
        "the MPI ranks disagree on `hidden` (rank 0: 8, rank 2: 12) and `seed` (rank 0: 0, "
        "rank 3: 1); start every rank with the same flags and the same files")
    older = [{"`hidden`": same}, {"`hidden`": same, "`ema`": ("e", "0.998")}]
    assert "`ema` (rank 0: missing, rank 1: 0.998)" in disagreement(older)
