"""Checks shared by the exporters and the importer: optional dependencies,
what a file format can hold, output paths."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScratchRNNError
from ..fsutil import make_dir, open_regular
from ..nn.model import CharRNN
from ..store.owner import check_output

FORMAT = "scratchrnn-torch-1"  # the `format` metadata of the files written here
HTML_MARKER = "<!-- scratchrnn generate page: written by 'scratchrnn export' as html"


def need(module: str):
    """Import an optional dependency, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ScratchRNNError(f"this needs the {top} package, which is not installed; "
                              "pip install 'scratchrnn[export]'") from None


def check_exportable(model: CharRNN) -> None:
    """Refuse what the standard modules cannot compute: a layer-normalised cell (cells_ln.py)
    has no nn.GRU or ONNX GRU equivalent, and an export without it would be another model."""
    if model.config.layer_norm:
        raise ScratchRNNError("cannot export a layer-normalised model (`layer_norm`): PyTorch's "
                              "nn.GRU and ONNX's GRU have no layer normalisation; sample, "
                              "evaluate and visualize it with scratchrnn itself")


def _ours(path: Path, fmt: str) -> bool:
    """Whether `path` is an earlier export of ours (which an export may replace)."""
    onnx = need("onnx") if fmt == "onnx" else None
    try:
        if fmt == "html":  # our marker near the top, as the visualize page's
            with open_regular(path, "export", "") as f:
                return HTML_MARKER in f.read(300).decode("utf-8", "replace")
        if fmt == "torch":
            with open_regular(path, "export", "") as f:
                n = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(n)) if 0 < n < 1 << 24 else {}
            return header.get("__metadata__", {}).get("format") == FORMAT
        return onnx.load(str(path), load_external_data=False).producer_name == "scratchrnn"
    except Exception:  # unreadable, not JSON, not protobuf: in any case not ours
        return False


def check_out(path: Path, fmt: str) -> Path:
    """The export target, through the common ownership check: a new path, or an earlier export
    of the same format (a command writes only files it owns); its folder is created."""
    path = check_output(path, f"{fmt} export", ours=lambda p: _ours(p, fmt))
    make_dir(path.parent, "pass a writable `out`")
    return path
