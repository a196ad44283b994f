"""BLAS threads that follow the machine's load (threads.py): the choice, the environment that
overrides it, the run's line about it, the change at run time, and numbers it leaves alone."""

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn import threads
from scratchrnn.threads import BlasThreads, choose, describe

CHOICES = [  # cores, cores the other processes use, current count -> threads
    (2, 0.0, None, 2),
    (2, 0.3, None, 2),
    (2, 0.5, None, 1),  # half a core of others already costs more than a thread gains
    (2, 1.0, None, 1),
    (2, 1.9, None, 1),
    (2, 7.0, None, 1),  # never below one
    (1, 0.0, None, 1),
    (0, 0.0, None, 1),
    (8, 0.0, None, 8),
    (8, 2.6, None, 5),
    (8, 2.4, None, 6),
    (2, 0.3, 1, 1),  # back up only once the others have clearly left
    (2, 0.2, 1, 2),
    (2, 0.0, 1, 2),
    (2, 0.6, 2, 1),
    (8, 2.6, 8, 5),
    (8, 2.6, 2, 5),
    (8, 0.1, 5, 8),
]


@pytest.mark.parametrize("cores,others,current,want", CHOICES)
def test_choice(cores, others, current, want):
    assert choose(cores, others, current) == want


@pytest.mark.parametrize("env,want", [  # the user's count wins; set but empty is not a count
    ({"OPENBLAS_NUM_THREADS": "2"}, ("OPENBLAS_NUM_THREADS", "2")),
    ({"OMP_NUM_THREADS": "1"}, ("OMP_NUM_THREADS", "1")),
    ({"MKL_NUM_THREADS": "4"}, ("MKL_NUM_THREADS", "4")),
    ({"GOTO_NUM_THREADS": "2"}, ("GOTO_NUM_THREADS", "2")),
    ({"OPENBLAS_NUM_THREADS": " "}, None),
    ({"SOMETHING_ELSE": "2"}, None),
])
def test_a_thread_count_the_user_set_is_left_alone(env, want, monkeypatch):
    assert threads.user_setting(env) == want
    m = FakeMachine(monkeypatch)
    m.run(1.0, own=1.0, others=1.0)  # busy: a count of our own would be 1
    with BlasThreads(env=env) as blas:
        assert blas.adapt == (want is None)
        assert blas.threads == (2 if want else 1)
    assert m.sets == ([] if want else [1, 2])


@pytest.mark.parametrize("args,want", [
    ((2, 2, 0.0), "BLAS: 2 threads (2 cores idle; checked every 2 s; "
                  "OPENBLAS_NUM_THREADS overrides)"),
    ((1, 2, 1.26), "BLAS: 1 thread (other processes use 1.3 of 2 cores; checked every 2 s; "
                   "OPENBLAS_NUM_THREADS overrides)"),
    ((2, 2, None), "BLAS: 2 threads (2 cores, load not measured yet; checked every 2 s; "
                   "OPENBLAS_NUM_THREADS overrides)"),
    ((1, 2, None, ("OPENBLAS_NUM_THREADS", "1")), "BLAS: 1 thread (OPENBLAS_NUM_THREADS=1 set)"),
    ((1, 2, None, None, 2), "BLAS: 1 thread per rank (2 ranks share the cores)"),
    ((1, 2, None, ("OPENBLAS_NUM_THREADS", "1"), 2),
     "BLAS: 1 thread per rank (2 ranks share the cores; OPENBLAS_NUM_THREADS=1)"),
    ((None, 2, 0.0), "BLAS: as the library chooses (no OpenBLAS loaded to adjust)"),
])
def test_line(args, want):
    assert describe(*args) == want


