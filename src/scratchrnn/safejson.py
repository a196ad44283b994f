"""JSON that is JSON: Python's json writes float('nan') and float('inf') as NaN and Infinity,
which no strict parser reads. Every file and --json line scratchrnn writes goes through here:
non-finite numbers become null, and allow_nan=False makes any that slip through an error."""

from __future__ import annotations

import json
import math


def finite(obj):
    """`obj` with every non-finite float (at any depth) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
