import os
import time
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

SMALL_TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom,\n"
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of\n"
    "incredulity, it was the season of Light, it was the season of Darkness.\n"
) * 12


def wait_for(path: Path, proc, timeout=60):
    """Until `path` exists, while the process `proc` that should make it still runs."""
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)


def tiny_run(folder: Path, cell: str, **config) -> Path:
    """A small trained run (2 x 16 units, 40 steps on SMALL_TEXT) in `folder`/run, made with
    its own cache, for module-scoped fixtures that need a real checkpoint."""
    import scratchrnn as sr

    (folder / "small.txt").write_text(SMALL_TEXT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCRATCHRNN_HOME", str(folder / "cache"))
        sr.train(sr.TrainConfig(**{**dict(
            text=str(folder / "small.txt"), out=str(folder / "run"), cell=cell, hidden=16,
            layers=2, batch=4, seq_len=16, max_steps=40, eval_every=20, sample_length=0,
            val_chars=300), **config}), progress=False, log=lambda *a: None)
    return folder / "run"


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture
def book():
    return shared_file("pg98.txt")


@pytest.fixture
def small_text(tmp_path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Never touch the user's folders or the network from tests: each test runs in a working
    folder of its own (so a default --out like runs/pg98 lands there, not where pytest was
    started) with its own cache, and the book's URL is a closed port on 127.0.0.1."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("scratchrnn.data.corpus.BOOK_URLS", ("http://127.0.0.1:9/none",))


from hypothesis import HealthCheck, settings  # noqa: E402

# The autouse fixture above is harmless to reuse across examples; CI machines are noisy.
# SCRATCHRNN_FUZZ=N runs every property test with N examples (scripts/fuzz.py; not in CI).
# database=None: hypothesis would otherwise keep a .hypothesis/ folder in the working folder.
settings.register_profile("ci", suppress_health_check=[HealthCheck.function_scoped_fixture],
                          deadline=None, database=None,
                          max_examples=int(os.environ.get("SCRATCHRNN_FUZZ", 60)))
settings.load_profile("ci")
