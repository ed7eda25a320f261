"""Small statistics helpers for the tests (no scipy dependency)."""

from __future__ import annotations

import numpy as np


def ks_uniform(samples, low: float, high: float) -> float:
    """Kolmogorov-Smirnov distance between ``samples`` and U[low, high]."""
    x = np.sort((np.asarray(samples, dtype=np.float64) - low) / (high - low))
    n = x.size
    ranks = np.arange(1, n + 1) / n
    return float(max(np.max(ranks - x), np.max(x - (ranks - 1.0 / n))))


def ks_critical(n: int, alpha: float = 1e-3) -> float:
    """Asymptotic one-sample KS critical value: reject uniformity above it at level ``alpha``."""
    return float(np.sqrt(-0.5 * np.log(alpha / 2) / n))