class FakeMachine:
    """/proc/stat, this process's CPU time and the clock, advanced by hand; the thread counts
    set are recorded instead of reaching OpenBLAS."""

    def __init__(self, monkeypatch, threads_now=2):
        self.wall = self.own = self.busy = 1000.0
        self.threads, self.sets = threads_now, []
        monkeypatch.setattr(threads.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(threads.time, "process_time", lambda: self.own)
        monkeypatch.setattr(threads, "busy_seconds", lambda cpus: self.busy)
        monkeypatch.setattr(threads, "get_threads", lambda: self.threads)
        monkeypatch.setattr(threads, "set_threads", self.set)
        monkeypatch.setattr(threads, "allowed_cpus", lambda: {0, 1})
        monkeypatch.setattr(threads, "_last", threads.Reading({0, 1}))

    def set(self, n):
        self.threads = n
        self.sets.append(n)

    def run(self, seconds, own, others):
        """`seconds` pass; this process uses `own` cores, the others `others`."""
        self.wall += seconds
        self.own += own * seconds
        self.busy += (own + others) * seconds


def test_two_trainings_started_together_give_up_a_thread_each(monkeypatch):
    m = FakeMachine(monkeypatch)
    m.run(1.0, own=1.0, others=0.0)  # start-up: the other training is not there yet
    blas = BlasThreads(env={}).__enter__()
    assert blas.threads == 2 and "2 cores idle" in blas.line
    m.run(1.0, own=1.0, others=1.0)
    assert blas.tick() is None  # not yet time to check
    m.run(1.5, own=1.0, others=1.0)
    assert blas.tick() == ("BLAS: 1 thread (other processes use 1.0 of 2 cores; checked every "
                           "2 s; OPENBLAS_NUM_THREADS overrides)")
    assert m.threads == 1
    m.run(2.0, own=1.0, others=0.9)  # the other one, at one thread too
    assert blas.tick() is None and m.threads == 1
    m.run(2.0, own=1.0, others=0.0)  # it finished
    assert "2 threads" in blas.tick() and m.threads == 2


def test_a_busy_machine_starts_at_one_thread_and_the_count_is_restored(monkeypatch):
    m = FakeMachine(monkeypatch)
    m.run(0.5, own=1.0, others=1.0)
    with BlasThreads(env={}) as blas:
        assert blas.threads == 1 and m.threads == 1
        assert blas.line.startswith("BLAS: 1 thread (other processes use 1.0 of 2 cores")
    assert m.threads == 2


def test_a_stale_or_too_short_reading_decides_nothing(monkeypatch):
    m = FakeMachine(monkeypatch)
    m.run(threads.STALE + 1, own=0.0, others=2.0)
    assert BlasThreads(env={}).threads == 2
    m.run(0.01, own=0.0, others=2.0)
    blas = BlasThreads(env={})
    assert blas.threads == 2 and "load not measured yet" in blas.line


@pytest.mark.parametrize("env,ranks,want", [
    ({"OPENBLAS_NUM_THREADS": "2"}, 1, "BLAS: 2 threads (OPENBLAS_NUM_THREADS=2 set)"),
    ({"OMP_NUM_THREADS": "2"}, 1, "BLAS: 2 threads (OMP_NUM_THREADS=2 set)"),
    ({}, 2, "BLAS: 2 threads per rank (2 ranks share the cores)"),
    ({"OPENBLAS_NUM_THREADS": "2"}, 2,
     "BLAS: 2 threads per rank (2 ranks share the cores; OPENBLAS_NUM_THREADS=2)"),
])
def test_the_environment_and_distributed_runs_keep_their_count(monkeypatch, env, ranks, want):
    m = FakeMachine(monkeypatch)
    m.run(1.0, own=1.0, others=2.0)
    with BlasThreads(ranks, env=env) as blas:
        assert blas.line == want
        m.run(3.0, own=1.0, others=2.0)
        assert blas.tick() is None
    assert m.sets == []


def test_openblas_is_found_and_takes_the_count():
    if threads.get_threads() is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    before = threads.get_threads()
    try:
        threads.set_threads(1)
        assert threads.get_threads() == 1
        threads.set_threads(2)
        assert threads.get_threads() == 2
    finally:
        threads.set_threads(before)


def test_the_machine_load_reads():
    busy = threads.busy_seconds(threads.allowed_cpus())
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert busy > 0
    assert threads.busy_seconds({10 ** 6}) is None  # a CPU this machine lacks: nothing counted


def _train(tmp_path, small_text, name, lines=None, **kw):
    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / name), hidden=32, layers=2,
                         batch=32, seq_len=50, max_steps=6, eval_every=3, sample_length=0,
                         val_chars=300, **kw)
    return sr.train(cfg, progress=False, log=(lines.append if lines is not None
                                               else lambda *a: None))


def test_the_run_says_how_many_threads_it_uses(tmp_path, small_text, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    lines = []
    _train(tmp_path, small_text, "a", lines)
    assert lines[0].startswith("training CharRNN(")
    assert lines[1].startswith("vocabulary ascii: 96 symbols")
    assert lines[2].startswith("BLAS: ")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    lines.clear()
    _train(tmp_path, small_text, "b", lines)
    assert lines[2].startswith("BLAS: ") and lines[2].endswith("(OPENBLAS_NUM_THREADS=2 set)")


def test_one_thread_under_load_trains_the_numbers_of_two_alone(tmp_path, small_text,
                                                                monkeypatch):
    """The default run's products (K = 32 x 50, a multiple of 32) round alike at any thread
    count on this OpenBLAS: the count the load picks leaves its numbers as they were."""
    if threads.get_threads() is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    before = threads.get_threads()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the old code path: two threads, fixed
    threads.set_threads(2)
    try:
        old = _train(tmp_path, small_text, "old")
    finally:
        threads.set_threads(before)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setattr(threads.Reading, "others_since", lambda self, then: 1.0)  # busy
    sets, real = [], threads.set_threads
    monkeypatch.setattr(threads, "set_threads", lambda n: (sets.append(n), real(n)))
    new = _train(tmp_path, small_text, "new")
    assert sets[0] == 1 and threads.get_threads() == before
    for k, v in old.model.params.items():
        np.testing.assert_array_equal(new.model.params[k], v, err_msg=k)
