"""The README's two commands run in order in one folder: the first leaves runs/pg98 behind, the
second runs this suite there. The suite must neither depend on nor change what it finds."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scratchrnn.cli.commands import main

TESTS = Path(__file__).resolve().parent
# The tests that run the command line or the training API with default paths.
ENTRY_POINTS = ["test_download.py", "test_train.py::test_cli_end_to_end",
                "test_train.py::test_seed_preset", "test_train.py::test_run_folder_contents"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


def test_suite_leaves_a_users_runs_alone(small_text, tmp_path):
    user = tmp_path / "user"
    run = user / "runs" / "pg98"
    assert main(["train", "--text", str(small_text), "--out", str(run), "--hidden", "8",
                 "--batch", "2", "--seq-len", "8", "--max-steps", "2", "--eval-every", "2",
                 "--sample-length", "0", "--quiet"]) == 0
    shutil.copytree(run, user / "runs" / "tinyshakespeare")
    before = snapshot(user)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *[str(TESTS / t) for t in ENTRY_POINTS]],
                          cwd=user, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    assert snapshot(user) == before
