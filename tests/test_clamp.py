"""Clamping a unit while sampling (sample.stepper/generate `clamp=(layer, unit, value)`)."""

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.nn import cells
from scratchrnn.nn.layers import softmax
from scratchrnn.nn.model import _layer, init_state
from scratchrnn.sampling.sampler import check_clamp, stepper


def _reference_logits(model, ids, clamp):
    """One step at a time through the training cells (cells.FORWARD), holding the clamped unit
    of h both in what the layer above reads and in the state the next step starts from."""
    cfg, P = model.config, model.params
    state = init_state(cfg, 1)
    out = []
    for i in ids:
        x = None
        for k in range(cfg.num_layers):
            p = _layer(P, k)
            xproj = (p["W_x"][[[i]]] + p["b"]) if k == 0 else x @ p["W_x"] + p["b"]  # (1,1,GH)
            x, st, _ = cells.FORWARD[cfg.cell](xproj, _layer(state, k), p)  # (1, 1, H)
            x = x.copy()
            st = {s: v.copy() for s, v in st.items()}
            if clamp and k == clamp[0]:
                x[..., clamp[1]] = clamp[2]
                st["h"][..., clamp[1]] = clamp[2]
            state.update({f"l{k}.{s}": v for s, v in st.items()})
        out.append(x[0, 0] @ P["W_y"] + P["b_y"])
    return np.stack(out)  # (T, V)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("clamp", [None, (0, 3, 0.9), (1, 0, -1.0), (2, 15, 2.5)])
def test_clamped_stepper_matches_the_training_cells(cell, clamp, rng):
    model = sr.CharRNN(20, 16, cell, num_layers=3, seed=1, dtype="float64")
    ids = rng.integers(0, 20, 12)
    step = stepper(model, clamp)
    got = np.stack([step(int(i)) for i in ids])  # (T, V)
    want = _reference_logits(model, ids, clamp)
    np.testing.assert_allclose(softmax(got), softmax(want), rtol=1e-10, atol=1e-12)
    if clamp is not None:  # and the clamp did something
        free = np.stack([s for s in map(stepper(model), map(int, ids))])
        assert not np.allclose(free, got)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_clamp_is_exactly_the_unclamped_path(cell):
    model = sr.CharRNN(96, 32, cell, num_layers=2, seed=3)
    vocab = sr.Vocab.ascii()
    for kw in (dict(temperature=0.8, seed=1), dict(argmax=True), dict(top_k=5, top_p=0.9)):
        assert sr.sample(model, vocab, "It was", 200, clamp=None, **kw) == \
            sr.sample(model, vocab, "It was", 200, **kw)
    a, b = stepper(model), stepper(model, None)
    for i in (5, 9, 40, 1):
        assert np.array_equal(a(i), b(i))


def test_clamping_a_unit_steers_a_trained_model(small_text):
    result = sr.train(sr.TrainConfig(text=str(small_text), cell="lstm", hidden=16, batch=4,
                                     seq_len=16, max_steps=60, eval_every=60, sample_length=0,
                                     val_chars=200),
                      progress=False, log=lambda *a: None)
    def text(clamp):
        return sr.sample(result.model, result.vocab, "It was", 120, temperature=0.5, seed=4,
                         clamp=clamp)

    base = text(None)
    assert text(None) == base  # a seed fixes the text, so a difference is the clamp's doing
    changed = [text((0, u, v)) != base for u in range(16) for v in (-1.0, 1.0)]
    assert sum(changed) >= 24, changed  # nearly every single-unit clamp changes the text


@pytest.mark.parametrize("clamp, msg", [
    ((1, 0, 0.5), "layer must be an integer in [0, 0]"),
    ((-1, 0, 0.5), "layer"),
    ((0, 16, 0.5), "unit must be an integer in [0, 15]"),
    ((0, 1.5, 0.5), "unit"),
    ((0, True, 0.5), "unit"),
    ((0, 1, float("nan")), "value must be a number"),
    ((0, 1, 11.0), "value must be a number"),
    ((0, 1, "1"), "value must be a number"),
    ((0, 1), "LAYER:UNIT:VALUE"),
    ("0:1:2", "LAYER:UNIT:VALUE"),
])
def test_bad_clamps_are_refused(clamp, msg):
    model = sr.CharRNN(10, 16, "gru", seed=0)
    with pytest.raises(sr.ScratchRNNError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        check_clamp(clamp, model)
    with pytest.raises(sr.ScratchRNNError):
        next(sr.generate(model, sr.Vocab("abcdefghij"), "ab", 5, clamp=clamp))
