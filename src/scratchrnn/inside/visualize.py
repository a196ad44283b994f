"""One self-contained HTML page showing an `Inspection`: the text coloured by any unit, the top-5
guesses under each character, the surprisal, the units found automatically, gate saturation
(Karpathy, Johnson & Fei-Fei 2016) and the run's loss curve and model card.

The page makes no network request: CSS, JS and data are inline, and a Content-Security-Policy
allows only its own script. The corpus text is untrusted, so the data travels as JSON inside
`<script type="application/json">` with < > & and U+2028/9 escaped, and the script builds the
DOM with textContent only. Activations travel quantised, deflated and in base 85, the state
predicted from its gates (pack.py): 4,000 characters of the default 2 x 256 GRU take 4.7 MB.
"""

from __future__ import annotations

import html
import itertools
import math
import re
import secrets
from importlib import resources
from pathlib import Path

import numpy as np

from ..data.sources import name_of
from ..data.text import printable
from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes, make_dir, open_regular
from ..nn.cells import SIGMOID
from ..safejson import dumps as json_dumps
from ..store.owner import check_output, default_output
from ..store.resume import run_corpus
from ..training.evaluation import held_out
from .inspection import PROPERTIES, Inspection
from .pack import STATE_LEVELS, decode_layer, encode_layer

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
        "chars": insp.vocab.chars,
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
    make_dir(out.parent, "pass a writable --out")
    atomic_write_bytes(out, page.encode("utf-8"), "page")
    return out


# ------------------------------------------------------------------------------ from a run

MAX_CHARS = 50_000  # about 25 MB of page: more than a browser shows comfortably


def model_card(ckpt) -> dict:
    """The facts a reader wants beside the picture, as label -> text."""
    from ..store.config import TrainConfig
    cfg, m, meta = TrainConfig.from_dict(ckpt.config), ckpt.model.config, ckpt.meta
    card = {"cell": m.cell.upper(), "layers": m.num_layers, "hidden units": m.hidden_size,
            "parameters": f"{ckpt.model.num_params():,}",
            "vocabulary": f"{len(ckpt.vocab)} characters ({cfg.vocab})",
            "corpus": (name_of(cfg.text) if cfg.text else
                       f"none recorded (imported from {name_of(meta['imported_from'])})"
                       if "imported_from" in meta and "corpus" not in meta
                       else "A Tale of Two Cities (pg98)"),
            "steps": f"{meta.get('step', 0):,}"}
    val = meta.get("best_val")
    vals = [r["val_loss"] for r in meta.get("history", []) if r.get("val_loss") is not None]
    if vals:
        val = vals[-1]
    if val is not None:
        card["validation loss"] = f"{val:.4f} nats/char ({val / math.log(2):.3f} bits/char)"
    secs = meta.get("elapsed_s")
    if secs is not None:
        card["training time"] = (f"{int(secs // 3600)}h {int(secs % 3600 // 60)}m" if secs >= 3600
                                 else f"{int(secs // 60)}m {int(secs % 60)}s")
    if cfg.ema:
        card["weights"] = f"moving average (ema {cfg.ema})"
    return card


def run_history(run_dir: Path, meta: dict, max_points: int = 2000) -> list:
    """[step, train loss, val loss] rows from metrics.jsonl (else the checkpoint's history)."""
    from ..training.plot import read_metrics
    try:
        rows = read_metrics(run_dir)
    except ScratchRNNError:
        rows = list(meta.get("history", []))
    rows = [r for r in rows if isinstance(r.get("step"), int | float)]
    every = max(1, len(rows) // max_points)
    keep = [r for i, r in enumerate(rows) if i % every == 0 or r.get("val_loss") is not None]

    def num(v):
        return round(float(v), 5) if isinstance(v, int | float) and math.isfinite(v) else None

    return [[r["step"], num(r.get("train_loss")), num(r.get("val_loss"))] for r in keep]


def visualize_run(run, text=None, split: str | None = None, chars: int = 4000,
                  out=None) -> Path:
    """`scratchrnn visualize`: inspect the first `chars` characters of a file or of the run's
    validation/test split and write the page (default RUN/inside.html)."""
    from ..store.checkpoint import load_checkpoint, resolve
    from .inspection import CONTEXT, inspect
    if not isinstance(chars, int) or isinstance(chars, bool) or not 2 <= chars <= MAX_CHARS:
        raise ScratchRNNError(f"--chars must be a whole number from 2 to {MAX_CHARS:,}, "
                              f"got {chars!r}")
    if text is not None and split is not None:
        raise ScratchRNNError("pass --text or --split, not both")
    if split not in (None, "val", "test"):
        raise ScratchRNNError(f"unknown --split {split!r}; choose val or test")
    path = resolve(run)
    run_dir = path.parent
    if out is not None:
        check_out(Path(out))  # before the checkpoint is read: a refused --out costs nothing
    ckpt = load_checkpoint(path)  # a path that is no checkpoint is the first thing to say
    out = Path(out) if out is not None else default_output(run_dir, "inside.html", "page")
    check_out(out)
    if text is not None:
        data = run_corpus(ckpt, text, whole=True).train
        source = name_of(text)
        before = None  # a file may be an excerpt: where it starts is read from its quotes
    else:
        split = split or "val"
        corpus = run_corpus(ckpt)
        data, _ = held_out(corpus, split)
        source = f"the {split} split of {corpus.name}"
        # A split starts wherever the cut fell, maybe inside a quotation: the text before it
        # says where (inside.properties).
        parts = [corpus.train] + ([corpus.val] if split == "test" else [])
        before = ckpt.vocab.decode(np.concatenate([p[-CONTEXT:] for p in parts])[-CONTEXT:])
    data = np.asarray(data[:chars])
    if len(data) < 2:
        raise ScratchRNNError(f"{source} has fewer than 2 characters; pass a longer --text")
    insp = inspect(ckpt.model, ckpt.vocab, ckpt.vocab.decode(data), clean=False, before=before)
    title = f"Inside {printable(run_dir.name)}: {len(data):,} characters of {source}"
    return write_page(insp, out, model_card(ckpt), run_history(run_dir, ckpt.meta), title)
