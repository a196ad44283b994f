"""Centred finite differences, float64: the reference every backward pass is checked against."""

import numpy as np


def numerical_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d x by centred differences, perturbing x in place."""
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * eps)
    return grad


def assert_close(analytic, numeric, name="", rtol=1e-5, atol=1e-8):
    analytic = np.asarray(analytic, np.float64)
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    worst = np.max(err - bound) if err.size else -1
    assert worst <= 0, (f"{name}: max abs error {err.max():.3g} "
                        f"(analytic {analytic.ravel()[:4]}, numeric {numeric.ravel()[:4]})")
    # a check that cannot fail would pass with an all-zero gradient too: insist on signal
    assert np.abs(numeric).max() > 1e-6, f"{name}: numeric gradient is all ~0"
