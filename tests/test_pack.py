"""How activations travel in a page (pack.py): base 85 safe inside a script element, levels
within half a step of the value, and the state rebuilt exactly from its prediction."""

import base64
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.inside import pack

TEXT = '"Where," said he, "is (the [old] key)?" Nobody knew.\nIt was late. ' * 6


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_b85_is_the_stdlibs_with_three_digits_replaced(data):
    text = pack.b85(data)
    assert text == base64.b85encode(data).decode().translate(str.maketrans("<>&", ".:,"))
    assert not set(text) & set('<>&"\\\'')  # nothing a JSON string or a script must escape
    assert pack.unb85(text) == data


def inspection(cell, scale=1.0, layers=2):
    vocab = sr.Vocab.ascii()
    model = sr.CharRNN(len(vocab), 10, cell, layers, seed=4)
    model.params = {k: v * scale for k, v in model.params.items()}
    return sr.inspect(model, vocab, TEXT)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_every_value_comes_back_within_half_a_step(cell, scale):
    insp = inspection(cell, scale)
    T = len(insp.ids)
    for layer in insp.layers:
        entries = pack.encode_layer(cell, layer)
        back = pack.decode_layer(cell, entries, T)
        assert list(back) == list(layer) == list(entries)
        for s, values in layer.items():
            e = entries[s]
            assert e["levels"] == (64 if s in ("h", "c") else 32)
            assert ("predict" in e) == (s in pack.PREDICTED.get(cell, {}))
            step = (e["hi"] - e["lo"]) / (e["levels"] - 1)
            assert back[s].shape == values.shape
            assert np.abs(back[s] - values).max() <= step / 2 + 1e-9, s
            # the levels themselves, not just close values
            np.testing.assert_allclose((back[s] - e["lo"]) / step,
                                       np.rint((back[s] - e["lo"]) / step), atol=1e-9)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_state_costs_little_next_to_its_gates(cell):
    """The prediction must actually predict: the stored differences are mostly zero."""
    insp = inspection(cell, 2.0, layers=1)
    entries = pack.encode_layer(cell, insp.layers[0])
    T, H = insp.layers[0]["h"].shape
    for s in pack.PREDICTED[cell]:
        stored = np.frombuffer(zlib.decompress(pack.unb85(entries[s]["data"])), np.uint8)
        assert stored.size == T * H
        assert np.mean((stored == 0) | (stored == 1) | (stored == 255)) > 0.9, s
        assert np.mean(stored == 0) > 0.5, s  # unpredicted levels: 1 in 64


def test_levels_are_checked():
    layer = inspection("gru").layers[0]
    for bad in (1, 257, 2.5, True, "64"):
        with pytest.raises(sr.ScratchRNNError, match="levels must be a whole number"):
            pack.encode_layer("gru", layer, bad)
    entries = pack.encode_layer("gru", layer, 2)
    assert entries["h"]["levels"] == 2 and entries["z"]["levels"] == 2
