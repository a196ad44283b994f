"""A trained model as one offline HTML page that writes text in the browser
(`scratchrnn export`, format html).

The page holds everything inline: its style (the visualize page's stylesheet), its script
(web/generate.js) and the weights, float32 little-endian in base64 (4/3 bytes of page per byte
of weights: about 5.4 bytes per parameter). The script steps the same cells as
sampling.sampler.stepper (cells.py, cells_ln.py) in float64 arithmetic on the float32 weights,
so its probabilities agree with scratchrnn's to float32 rounding and argmax writes the same
text (a float64 model's weights are rounded to float32 here, so a near tie may go the other
way). Sampling draws from the page's own seeded generator, not NumPy's: the same seed gives the
same text on the page, not the text `scratchrnn sample` gives.

The Content-Security-Policy is the visualize page's: no network, the one inline script runs by
its nonce, and every string of the model (its vocabulary, the card) reaches the DOM as text.
"""

from __future__ import annotations

import base64
import html
import os
import re
import secrets
from importlib import resources
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes
from ..inside.page import renderer_css, script_json
from ..nn.model import CharRNN, param_shapes
from .checks import HTML_MARKER, check_out

PAGE_VERSION = 1
# A page is one JavaScript string in the browser; past a few hundred MB a tab runs out of
# memory or hits V8's string limit, so a larger model is refused before anything is built.
MAX_PAGE_BYTES = 256 << 20


def _asset(name: str) -> str:
    return resources.files("scratchrnn.interop").joinpath("web", name).read_text("utf-8")


def start_id(chars) -> int:
    """The symbol fed when there is no prompt: as sampler.generate, a line break, else a space."""
    return next((chars.index(c) for c in "\n " if c in chars), 0)


def page_bytes_estimate(model: CharRNN) -> int:
    """The page's size, from its parameter count: base64 of float32, plus the script."""
    return 4 * (4 * model.num_params() + 2) // 3 + 64 * 1024


def page_data(model: CharRNN, vocab, card: dict | None = None) -> dict:
    """Everything the page's script reads, as JSON-ready values. `vocab.chars` may hold any
    characters (each symbol is its own string, so no two can merge into one code point in
    the browser); a bytes vocabulary (`vocab.kind`) means symbol i is byte ord(chars[i])."""
    if not isinstance(model, CharRNN):
        raise ScratchRNNError(f"model must be a CharRNN, got {type(model).__name__}")
    if not isinstance(getattr(vocab, "chars", None), str):
        raise ScratchRNNError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    if card is not None and not (isinstance(card, dict) and all(
            isinstance(k, str) and isinstance(v, str | int | float | None)
            for k, v in card.items())):
        raise ScratchRNNError("the page's card must be a dict of names to strings or numbers, "
                              f"got {card!r:.80}")
    cfg = model.config
    chars = list(vocab.chars)
    if len(chars) != cfg.vocab_size:
        raise ScratchRNNError("the vocabulary does not match the model")
    size = page_bytes_estimate(model)
    if size > MAX_PAGE_BYTES:
        most = limits.human_bytes(MAX_PAGE_BYTES)
        raise ScratchRNNError(f"this model would make a page of about {limits.human_bytes(size)}"
                              f", more than a browser holds well ({most}); export it for torch or "
                              "onnx instead")
    limits.check_memory({"page": 3 * size}, "the page", {"page": "export a smaller model"})
    layout, offset, parts = [], 0, []
    for name, shape in param_shapes(cfg).items():  # a fixed order, the same for every model
        arr = np.ascontiguousarray(model.params[name], "<f4")
        layout.append([name, list(shape), offset])
        offset += arr.size
        parts.append(arr.tobytes())
    return {
        "version": PAGE_VERSION,
        "cell": cfg.cell, "layers": cfg.num_layers, "hidden": cfg.hidden_size,
        "layer_norm": bool(cfg.layer_norm), "eps": 1e-5,
        "chars": chars, "bytes": vocab.kind == "bytes",
        "ascii": vocab.is_ascii,  # its prompts are transliterated, else NFC
        "start": start_id(vocab.chars),
        "newline": "\n" in vocab.chars,  # else a prompt's line breaks are read as spaces
        "max_clamp": limits.MAX_CLAMP, "max_length": limits.MAX_SAMPLE_LENGTH,
        "max_stop": limits.MAX_STOP,
        "params": layout, "count": offset,
        "weights": base64.b64encode(b"".join(parts)).decode("ascii"),
        "card": card or {},
    }


def render_page(model: CharRNN, vocab, card: dict | None = None, title: str | None = None) -> str:
    """The whole self-contained page as a string."""
    if title is not None and not isinstance(title, str):
        raise ScratchRNNError(f"the page's title must be a string, got {type(title).__name__}")
    title = title or "A character model that writes"
    data = page_data(model, vocab, card)
    parts = {"MARKER": HTML_MARKER, "NONCE": secrets.token_urlsafe(16),
             "TITLE": html.escape(title), "CSS": renderer_css(), "DATA": script_json(data),
             "JS": _asset("generate.js")}
    # One pass, so nothing substituted (the data) is searched for placeholders again.
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("generate.html"))


def model_card(ckpt) -> dict:
    """What the page says about the model, from a checkpoint: strings and numbers only."""
    cfg = ckpt.model.config
    card = {"cell": cfg.cell.upper() + (" (layer-normalised)" if cfg.layer_norm else ""),
            "layers": cfg.num_layers, "hidden units": cfg.hidden_size,
            "vocabulary": f"{cfg.vocab_size} symbols", "parameters": f"{ckpt.model.num_params():,}"}
    if isinstance(ckpt.meta.get("step"), int):
        card["trained steps"] = f"{ckpt.meta['step']:,}"
    return card


def export_html(model: CharRNN, vocab, out, card: dict | None = None,
                title: str | None = None) -> Path:
    """Write the page atomically to `out`: a new path, or a page written here before."""
    if not isinstance(out, str | os.PathLike):
        raise ScratchRNNError(f"`out` must be a file path, got {type(out).__name__}")
    page = render_page(model, vocab, card, title)  # its size checked before anything is made
    out = check_out(Path(out), "html")
    atomic_write_bytes(out, page.encode("utf-8"), "page")
    return out
