"""sr.inspect: the signals equal the model's batched forward pass, the surprisal equals
evaluate's loss, the top-k agrees with the full softmax, and the unit finder finds a unit
planted to track a property."""

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn import cells, layers
from scratchrnn.cells import SIGNALS
from scratchrnn.inside import correlations, find_units, properties
from scratchrnn.model import forward

VOCAB = sr.Vocab.ascii()
TEXT = ('He said, "It was (the best) of times."\nShe [did not] agree. "No!" she cried.\n'
        "Yet it was, in a way, the worst of times; and (so [it] went) on.\n") * 3


def model(cell, num_layers, dtype="float64", hidden=12):
    """cell "gru-ln": the layer-normalised GRU (--layer-norm), its gains moved from 1."""
    ln = cell == "gru-ln"
    m = sr.CharRNN(len(VOCAB), hidden, cell.removesuffix("-ln"), num_layers, seed=3, dtype=dtype,
                   layer_norm=ln)
    for k, p in m.params.items():
        if ln and ".ln_" in k:
            p += 0.3 * np.random.default_rng(4).normal(size=p.shape).astype(dtype)
    return m


def reference(m, ids):
    """One batched forward pass over three streams, the text being the middle one."""
    rng = np.random.default_rng(0)
    others = rng.integers(0, len(VOCAB), (2, len(ids)))
    x = np.stack([others[0], ids, others[1]])  # (3, T)
    y = np.roll(x, -1, axis=1)
    _, _, (caches, out_cache, _) = forward(m.params, m.config, x, y, m.init_state(3))
    return caches, out_cache


CELLS = [(c, n) for c in ("rnn", "lstm", "gru") for n in (1, 2)] + [("gru-ln", 2)]


@pytest.mark.parametrize("cell,num_layers", CELLS)
def test_signals_equal_the_batched_forward_pass(cell, num_layers):
    m = model(cell, num_layers)
    insp = sr.inspect(m, VOCAB, TEXT, window=23)  # windows that do not divide T: state carried
    ids = VOCAB.encode(TEXT)
    cell = cell.removesuffix("-ln")  # a layer-normalised GRU shows what a GRU shows
    assert insp.text == TEXT and np.array_equal(insp.ids, ids) and insp.cell == cell
    caches, _ = reference(m, ids)
    H = m.config.hidden_size
    for k in range(num_layers):
        cache = caches[k][1]
        hs = cache[0][1:, 1]  # (T, H) stream 1
        assert set(insp.layers[k]) == set(SIGNALS[cell])
        np.testing.assert_allclose(insp.layers[k]["h"], hs, atol=1e-12)
        if cell == "lstm":
            _, cs, acts, tcs, _ = cache
            np.testing.assert_allclose(insp.layers[k]["c"], cs[1:, 1], atol=1e-12)
            for j, g in enumerate("ifgo"):
                np.testing.assert_allclose(insp.layers[k][g], acts[:, 1, j * H:(j + 1) * H],
                                           atol=1e-12)
            # h = o tanh(c): the signals are the ones the cell used, not a copy
            np.testing.assert_allclose(insp.layers[k]["h"],
                                       insp.layers[k]["o"] * np.tanh(insp.layers[k]["c"]),
                                       atol=1e-12)
        if cell == "gru":
            rzs, ns = cache[1:3]
            np.testing.assert_allclose(insp.layers[k]["r"], rzs[:, 0, 1], atol=1e-12)
            np.testing.assert_allclose(insp.layers[k]["z"], rzs[:, 1, 1], atol=1e-12)
            np.testing.assert_allclose(insp.layers[k]["n"], ns[:, 1], atol=1e-12)
            assert insp.layers[k]["z"].min() >= 0 and insp.layers[k]["z"].max() <= 1


@pytest.mark.parametrize("cell,num_layers", CELLS)
def test_mean_surprisal_equals_evaluate(cell, num_layers):
    m = model(cell, num_layers)
    insp = sr.inspect(m, VOCAB, TEXT, window=64)
    expected = sr.evaluate(m, VOCAB.encode(TEXT), 50, batch=1)
    assert abs(insp.mean_surprisal - expected) < 1e-6
    assert abs(insp.bits_per_char - expected / np.log(2)) < 1e-6
    assert len(insp.surprisal) == len(TEXT) - 1


def test_surprisal_of_a_very_unlikely_character_is_not_capped():
    """float32: exp of a shifted logit under -87 underflows; the surprisal must still be the
    loss's own float64 arithmetic (evaluate's number), not a capped log."""
    m = model("gru", 1, dtype="float32")
    m.params["b_y"][VOCAB.chars.index("e")] += 120.0  # every other character becomes absurd
    insp = sr.inspect(m, VOCAB, TEXT)
    expected = sr.evaluate(m, VOCAB.encode(TEXT), 50, batch=1)
    assert insp.surprisal.max() > 100
    assert abs(insp.mean_surprisal - expected) < 1e-3 * expected


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_topk_and_ranks_agree_with_the_full_softmax(cell):
    m = model(cell, 2)
    insp = sr.inspect(m, VOCAB, TEXT, top_k=7, window=50)
    logits = insp.layers[-1]["h"] @ m.params["W_y"] + m.params["b_y"]  # (T, V)
    probs = layers.softmax(logits)
    order = np.argsort(-probs, axis=1, kind="stable")
    np.testing.assert_array_equal(insp.topk_ids, order[:, :7])
    np.testing.assert_allclose(insp.topk_probs, np.take_along_axis(probs, order[:, :7], 1),
                               atol=1e-12)
    assert np.all(np.diff(insp.topk_probs, axis=1) <= 0)
    nxt = insp.ids[1:]
    p = probs[np.arange(len(nxt)), nxt]
    np.testing.assert_allclose(insp.next_prob, p, atol=1e-12)
    np.testing.assert_allclose(insp.surprisal, -np.log(p), atol=1e-9)
    ranks = np.array([1 + int(np.nonzero(order[t] == nxt[t])[0][0]) for t in range(len(nxt))])
    np.testing.assert_array_equal(insp.next_rank, ranks)
    first = insp.next_rank == 1
    np.testing.assert_array_equal(insp.topk_ids[:-1][first, 0], nxt[first])


