"""Text generation: feed the prompt, then draw one character at a time from the model's
softmax, optionally sharpened by temperature and truncated by top-k or nucleus (top-p)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

from .. import limits
from ..data.vocab import Vocab, shown
from ..errors import ScratchRNNError
from ..limits import MAX_CLAMP
from ..nn import cells, cells_ln
from ..nn.model import CharRNN
from .beam import search
from .options import check_options, check_samples, seeds, until


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    limits.real(temperature, "temperature", 0.0, lo_open=True,
                hint="; use `argmax` for the most likely character every time")
    limits.integer(top_k, "top_k", 1, none_ok=True)
    limits.real(top_p, "top_p", 0.0, 1.0, lo_open=True, none_ok=True)


def check_clamp(clamp, model: CharRNN) -> tuple[int, int, float] | None:
    """`clamp` is None or (layer, unit, value): that unit of that layer's h is held at value."""
    if clamp is None:
        return None
    cfg = model.config
    try:
        layer, unit, value = clamp
    except (TypeError, ValueError):
        raise ScratchRNNError(f"a clamp is LAYER:UNIT:VALUE, got {clamp!r}") from None
    for name, v, n in (("layer", layer, cfg.num_layers), ("unit", unit, cfg.hidden_size)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 0 <= v < n:
            raise ScratchRNNError(f"the clamp's {name} must be an integer in [0, {n - 1}] for "
                                  f"this model, got {v!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not abs(value) <= MAX_CLAMP:
        raise ScratchRNNError(f"the clamp's value must be a number in [-{MAX_CLAMP:g}, "
                              f"{MAX_CLAMP:g}], got {value!r} (h of a tanh unit is in (-1, 1))")
    return int(layer), int(unit), float(value)


def filter_probs(probs: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """Zero all but the top-k characters and/or the smallest set whose mass reaches top_p."""
    probs = probs.astype(np.float64)
    order = np.argsort(-probs, kind="stable")
    keep = np.zeros(len(probs), bool)
    n = len(probs) if top_k is None else min(top_k, len(probs))
    if top_p is not None:
        mass = np.cumsum(probs[order]) / probs.sum()
        n = min(n, int(np.searchsorted(mass, top_p * (1 - 1e-12))) + 1)
    keep[order[:n]] = True
    probs[~keep] = 0.0
    return probs / probs.sum()


def stepper(model: CharRNN, clamp: tuple[int, int, float] | None = None):
    """A single-stream step `next_logits(char_id) -> (V,) logits` that keeps its own state.

    `clamp=(layer, unit, value)` overwrites that unit of that layer's h after every step, before
    the layer above (and the next step) reads it: the unit is held at the value while the rest
    of the network runs as trained (Radford et al. 2017's sentiment-neuron steering). An LSTM's
    cell c is left to run; only its output h is held.

    The cells' own step functions (cells.py) on one vector at a time, with buffers allocated
    once: generation is one tiny step per character, so per-call overhead, not arithmetic,
    decides its speed; only the recurrent product differs from the window's (a matrix-vector
    product over transposed weights).
    Tests check it against the batched forward pass. With layer normalisation (cells_ln.py)
    every embedding row is normalised once, here, and the state's projection at every step."""
    cfg, P = model.config, model.params
    H, L, cell, ln = cfg.hidden_size, cfg.num_layers, cfg.cell, cfg.layer_norm
    gx = [P.get(f"l{k}.ln_x") for k in range(L)]
    gh = [P.get(f"l{k}.ln_h") for k in range(L)]
    bias = [P[f"l{k}.b"] for k in range(L)]

    def normed(v, k):  # v (..., G*H), overwritten -> LN(v) g_x + b (layer_norm), else v + b
        return cells_ln.affine_forward(v, gx[k], bias[k])[0] if ln else v + bias[k]

    first = normed(P["l0.W_x"].copy(), 0)  # (V, G*H): each embedding row already holds the bias
    Wx = [None] + [P[f"l{k}.W_x"] for k in range(1, L)]
    # Transposed copies: a matrix-vector product reads W^T's rows contiguously, which measured
    # 1.4x faster than h @ W at H=512, and generation is bound by reading the weights.
    WhT = [np.ascontiguousarray(P[f"l{k}.W_h"].T) for k in range(L)]
    if cell == "lstm":
        # As in cells.lstm_forward: the sigmoids' x/2 folded into the weights makes all four
        # gates one tanh and one affine map (3 calls, not 5). Halving is exact in binary
        # floating point, so the gates are bit for bit those of cells.sigmoid.
        scale, shift = cells.lstm_consts(H, cfg.dtype)
        first = first * scale
        Wx = [None] + [W * scale for W in Wx[1:]]
        WhT = [W * scale[:, None] for W in WhT]
        bias = [b * scale for b in bias]
    b_hn = [P.get(f"l{k}.b_hn") for k in range(L)]
    hs = [np.zeros(H, cfg.dtype) for _ in range(L)]  # (H,) per layer
    cs = [np.zeros(H, cfg.dtype) for _ in range(L)]  # LSTM cells
    z = np.empty(cells.GATES[cell] * H, cfg.dtype)  # (G*H,) h W_h, then the gates
    tmp = np.empty(H, cfg.dtype)
    gates = [z[j * H:(j + 1) * H] for j in range(4)]  # the LSTM's i f g o, views made once
    if cell == "gru":
        z_rz, z_n = z[:2 * H].reshape(2, H), z[2 * H:]  # the r, z and n parts of h W_h
    rz, n = np.empty((2, H), cfg.dtype), np.empty(H, cfg.dtype)  # GRU gates and candidate
    W_yT, b_y = np.ascontiguousarray(P["W_y"].T), P["b_y"]
    clamp = check_clamp(clamp, model)
    c_layer, c_unit, c_value = clamp if clamp else (-1, 0, 0.0)

    def next_logits(i: int) -> np.ndarray:
        for k in range(L):
            x_in = first[i] if k == 0 else normed(hs[k - 1] @ Wx[k], k)  # (G*H,)
            h = hs[k]
            np.matmul(WhT[k], h, out=z)
            if ln:
                cells_ln.normalise(z, 3)
                np.multiply(z, gh[k], out=z)  # in place; "z *=" would make z local
            # the cells' own step arithmetic (cells.py), on one vector, in place
            if cell == "rnn":
                cells.rnn_step(z, x_in, h)
            elif cell == "lstm":
                cells.lstm_step(z, x_in, scale, shift, *gates, cs[k], cs[k], tmp, h, n)
            else:
                cells.gru_gates(x_in[:2 * H].reshape(2, H), x_in[2 * H:], z_rz, z_n, b_hn[k], h,
                                rz, n, z_n, h)
            if k == c_layer:
                h[c_unit] = c_value
        return W_yT @ hs[L - 1] + b_y

    def state() -> list[np.ndarray]:  # a copy of what the next step reads (beam search)
        return [a.copy() for a in hs + cs]

    def restore(saved: list[np.ndarray]) -> None:
        for a, b in zip(hs + cs, saved, strict=True):
            a[...] = b

    zero = state()
    next_logits.state, next_logits.restore = state, restore
    next_logits.reset = lambda: restore(zero)
    return next_logits


def shared_stepper(model: CharRNN, clamp=None):
    """One stepper for several draws from one model (`num_samples`): `read(ids)` -> (stepper,
    logits) that has read the prompt `ids` from a zero state. Preparing the weights (copies of
    every one) costs as much as hundreds of steps, and a prompt of 4,000 characters 4,000, so
    both are done once, not once per sample: the state after the last prompt read is kept and
    restored (the same numbers as reading it again). The draws must be taken one after
    another, as `sample` does."""
    made, read_last = [], []  # the stepper; (prompt ids, state after them, their logits)

    def read(ids: list[int]):
        if not made:
            made.append(stepper(model, clamp))
        step, ids = made[0], [int(i) for i in ids]
        if read_last and read_last[0] == ids:
            step.restore(read_last[1])
            return step, read_last[2].copy()
        step.reset()
        for i in ids:  # its last logits predict the first new character
            logits = step(i)
        read_last[:] = [ids, step.state(), logits.copy()]
        return step, logits
    return read


def generate(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
             temperature: float | None = None, top_k: int | None = None,
             top_p: float | None = None, argmax: bool = False, seed: int | None = 0,
             clamp: tuple[int, int, float] | None = None, *, stop_at: str | None = None,
             beam: int | None = None, steps=None) -> Iterator[str]:
    """Yield `length` generated characters (the prompt itself is not repeated); `clamp`: see
    `stepper` (held while the prompt is read, too). Every argument is checked before the first
    character is made; stop consuming to stop generating (the training loop checks for Ctrl-C
    between characters).

    `temperature` None is 1. `stop_at`: end where this text first appears in what is generated
    (the prompt is not searched), without it; fewer than `length` characters then. `beam`: the
    most likely continuation that beam search of this width finds (beam.py), instead of a
    draw; it takes no `temperature`, `top_k`, `top_p` or `argmax`, and yields nothing until
    the search is over. `steps`: a `shared_stepper` of this model and clamp, for several
    draws."""
    if not isinstance(model, CharRNN):
        raise ScratchRNNError(f"model must be a CharRNN, got {type(model).__name__}")
    if not isinstance(vocab, Vocab):
        raise ScratchRNNError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    if len(vocab) != model.config.vocab_size:
        raise ScratchRNNError("the vocabulary does not match the model")
    if prime is not None and not isinstance(prime, str):
        raise ScratchRNNError(f"the prompt must be a string, got {type(prime).__name__}")
    limits.integer(length, "length", 0, limits.MAX_SAMPLE_LENGTH)
    check_options(length, temperature, top_k, top_p, argmax, stop_at, beam)
    temperature = 1.0 if temperature is None else temperature
    check_sampling(temperature, top_k, top_p)
    clamp = check_clamp(clamp, model)
    limits.integer(seed, "seed", 0, none_ok=True)
    if stop_at is not None and vocab.kind == "chars" and not set(stop_at) <= set(vocab.chars):
        _never_written(stop_at, vocab)
    ids = vocab.clean_prompt(prime) if prime else []
    if prime and len(ids) == 0:
        # Cleaning drops some characters (a lone combining accent, a zero-width space) exactly as
        # it does in the corpus; what is left is no prompt at all, so sample as without one.
        warnings.warn(f"the prompt {prime!r} has no characters the model reads once cleaned; "
                      "sampling without a prompt", stacklevel=2)
    if len(ids) == 0:  # start as after a line break (or a space), like the start of a paragraph
        ids = [next((vocab.chars.index(c) for c in "\n " if c in vocab.chars), 0)]
    if steps is not None and not callable(steps):
        raise ScratchRNNError(f"steps must be a shared_stepper of this model, or None, got "
                              f"{type(steps).__name__}")
    steps = steps or shared_stepper(model, clamp)
    if beam is not None:
        chars = _beam_chars(vocab, ids, length, beam, steps, stop_at)
    else:
        chars = _chars(model, vocab, ids, length, temperature, top_k, top_p, argmax, seed, steps)
    return chars if stop_at is None else until(chars, stop_at)


def _never_written(stop_at: str, vocab: Vocab) -> None:
    """A stop text with a character the model never writes can never match: the sample then
    runs its whole length, as if `stop_at` were ignored; say so (a model of ASCII writes
    transliterations: its '--' for '—')."""
    missing = sorted(set(stop_at) - set(vocab.chars))
    written = vocab.clean(stop_at)
    hint = (f"; it writes {written!r} for that" if vocab.is_ascii and written
            and set(written) <= set(vocab.chars) else "")
    warnings.warn(f"`stop_at` holds {shown(missing)}, which this model never writes (its "
                  f"vocabulary has no such character), so no sample will stop there{hint}",
                  stacklevel=3)


def _beam_chars(vocab, ids, length, width, steps, stop_at) -> Iterator[str]:
    step, logits = steps(ids)
    if vocab.kind == "chars":
        yield from search(step, logits, width, length, vocab.chars, stop_at)
        return
    # a bytes vocabulary's symbols are chr(byte): the stop text is searched as its UTF-8 bytes
    stop = None if stop_at is None else stop_at.encode("utf-8", "replace").decode("latin-1")
    found = search(step, logits, width, length, vocab.chars, stop)
    yield vocab.decode(np.frombuffer(found.encode("latin-1"), np.uint8))


def _chars(model, vocab, ids, length, temperature, top_k, top_p, argmax, seed,
           steps) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    next_logits, logits = steps(ids)  # the prompt read
    filtered = top_k is not None or top_p is not None
    # One character is ~10 calls on (V,) vectors, so each call's overhead is the cost: the
    # draw works on unnormalised weights in buffers made once (a softmax's division and sums
    # and the temporaries of `(z - z.max()) / T` cost 30-45 us per character, the model's
    # step at H=128 about as much).
    text_of = vocab.writer()  # a bytes vocabulary's characters take several symbols
    w = np.empty(model.config.vocab_size, np.float64)  # (V,) exp((z - max z) / T)
    cum = np.empty_like(w)  # (V,) running sums of w
    for _ in range(length):
        if argmax:
            nxt = int(logits.argmax())
        else:
            # shifted first: a tiny temperature then sends the others to -inf, never inf - inf
            np.subtract(logits, logits.max(), out=w, dtype=np.float64)
            with np.errstate(over="ignore"):
                np.divide(w, temperature, out=w)
            np.exp(w, out=w)
            if filtered:
                w[:] = filter_probs(w / w.sum(), top_k, top_p)
            np.cumsum(w, out=cum)
            nxt = min(int(cum.searchsorted(rng.random() * cum[-1], side="right")), len(w) - 1)
        yield text_of(nxt)
        logits = next_logits(nxt)
    if tail := text_of(None):
        yield tail


def sample(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
           temperature: float | None = None, top_k: int | None = None,
           top_p: float | None = None, argmax: bool = False, seed: int | None = 0,
           clamp: tuple[int, int, float] | None = None, *, stop_at: str | None = None,
           beam: int | None = None, num_samples: int | None = None) -> str | list[str]:
    """The prompt followed by `length` generated characters (prime=None: no prompt); the
    other arguments: see `generate`. `num_samples` N: a list of N such texts, independent
    draws from the one prompt, sample i drawn with seed `seed` + i (`seeds`)."""
    args = (model, vocab, prime, length, temperature, top_k, top_p, argmax)
    more = dict(clamp=clamp, stop_at=stop_at, beam=beam)
    if num_samples is None:
        return (prime or "") + "".join(generate(*args, seed, **more))
    check_samples(num_samples, length, beam)
    more["steps"] = shared_stepper(model, clamp)  # taken one after another, below
    runs = [generate(*args, s, **more) for s in seeds(seed, num_samples)]  # all checked first
    return [(prime or "") + "".join(chars) for chars in runs]

