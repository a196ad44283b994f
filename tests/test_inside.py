"""sr.inspect: the signals equal the model's batched forward pass, the surprisal equals
evaluate's loss, the top-k agrees with the full softmax, and the unit finder finds a unit
planted to track a property."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.inside.units import correlations, find_units, properties
from scratchrnn.nn import cells, layers
from scratchrnn.nn.cells import SIGNALS
from scratchrnn.nn.model import forward

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
    with pytest.raises(sr.ScratchRNNError, match="before must be a string"):
        sr.inspect(m, VOCAB, "abc", before=b'"')
    inside = sr.inspect(m, VOCAB, 'c" d', before='a "b')  # the labels go on from `before`
    assert bits(inside.properties()["in_quotes"]) == "1000"
    assert bits(inside.head(2).properties()["in_quotes"]) == "10"
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


# ------------------------------------------------- where an excerpt starts (quotes, brackets)

STORY = ('Tom looked up. "It was late," he said, "and the (old [iron] gate) was shut."\n\n'
         '"Nobody came--nobody at all." She laughed. "Well!" said he; "(so) be it."\n'
         'It rained "hard" that night (and [the] next).\n') * 3
# A quotation over two paragraphs: the second opens again without the first closing.
PARAGRAPHS = ('"It was late," he said, "and the gate was shut.\n\n"Nobody came." '
              'She laughed.\n') * 3


def bits(v) -> str:
    return "".join(str(int(x)) for x in v)


@pytest.mark.parametrize("name", ["in_quotes", "bracket_depth"])
def test_an_excerpt_that_starts_inside_a_quotation_reads_where_it_starts(name):
    """Counting quotes from an excerpt's start swapped inside and outside when it began inside
    a quotation (the README's quote unit listed as +0.98 for a unit that is -0.99). Wherever it
    is cut, the excerpt's labels equal the whole text's for the part they share."""
    full = properties(STORY, "")[name]
    assert bits(properties(STORY)[name]) == bits(full)  # the text's start: nothing before it
    assert full[STORY.index("Nobody")] == (name == "in_quotes")
    assert full[STORY.index("It rained") - 2] == 0
    for cut in range(1, len(STORY) // 3):
        got = properties(STORY[cut:])[name]
        assert bits(got) == bits(full[cut:]), (cut, STORY[cut:cut + 30])
        assert bits(properties(STORY[cut:], STORY[:cut])[name]) == bits(full[cut:]), cut


def test_a_quotation_over_paragraphs_does_not_flip_the_rest():
    """Each quote whose direction shows sets the state: the paragraph that opens again leaves
    the text inside, and the rest of the text is not read the wrong way round. Cut inside the
    first paragraph, only the text before the cut can tell the excerpt starts inside."""
    full = properties(PARAGRAPHS, "")["in_quotes"]
    assert full[PARAGRAPHS.index("\n\n")] == 1 and full[PARAGRAPHS.index("She")] == 0
    assert bits(np.tile(full[:len(PARAGRAPHS) // 3], 3)) == bits(full)
    for cut in range(1, len(PARAGRAPHS) // 3):
        assert bits(properties(PARAGRAPHS[cut:], PARAGRAPHS[:cut])["in_quotes"]) == bits(
            full[cut:]), cut


def test_the_text_before_decides_where_the_excerpt_alone_cannot_tell():
    from scratchrnn.inside.units import CONTEXT

    head, tail = 'He said, "so it ', 'goes " and " on " we " go'  # quotes between spaces
    full = properties(head + tail, "")["in_quotes"][len(head):]
    assert bits(full) == "1111100000011111000001111"
    assert bits(properties(tail, head)["in_quotes"]) == bits(full)
    assert bits(properties(tail, "")["in_quotes"]) == bits(1 - full)  # told: the start
    long_before = "x" * 10 * CONTEXT + head  # only its end is read
    assert bits(properties(tail, long_before)["in_quotes"]) == bits(full)


def test_curly_quotes_and_guillemets_say_their_direction():
    """Marks that show their direction need no guessing, even where a straight quote's
    neighbours would mislead (a closing mark between spaces, an opening one after a letter)."""
    cases = {"ends \u201d and x\u201cthen\u201d done": "11111000000011111000000",
             "ja \u00bb so \u00abnon\u00bb": "1110000011110",
             "nein\u201c, \u201eja\u201c": "11110001110",
             "x\u300dy \u300cz\u300d": "1000110"}
    for text, want in cases.items():
        assert bits(properties(text)["in_quotes"]) == want, text


WORD = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=1, max_size=6)
PUNCT = st.sampled_from(["", "", ".", ",", "!", "?", "--"])


@st.composite
def quoted_text(draw):
    """Prose whose quotes and brackets are well formed: a quotation opens after a space, a
    bracket or the start and before a word, and closes after a word or punctuation and before
    a space, punctuation or the end; brackets of one kind do not nest."""
    parts = []
    for _ in range(draw(st.integers(1, 12))):
        words = " ".join(draw(st.lists(WORD, min_size=1, max_size=4))) + draw(PUNCT)
        kind = draw(st.sampled_from(["plain", "plain", "quote", "bracket", "quote in bracket"]))
        if kind == "quote":
            words = f'"{words}"' + draw(st.sampled_from(["", ",", ".", ";"]))
        elif kind == "bracket":
            words = f"({words})"
        elif kind == "quote in bracket":
            words = f'["{words}"]'
        parts.append(words + draw(st.sampled_from([" ", " ", "\n", "\n\n"])))
    return "".join(parts)


@given(quoted_text(), st.data())
def test_any_cut_of_well_formed_quotes_reads_the_same_labels(text, data):
    cut = data.draw(st.integers(0, len(text) - 1))
    full = properties(text, "")
    alone = properties(text[cut:])
    for name in ("in_quotes", "bracket_depth"):
        assert bits(alone[name]) == bits(full[name][cut:]), (name, text[cut:])


def test_excerpts_of_the_book_read_as_the_whole_book(book):
    """A Tale of Two Cities cut at 100 random points into 4,000-character excerpts (visualize's
    default): counting quotes from each excerpt's start read 22 of them inside out; read from
    their evidence, 96 agree exactly with the whole book's labels and none below 0.93 (an
    excerpt that starts in a quotation over paragraphs, its first quote opening the next)."""
    vocab = sr.Vocab.ascii()
    corpus = sr.load_corpus(str(book), vocab)
    text = vocab.decode(np.concatenate([corpus.train, corpus.val, corpus.test]))
    full = properties(text, "")["in_quotes"]
    cuts = np.random.default_rng(0).integers(0, len(text) - 4000, 100)
    agree = np.array([(properties(text[a:a + 4000])["in_quotes"] == full[a:a + 4000]).mean()
                      for a in cuts])
    assert agree.min() > 0.9 and (agree == 1).sum() >= 90, np.sort(agree)[:10]
