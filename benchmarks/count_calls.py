"""NumPy calls per time step in each cell's forward and backward pass, counted, not timed.

At one stream (B=1) a step's arrays are tiny and the time goes to the calls, so this count is
the number to drive down there. Every ufunc call (in-place operators and matmul included, since
those are ufuncs too) and every slice assignment made by cells.py is counted through an ndarray
subclass; a pass over T=1 and one over T=1+K steps differ by K steps' worth, so the work done
once per window (the weight-gradient product, preparing the first block) cancels out. Work
prepared per block of steps (cells.BLOCK_BYTES) is included, spread over its steps.

    python benchmarks/count_calls.py             # B=1 and B=64, H=256
"""

from __future__ import annotations

import argparse
import types

import numpy as np

from scratchrnn.nn import cells


class Counted(np.ndarray):
    ufuncs = 0
    copies = 0

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        Counted.ufuncs += 1
        plain = [x.view(np.ndarray) if isinstance(x, Counted) else x for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Counted) else o
                                  for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(Counted) if isinstance(result, np.ndarray) else result

    def __setitem__(self, key, value):
        Counted.copies += 1
        super().__setitem__(key, value)


def _made_counted(fn):
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        return result.view(Counted) if isinstance(result, np.ndarray) else result
    return wrapper


# cells.py sees this namespace as `np`: every array it creates is Counted, every ufunc real.
SHIM = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
for _name in ("empty", "empty_like", "zeros", "ones", "full", "array", "ascontiguousarray"):
    setattr(SHIM, _name, _made_counted(getattr(np, _name)))


def count(cell: str, T: int, B: int, H: int) -> tuple[int, int, int, int]:
    """(ufuncs, copies) of one forward pass, then of one backward pass, over T steps."""
    rng = np.random.default_rng(0)
    G = cells.GATES[cell]
    p = {"W_h": rng.normal(size=(H, G * H)).astype(np.float32).view(Counted) * 0.05}
    if cell == "gru":
        p["b_hn"] = np.zeros(H, np.float32).view(Counted)
    xproj = rng.normal(size=(T, B, G * H)).astype(np.float32).view(Counted)
    state = {k: np.zeros((B, H), np.float32).view(Counted) for k in cells.STATE_KEYS[cell]}
    dhs = rng.normal(size=(T, B, H)).astype(np.float32).view(Counted)
    Counted.ufuncs = Counted.copies = 0
    _, _, cache = cells.FORWARD[cell](xproj, state, p)
    fwd = (Counted.ufuncs, Counted.copies)
    Counted.ufuncs = Counted.copies = 0
    cells.BACKWARD[cell](dhs, None, cache)
    return (*fwd, Counted.ufuncs, Counted.copies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40, help="K: steps between the two passes")
    args = ap.parse_args()
    real_np, cells.np = cells.np, SHIM
    try:
        print(f"NumPy calls per time step (ufuncs + slice copies), H={args.hidden}")
        print(f"{'cell':5} {'B':>3} | {'forward':>14} | {'backward':>14}")
        for cell in ("rnn", "lstm", "gru"):
            for B in (1, 64):
                a = count(cell, 1, B, args.hidden)
                b = count(cell, 1 + args.steps, B, args.hidden)
                per = [(y - x) / args.steps for x, y in zip(a, b, strict=True)]
                print(f"{cell:5} {B:>3} | {per[0]:6.2f} + {per[1]:4.2f} cp | "
                      f"{per[2]:6.2f} + {per[3]:4.2f} cp")
    finally:
        cells.np = real_np


if __name__ == "__main__":
    main()
