"""How a layer's activations travel inside a page: quantised, the state predicted from its own
gates, deflated, and written in a base-85 alphabet that is safe inside a JSON string.

Size is the constraint (a page of 4,000 characters of the default 2 x 256 GRU must stay under
5 MB), and the numbers themselves leave little to squeeze: quantised to 64 levels, a trained
model's activations carry about 5 bits each whichever context an entropy coder conditions on
(the unit, the previous step, the input character), so a better coder than deflate would save
under 5%. What does save is structure and a bound on what a colour can show:

- The state is a function of the gates. A GRU's `h_t = (1 - z_t) n_t + z_t h_(t-1)` and an
  LSTM's `c_t = f_t c_(t-1) + i_t g_t`, `h_t = o_t tanh(c_t)` are predicted from the stored
  (quantised) gates and the stored previous state, and only the difference between the stored
  level and the predicted one is kept: mostly 0 or +-1, about 1 bit instead of 5-6. The
  prediction uses only +, -, *, / and floor on float64 (no library tanh: a Pade approximant),
  so the page's script repeats it exactly and recovers the very levels stored here.
- Levels sized by what a colour can show. The page colours a value on a blue-white-orange
  ramp: 64 levels keep every colour within 1.9 CIELAB units of the exact value's (under the
  2.3 of a just-noticeable difference), 32 within 3.5 (mean 1.4). The state, the signal users
  read first, keeps 64 levels; gates and candidates get 32 (see BENCHMARKS.md).
- Base 85 instead of base 64: 5 characters per 4 bytes instead of 5.33 (`base64.b85encode`'s
  digits, with the three of them that a page must escape, < > &, replaced by . : ,).

Each array is unit-major: (H, T) levels, one unit's whole time line contiguous.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np

from ..errors import ScratchRNNError
from ..nn.cells import SIGMOID

STATE_LEVELS = 64  # h and c
GATE_LEVELS = 32  # sigmoid gates and tanh candidates
# What each predicted signal is computed from (the page script's `predict` reads the same).
PREDICTED = {"gru": {"h": ("z", "n")},
             "lstm": {"c": ("f", "i", "g"), "h": ("o", "c")}}
_B85 = str.maketrans("<>&", ".:,")
_B85_BACK = str.maketrans(".:,", "<>&")
# base64.b85encode's digits, 0 to 84, with those three replaced
_DIGITS = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        b"!#$%,()*+-;.=:?@^_`{|}~", np.uint8)


def b85(data: bytes) -> str:
    """base64.b85encode(data) with . : , for < > &, vectorised (the stdlib's is pure Python:
    3 s for a page's 4 MB)."""
    n = len(data)
    padded = np.frombuffer(data + bytes(-n % 4), ">u4").astype(np.int64)  # (n/4,)
    digits = np.empty((len(padded), 5), np.int64)  # (n/4, 5) most significant first
    for k in range(4, -1, -1):
        padded, digits[:, k] = np.divmod(padded, 85)
    text = _DIGITS[digits].tobytes().decode("ascii")
    return text[:len(text) - (-n % 4)]  # a last group of m bytes keeps m + 1 digits


def unb85(text: str) -> bytes:
    return base64.b85decode(text.translate(_B85_BACK))


def value_range(signal: str, values: np.ndarray) -> tuple[float, float]:
    if signal in SIGMOID:
        return 0.0, 1.0
    if signal == "c":  # unbounded: symmetric around zero so white still means 0
        m = float(np.abs(values).max()) if values.size else 1.0
        return -max(m, 1e-6), max(m, 1e-6)
    return -1.0, 1.0  # tanh outputs: h, n, g


def levels_of(signal: str, state_levels: int = STATE_LEVELS) -> int:
    return state_levels if signal in ("h", "c") else min(GATE_LEVELS, state_levels)


def to_levels(values: np.ndarray, lo: float, hi: float, levels: int) -> np.ndarray:
    """float64 values -> int64 levels by floor(x + 1/2), as the page script rounds."""
    scale = (levels - 1) / (hi - lo)
    return np.clip(np.floor((values - lo) * scale + 0.5), 0, levels - 1).astype(np.int64)


def from_levels(q: np.ndarray, lo: float, hi: float, levels: int) -> np.ndarray:
    return lo + q * ((hi - lo) / (levels - 1))


def _tanhish(x: np.ndarray) -> np.ndarray:
    # tanh's [7/6] Pade approximant, within 1e-4 of tanh once clamped where it reaches 1:
    # repeatable bit for bit in any language (a library tanh may differ in the last bit)
    x = np.minimum(np.maximum(x, -4.97), 4.97)
    x2 = x * x
    return (x * (135135.0 + x2 * (17325.0 + x2 * (378.0 + x2)))
            / (135135.0 + x2 * (62370.0 + x2 * (3150.0 + 28.0 * x2))))


def _predict(cell: str, signal: str, deq: dict, prev: np.ndarray) -> np.ndarray:
    """The predicted value of `signal` from the dequantised signals `deq` (T, H) and its own
    dequantised previous step `prev` (T, H); the script's `predict` does the same arithmetic."""
    if cell == "gru":  # h
        z, n = deq["z"], deq["n"]
        return (1.0 - z) * n + z * prev
    if signal == "c":
        return deq["f"] * prev + deq["i"] * deq["g"]
    return deq["o"] * _tanhish(deq["c"])


def _deflate(raw: bytes, residual: bool) -> bytes:
    # Measured on the default model's page: the levels are near-random bytes, on which string
    # matching buys little and Z_FILTERED at level 4 is 7% smaller than zlib's default; the
    # residuals (long runs of 0) deflate best and 300x faster by Huffman coding alone.
    level, strategy = (9, zlib.Z_HUFFMAN_ONLY) if residual else (4, zlib.Z_FILTERED)
    deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return deflate.compress(raw) + deflate.flush()


def _shifted(x: np.ndarray) -> np.ndarray:
    """x one step later: row t holds x[t - 1], row 0 the zero start state."""
    return np.concatenate([np.zeros_like(x[:1]), x[:-1]])  # (T, H)


def encode_layer(cell: str, layer: dict, state_levels: int = STATE_LEVELS) -> dict:
    """{signal: (T, H) values} -> {signal: {lo, hi, levels, data[, predict]}} for the page."""
    if not isinstance(state_levels, int) or isinstance(state_levels, bool) \
            or not 2 <= state_levels <= 256:
        raise ScratchRNNError(f"levels must be a whole number in [2, 256], got {state_levels!r}")
    predicted = PREDICTED.get(cell, {})
    out, q, deq = {}, {}, {}
    # gates first: the state's prediction reads them; c before the LSTM's h, which reads it
    for name in sorted(layer, key=lambda s: (s in predicted, s == "h")):
        values = np.asarray(layer[name], np.float64)  # (T, H)
        lo, hi = value_range(name, values)
        L = levels_of(name, state_levels)
        q[name] = to_levels(values, lo, hi, L)  # (T, H)
        deq[name] = from_levels(q[name], lo, hi, L)  # (T, H)
        stored = q[name]
        entry = {"lo": lo, "hi": hi, "levels": L}
        if name in predicted:
            guess = to_levels(_predict(cell, name, deq, _shifted(deq[name])), lo, hi, L)
            stored = (q[name] - guess) % 256  # the level = guess + this, mod 256
            entry["predict"] = list(predicted[name])
        raw = np.ascontiguousarray(stored.astype(np.uint8).T).tobytes()  # (H, T)
        entry["data"] = b85(_deflate(raw, name in predicted))
        out[name] = entry
    return {name: out[name] for name in layer}


def decode_layer(cell: str, entries: dict, T: int) -> dict:
    """The inverse of encode_layer: {signal: (T, H) float64}, the values the page shows."""
    predicted = PREDICTED.get(cell, {})
    deq = {}
    for name in sorted(entries, key=lambda s: (s in predicted, s == "h")):
        e = entries[name]
        L, lo, hi = e["levels"], e["lo"], e["hi"]
        stored = np.frombuffer(zlib.decompress(unb85(e["data"])), np.uint8)
        stored = stored.reshape(-1, T).T.astype(np.int64)  # (T, H)
        if name not in predicted:
            deq[name] = from_levels(stored, lo, hi, L)
            continue
        cur = np.zeros(stored.shape[1])  # (H,) the previous step's value, zero at the start
        vals = np.empty(stored.shape)  # (T, H)
        for t in range(T):  # sequential: each step's guess reads the step before
            row = {k: v[t:t + 1] for k, v in deq.items()}
            guess = to_levels(_predict(cell, name, row, cur[None]), lo, hi, L)[0]
            cur = vals[t] = from_levels((guess + stored[t]) % 256, lo, hi, L)
        deq[name] = vals
    return {name: deq[name] for name in entries}