def test_window_size_changes_nothing_and_float32_works():
    m = model("gru", 2, dtype="float32", hidden=16)
    a = sr.inspect(m, VOCAB, TEXT, window=1)
    b = sr.inspect(m, VOCAB, TEXT, window=10_000)
    for s in SIGNALS["gru"]:
        np.testing.assert_allclose(a.layers[1][s], b.layers[1][s], atol=1e-6)
    assert a.layers[0]["h"].dtype == np.float32
    assert abs(a.mean_surprisal - sr.evaluate(m, VOCAB.encode(TEXT), 50, batch=1)) < 1e-5


def test_text_is_cleaned_as_a_prompt_and_unknown_characters_are_named():
    m = model("rnn", 1)
    insp = sr.inspect(m, VOCAB, "caf\u00e9\tau lait")
    assert insp.text == "cafe au lait"
    with pytest.raises(sr.ScratchRNNError, match="bell|\\\\x07"):
        sr.inspect(m, VOCAB, "bell\x07")
    with pytest.raises(sr.ScratchRNNError, match="no text"):
        sr.inspect(m, VOCAB, "")
    with pytest.raises(sr.ScratchRNNError, match="vocabulary"):
        sr.inspect(m, sr.Vocab("abc"), "abc")
    with pytest.raises(sr.ScratchRNNError, match="top_k"):
        sr.inspect(m, VOCAB, "abc", top_k=0)
    one = sr.inspect(m, VOCAB, "a")  # one character: a guess, no successor to score
    assert one.topk_ids.shape == (1, 5) and one.surprisal.size == 0
    assert repr(insp).startswith("Inspection(rnn, 1 layers x 12, 12 chars, ")


def test_properties_of_a_known_string():
    text = 'Hi "a (b [c]) d". Ok\n xy)'
    p = properties(text)
    bits = lambda name: "".join(str(int(v)) for v in p[name])
    assert bits("in_quotes") == "0001111111111110000000000"
    assert bits("bracket_depth") == "0000001112210000000000000"
    assert p["line_position"][text.index("\n")] == 0
    assert p["line_position"][text.index("x")] == 2 and p["line_position"][0] == 1
    assert bits("word_position") == "1200100100100010001200120"
    assert bits("sentence_start")[text.index(".")] == "1"
    assert bits("sentence_start")[text.index(".") + 1] == "1"  # the space after it
    assert bits("sentence_start")[text.index("O")] == "0"
    assert bits("uppercase") == "".join("1" if c.isupper() else "0" for c in text)
    assert p["bracket_depth"].min() == 0  # the stray ')' does not go below zero


def test_correlations_match_numpy(rng):
    a = rng.normal(size=(200, 5))
    b = np.stack([a[:, 0] * 2 + rng.normal(size=200), rng.normal(size=200)], axis=1)
    expected = np.corrcoef(a.T, b.T)[:5, 5:]
    np.testing.assert_allclose(correlations(a, b), expected, atol=1e-12)
    assert not np.any(np.isnan(correlations(np.ones((10, 2)), b[:10])))


def test_find_units_finds_a_planted_unit(rng):
    p = properties(TEXT * 4)
    T = len(TEXT) * 4
    lay = [{"h": rng.uniform(-1, 1, (T, 30)), "z": rng.uniform(0, 1, (T, 30))},
           {"h": rng.uniform(-1, 1, (T, 30)), "z": rng.uniform(0, 1, (T, 30))}]
    lay[1]["z"][:, 17] = 0.2 + 0.6 * p["in_quotes"] + rng.normal(0, 0.1, T)
    lay[0]["h"][:, 4] = -p["line_position"] / 80 + rng.normal(0, 0.05, T)
    found = find_units(lay, p, top=3)
    best = found["in_quotes"][0]
    assert best[:3] == (1, "z", 17) and best[3] > 0.9
    assert abs(found["in_quotes"][1][3]) < 0.3  # the next best is noise
    assert found["line_position"][0][:3] == (0, "h", 4) and found["line_position"][0][3] < -0.9
    assert set(found) <= set(p)


def test_saturation_fractions(rng):
    m = model("lstm", 2)
    insp = sr.inspect(m, VOCAB, TEXT)
    sat = insp.saturation()
    assert set(sat[0]) == {"i", "f", "o"}
    f = insp.layers[1]["f"]
    np.testing.assert_allclose(sat[1]["f"][0], (f < 0.1).mean(axis=0))
    np.testing.assert_allclose(sat[1]["f"][1], (f > 0.9).mean(axis=0))
    assert cells.GATES["lstm"] == 4
