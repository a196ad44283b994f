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

import math
from pathlib import Path

import numpy as np

from ..data.sources import name_of
from ..data.text import printable
from ..data.vocab import UNKNOWN
from ..errors import ScratchRNNError
from ..limits import MAX_PAGE_CHARS
from ..store.checkpoint import load_checkpoint, resolve
from ..store.config import TrainConfig
from ..store.owner import default_output
from ..store.resume import run_corpus
from ..training.evaluation import held_out, unknown_characters
from ..training.plot import read_metrics
from .inspection import inspect_ids
from .page import check_out, write_page
from .units import CONTEXT

# ------------------------------------------------------------------------------ from a run



def vocabulary(vocab, cfg: TrainConfig) -> str:
    """The model card's line for a run's vocabulary, by what it holds."""
    if vocab.kind == "bytes":
        return "the 256 byte values of UTF-8 (bytes)"
    rare = (f"; seen fewer than {cfg.min_count} times: {UNKNOWN}"
            if UNKNOWN in vocab.chars and cfg.min_count > 1 else "")
    return f"{len(vocab):,} characters ({cfg.vocab}{rare})"


def model_card(ckpt) -> dict:
    """The facts a reader wants beside the picture, as label -> text."""
    cfg, m, meta = TrainConfig.from_dict(ckpt.config), ckpt.model.config, ckpt.meta
    card = {"cell": m.cell.upper(), "layers": m.num_layers, "hidden units": m.hidden_size,
            "parameters": f"{ckpt.model.num_params():,}",
            "vocabulary": vocabulary(ckpt.vocab, cfg),
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
    if not isinstance(chars, int) or isinstance(chars, bool) or not 2 <= chars <= MAX_PAGE_CHARS:
        raise ScratchRNNError(f"`chars` must be a whole number from 2 to {MAX_PAGE_CHARS:,}, "
                              f"got {chars!r}")
    if text is not None and split is not None:
        raise ScratchRNNError("pass `text` or `split`, not both")
    if split not in (None, "val", "test"):
        raise ScratchRNNError(f"unknown `split` {split!r}; choose val or test")
    path = resolve(run)
    run_dir = path.parent
    if out is not None:
        check_out(Path(out))  # before the checkpoint is read: a refused --out costs nothing
    ckpt = load_checkpoint(path)  # a path that is no checkpoint is the first thing to say
    if out is None:
        out = default_output(run_dir, "inside.html", "page")
        check_out(out)
    out = Path(out)
    if text is not None:
        # characters the model never saw are read as its unknown symbol: one line says so
        unknown_characters(text, ckpt.vocab, TrainConfig.from_dict(ckpt.config).encoding)
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
        raise ScratchRNNError(f"{source} has fewer than 2 characters; pass a longer `text`")
    # the ids as prepared: a bytes vocabulary's excerpt may cut a character at either end
    insp = inspect_ids(ckpt.model, ckpt.vocab, data, before=before)
    symbols = "bytes" if ckpt.vocab.kind == "bytes" else "characters"
    title = f"Inside {printable(run_dir.name)}: {len(data):,} {symbols} of {source}"
    return write_page(insp, out, model_card(ckpt), run_history(run_dir, ckpt.meta), title)
