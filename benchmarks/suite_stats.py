"""Aggregation for the memory suite: per-run curve summaries and across-seed intervals.

A curve is a list of ``(frames, mean_return)`` points in increasing frame order (the trainer's
``charts/mean_return_100``: the mean return of the last 100 finished episodes).
"""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95% Student-t quantiles t_{0.975, dof} for dof 1..30 (above 30 the normal 1.96 is close).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)


def t975(dof: int) -> float:
    if dof < 1:
        raise ValueError(f"an interval needs at least 2 values, got dof {dof}")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_interval(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (``nan`` half-width for a single value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan
    return mean, t975(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))


def frames_to_threshold(curve, threshold: float) -> int | None:
    """The first frame count at which the curve reaches ``threshold``; ``None`` if it never does."""
    for frames, value in curve:
        if value >= threshold:
            return int(frames)
    return None


def area_under_curve(curve, total_frames: int) -> float:
    """Mean of the curve over ``[0, total_frames]``: trapezoids between points, the first value held
    back to frame 0 and the last held to ``total_frames`` (1.0 = at 1.0 from the start)."""
    if not curve:
        return math.nan
    frames = np.array([0.0] + [f for f, _ in curve] + [float(total_frames)])
    values = np.array([curve[0][1]] + [v for _, v in curve] + [curve[-1][1]])
    keep = frames <= total_frames
    frames, values = frames[keep], values[keep]
    return float(np.sum((frames[1:] - frames[:-1]) * (values[1:] + values[:-1]) / 2) / total_frames)


def final_value(curve) -> float:
    return float(curve[-1][1]) if curve else math.nan


def curve_band(curves, total_frames: int, points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves of several seeds on one grid of ``points`` frame counts: ``(grid, mean, half_width)``,
    each seed interpolated linearly and held flat outside its own range."""
    grid = np.linspace(0, total_frames, points)
    stacked = np.stack([np.interp(grid, [f for f, _ in c], [v for _, v in c]) for c in curves])
    mean = stacked.mean(0)
    if len(curves) < 2:
        return grid, mean, np.full_like(mean, np.nan)
    half = t975(len(curves) - 1) * stacked.std(0, ddof=1) / math.sqrt(len(curves))
    return grid, mean, half


def summarize_runs(runs: list[dict], threshold: float, total_frames: int) -> dict:
    """One core on one task over seeds: ``final`` and ``auc`` (mean, half-width), ``reached``
    (seeds that reached the threshold / seeds), ``frames_to_threshold`` (median over the seeds that
    reached it, or ``None``), ``success`` (mean, half-width of the final success rates, or ``None``
    unless every run has a ``success_curve``)."""
    curves = [r["curve"] for r in runs]
    reached = [f for f in (frames_to_threshold(c, threshold) for c in curves) if f is not None]
    return {
        "seeds": len(runs),
        "final": mean_interval([final_value(c) for c in curves]),
        "auc": mean_interval([area_under_curve(c, total_frames) for c in curves]),
        "reached": len(reached),
        "frames_to_threshold": float(np.median(reached)) if reached else None,
        "success": (mean_interval([final_value(r["success_curve"]) for r in runs])
                    if all(r.get("success_curve") for r in runs) else None),
    }
