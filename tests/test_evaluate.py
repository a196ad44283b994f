"""evaluate(): parallel streams give the loss of reading the text once, in order."""

import numpy as np
import pytest

import scratchrnn as sr

V = 20
DATA = np.random.default_rng(0).integers(0, V, 600)


def _model(cell):
    m = sr.CharRNN(V, 16, cell, 2, dtype="float64", seed=1)
    for p in m.params.values():
        p *= 3.0  # a state that matters: the zero start state then costs something to forget
    return m


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_streams_with_a_whole_burn_in_are_the_text_read_in_order(cell):
    # stream 1 reads all of stream 0 first, so it starts from the state the text has there, and
    # its first character, which no window of its own predicts, is scored from that state too
    m = _model(cell)
    whole = sr.evaluate(m, DATA, 7, batch=1)
    L = len(DATA) // 2
    assert sr.evaluate(m, DATA, 7, batch=2, burn_in=L) == pytest.approx(whole, rel=1e-12)
    assert sr.evaluate(m, DATA, 7, batch=2, burn_in=10 * L) == pytest.approx(whole, rel=1e-12)
    assert abs(sr.evaluate(m, DATA, 7, batch=2, burn_in=0) - whole) > 1e-4  # the old way


@pytest.mark.parametrize("batch", [3, 5, 8])
def test_the_default_burn_in_recovers_the_loss_of_the_whole_text(batch):
    m = _model("gru")
    data = DATA[:batch * (len(DATA) // batch)]  # the streams use B * L characters
    whole = sr.evaluate(m, data, 7, batch=1)
    assert sr.evaluate(m, data, 7, batch=batch) == pytest.approx(whole, rel=1e-9)
    assert abs(sr.evaluate(m, data, 7, batch=batch, burn_in=0) - whole) > 1e-4
    assert abs(sr.evaluate(m, data, 7, batch=batch, burn_in=2) - whole) > 1e-6


def test_the_burn_in_asks_whether_to_stop():
    asked = []
    model = _model("gru")
    stop_at = lambda n: lambda: asked.append(1) or len(asked) >= n  # noqa: E731
    assert sr.evaluate(model, DATA, 7, batch=4, should_stop=stop_at(1)) is None
    assert len(asked) == 1  # before the first burn-in window, not after the burn-in
    asked.clear()
    assert sr.evaluate(model, DATA, 7, batch=4, should_stop=stop_at(10**9)) is not None
    # streams of L = 150: the burn-in (all of the previous stream) reads its first 149
    # characters in windows of 7, unscored, then its last in a window of its own, scored
    # (it predicts the stream's first character), and each stream its own 149 inputs
    windows = -(-(len(DATA) // 4 - 1) // 7)
    assert len(asked) == windows + 1 + windows
