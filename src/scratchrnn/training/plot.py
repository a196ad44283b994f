"""The loss curve: training loss (per logged step) and validation loss against steps, drawn with
matplotlib's object API (no pyplot global state) and saved atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..data.text import printable
from ..errors import ScratchRNNError
from ..fsutil import atomic_write, open_regular

MAX_ROW_BYTES = 1 << 20  # a metrics row is ~200 bytes: a longer line is garbage, read in pieces


def read_metrics(path) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise ScratchRNNError(f"no metrics at {path}; pass a run folder written by "
                              "'scratchrnn train'")
    rows = []
    # bytes: one undecodable line must not cost the others; no line longer than a row can be
    with open_regular(path, "metrics", "pass a run folder written by 'scratchrnn train'") as f:
        for line in iter(lambda: f.readline(MAX_ROW_BYTES), b""):
            try:
                row = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                continue  # a line cut short by a crash: the rest is still worth plotting
            if isinstance(row, dict) and _number(row.get("step")):
                rows.append(row)
    return rows


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def plot_history(rows: list[dict], path, title: str = "") -> Path:
    # start-up time: only plotting loads matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(rows, list | tuple):
        raise ScratchRNNError(f"plot_history needs a list of metric rows (read_metrics), got "
                              f"{type(rows).__name__}")
    rows = [r for r in rows if isinstance(r, dict) and _number(r.get("step"))]
    train = [(r["step"], r["train_loss"]) for r in rows if _number(r.get("train_loss"))]
    val = [(r["step"], r["val_loss"]) for r in rows if _number(r.get("val_loss"))]
    if not train and not val:
        raise ScratchRNNError("no losses logged yet; train for a few steps first")
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train, strict=True), label="train", color="tab:blue", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / character)")
    ax.set_title(printable(title) or "loss")  # a run folder's name may not be UTF-8
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png"), "plot")
    return path
