"""The inside page: an Inspection as page data (activations through the codec in pack.py),
rendered into one self-contained HTML file or a notebook fragment, and written safely."""

from __future__ import annotations

import html
import itertools
import math
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes, make_dir, open_regular
from ..nn.cells import SIGMOID
from ..safejson import dumps as json_dumps
from ..store.owner import check_output
from .glyphs import char_of, guess_labels
from .pack import STATE_LEVELS, decode_layer, encode_layer
from .units import PROPERTIES

if TYPE_CHECKING:
    from .inspection import Inspection


MARKER = "<!-- scratchrnn inside page: written by 'scratchrnn visualize'"
LEVELS = STATE_LEVELS
FRAGMENT_CHARS = 2000  # a notebook output stays light
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
            "\u2029": "\\u2029"}
_counter = itertools.count()


def _asset(name: str) -> str:
    return resources.files("scratchrnn.inside").joinpath("web", name).read_text("utf-8")


def renderer_js() -> str:
    """The activation view's script: defines `ScratchRNNInside.render(root, data)`."""
    return _asset("inside.js")


def renderer_css() -> str:
    """The activation view's stylesheet (every rule under `.sr-inside`)."""
    return _asset("inside.css")


def script_json(obj) -> str:
    """JSON that is safe inside a <script> element: no </script>, <!--, & or line separators
    can appear in it, whatever the strings hold."""
    # non-finite numbers (a float32 model that overflowed) become null, never invalid JSON
    text = json_dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return re.sub(r"[<>&\u2028\u2029]", lambda m: _ESCAPES[m.group()], text)


def layer_values(data: dict, k: int) -> dict:
    """Layer k's signals as the page shows them, {signal: (T, H) float64}, from page data (for
    tests and other readers of the format)."""
    return decode_layer(data["cell"], data["acts"]["layers"][k], len(data["ids"]))


def _round(a: np.ndarray, digits: int) -> list:
    return [round(float(x), digits) for x in np.asarray(a).ravel()]


def _byte_views(insp: Inspection) -> dict:
    """A bytes vocabulary's positions are bytes, not characters: which character of `text`
    each one belongs to, and how each guessed or actual next byte reads (glyphs.py)."""
    if insp.vocab.kind != "bytes":
        return {"kind": "chars"}
    return {"kind": "bytes",
            "char_of": [int(i) for i in char_of(insp.vocab, insp.ids)],
            "guess_labels": guess_labels(insp.ids, insp.topk_ids),
            "next_labels": guess_labels(insp.ids, np.asarray(insp.ids)[1:, None])}


def page_data(insp: Inspection, levels: int = LEVELS, model_card: dict | None = None,
              history: list | None = None, title: str | None = None,
              max_chars: int | None = None) -> dict:
    """Everything the page's script reads, as JSON-ready Python values."""
    if insp.vocab is None:
        raise ScratchRNNError("this inspection has no vocabulary; make it with sr.inspect")
    if max_chars is not None:
        insp = insp.head(max_chars)
    acts = [encode_layer(insp.cell, layer, levels) for layer in insp.layers]
    mean = float(insp.surprisal.mean()) if insp.surprisal.size else None
    return {
        "version": 2,  # 2: acts per pack.py (levels per signal, base 85)
        "title": title,
        "text": insp.text,
        "ids": [int(i) for i in insp.ids],
        # one string per symbol: JavaScript indexes a string by UTF-16 halves, so symbol i of
        # a vocabulary holding an emoji would not be chars[i] of one string
        "chars": list(insp.vocab.chars),
        **_byte_views(insp),
        "cell": insp.cell,
        "num_layers": len(insp.layers),
        "hidden": insp.hidden_size,
        "signals": list(insp.signal_names()),
        "gates": sorted(SIGMOID & set(insp.signal_names())),
        "k": int(insp.topk_ids.shape[1]),
        "topk_ids": [int(i) for i in insp.topk_ids.ravel()],
        "topk_probs": _round(insp.topk_probs, 4),
        "next_prob": _round(insp.next_prob, 5),
        "next_rank": [int(r) for r in insp.next_rank],
        "surprisal": _round(insp.surprisal, 4),
        "mean_surprisal": mean,
        "bits_per_char": None if mean is None else mean / math.log(2),
        "acts": {"layout": "base85(zlib(uint8[H, T])), see scratchrnn.inside.pack", "layers": acts},
        "units": {p: [[k, s, u, round(c, 4)] for k, s, u, c in rows]
                  for p, rows in insp.units(3).items()},
        "properties": PROPERTIES,
        "saturation": [{g: [_round(v[0], 4), _round(v[1], 4)] for g, v in layer.items()}
                       for layer in insp.saturation()],
        "model_card": model_card,
        "history": history or [],
    }


def render_page(insp: Inspection, model_card: dict | None = None, history: list | None = None,
                title: str | None = None, levels: int = LEVELS) -> str:
    """The whole self-contained HTML page as a string."""
    title = title or "Inside a character model"
    data = page_data(insp, levels, model_card, history, title)
    parts = {"NONCE": secrets.token_urlsafe(16), "TITLE": html.escape(title),
             "CSS": renderer_css(), "DATA": script_json(data), "JS": renderer_js()}
    # One pass, so nothing substituted (the data) is searched for placeholders again.
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("page.html"))


def render_fragment(insp: Inspection, max_chars: int = FRAGMENT_CHARS,
                    levels: int = LEVELS) -> str:
    """A <div> with its own style, script and data, for a notebook cell (`_repr_html_`); the
    first `max_chars` characters only, so a notebook stays small."""
    data = page_data(insp, levels, max_chars=max_chars)
    data["title"] = None
    root = f"sr-inside-{next(_counter)}-{secrets.token_hex(3)}"
    note = ""
    if len(insp.ids) > max_chars:
        note = (f"<p style='color:#5c6670'>The first {max_chars:,} of {len(insp.ids):,} "
                "characters; write the whole with scratchrnn.inside.visualize.write_page.</p>")
    return (f"<div class='sr-inside-fragment'><style>{renderer_css()}</style>{note}"
            f"<div id='{root}'></div>"
            f"<script type='application/json' id='{root}-data'>{script_json(data)}</script>"
            f"<script>{renderer_js()}\nScratchRNNInside.render(document.getElementById("
            f"'{root}'), JSON.parse(document.getElementById('{root}-data').textContent), "
            "{header: false});</script></div>")


def _ours(path: Path) -> bool:
    """A page this command wrote: our marker near the top of the file."""
    try:
        with open_regular(path, "page", "") as f:
            return MARKER in f.read(300).decode("utf-8", "replace")
    except (OSError, ScratchRNNError):
        return False


def check_out(out: Path) -> None:
    """The common ownership rule (owner.check_output): a new path, or a page written here."""
    check_output(out, "page", ours=_ours)


def write_page(insp: Inspection, out, model_card: dict | None = None,
               history: list | None = None, title: str | None = None,
               levels: int = LEVELS) -> Path:
    """Write the page atomically to `out`, which must be new or a page written here before."""
    out = Path(out)
    check_out(out)
    page = render_page(insp, model_card, history, title, levels)
    make_dir(out.parent, "pass a writable `out`")
    atomic_write_bytes(out, page.encode("utf-8"), "page")
    return out
