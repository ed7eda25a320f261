"""Aggregation for the memory suite: per-run curve summaries and across-seed (bootstrap) intervals.

A curve is a list of ``(frames, value)`` points in increasing frame order: the trainer's
``charts/mean_return_100`` (the mean return of the last 100 finished episodes) or
``charts/success_rate_100``; ``scored_curve`` says which a run is judged by.
"""

from __future__ import annotations

import math

import numpy as np


def bootstrap_interval(values, level: float = 0.95, resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean over seeds and its percentile-bootstrap interval. Every resampled
    mean lies between the smallest and the largest value, so the interval stays inside the range the
    values come from (a 95% t-interval over 3 seeds of returns in [0, 1] reached 1.4). With 3 seeds it
    is narrow: read it with the per-seed curves. ``nan`` bounds for a single value."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(resamples, len(values)))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)


def frames_to_threshold(curve, threshold: float) -> int | None:
    """The first frame count at which the curve reaches ``threshold``; ``None`` if it never does."""
    for frames, value in curve:
        if value >= threshold:
            return int(frames)
    return None


def held_fraction(curve, threshold: float) -> float | None:
    """The share of the curve's points after the first at ``threshold`` that stay at or above it (how
    well a run kept what it learned; the points are windows of the last 100 episodes); ``None`` if the
    curve never reaches the threshold or ends there."""
    start = frames_to_threshold(curve, threshold)
    after = [value for frames, value in curve if start is not None and frames > start]
    return sum(value >= threshold for value in after) / len(after) if after else None


def area_under_curve(curve, total_frames: int, task_from: int | None = 0) -> float:
    """Mean of the curve over ``[0, total_frames]``: trapezoids between points, the last value held to
    ``total_frames`` (1.0 = at 1.0 from the start). ``task_from``: where a delay curriculum's stages
    came first, the frame of the task's first window: the frames before it count 0 (the task not yet
    reached; a lower bound, the same for every core); ``None``: the task never reached, 0. With 0 (no
    stages) the first value is held back to frame 0."""
    if task_from is None:
        return 0.0
    if not curve:
        return math.nan
    first = [[0.0, 0.0], [float(task_from), 0.0]] if task_from > 0 else [[0.0, curve[0][1]]]
    points = first + [list(p) for p in curve] + [[float(total_frames), curve[-1][1]]]
    frames = np.array([f for f, _ in points], dtype=float)
    values = np.array([v for _, v in points], dtype=float)
    keep = frames <= total_frames
    frames, values = frames[keep], values[keep]
    return float(np.sum((frames[1:] - frames[:-1]) * (values[1:] + values[:-1]) / 2) / total_frames)


def final_value(curve) -> float:
    return float(curve[-1][1]) if curve else math.nan


def curves_on_grid(curves, total_frames: int, points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several seeds on one grid of ``points`` frame counts: ``(grid, [seeds, points])``,
    each seed interpolated linearly and held flat outside its own range."""
    grid = np.linspace(0, total_frames, points)
    return grid, np.stack([np.interp(grid, [f for f, _ in c], [v for _, v in c]) for c in curves])


def scored_curve(run: dict) -> list:
    """The curve a run is judged by: its success rate where the task gives verdicts (visual match's
    return also counts the apples of its delay phase, so a return of 0.9 says nothing of the
    recall), else its mean return."""
    return run.get("success_curve") or run["curve"]


def gives_verdicts(runs: list[dict]) -> bool:
    """Are these runs (one task) judged by a success rate? Yes where any has a ``success_curve``, or
    ``verdicts`` (a delay curriculum whose stages gave verdicts: a task never reached still does)."""
    return any(r.get("success_curve") or r.get("verdicts") for r in runs)


def summarize_runs(runs: list[dict], threshold: float, total_frames: int) -> dict:
    """One core on one task over seeds, each run judged by its ``scored_curve``: ``final``
    (``bootstrap_interval``: mean, low, high, over the seeds that reached the task; all ``nan`` if
    none did), ``auc`` (the same over every seed; a run's
    ``task_from`` counts its curriculum's stages as 0, ``area_under_curve``), ``reached`` (seeds that
    reached the threshold), ``stages_only`` (seeds whose delay curriculum never reached the task:
    ``task_from`` None), ``frames_to_threshold`` (median over the seeds that reached it, or
    ``None``), ``held`` (``held_fraction`` over the seeds that reached it, as ``final``). Where the runs
    give verdicts ``final`` is their success rate (``gives_verdicts``)."""
    at_task = [r for r in runs if r["curve"]]
    reached = [f for f in (frames_to_threshold(scored_curve(r), threshold) for r in at_task) if f is not None]
    held = [h for h in (held_fraction(scored_curve(r), threshold) for r in at_task) if h is not None]
    nothing = (math.nan, math.nan, math.nan)
    return {
        "seeds": len(runs),
        "final": bootstrap_interval([final_value(scored_curve(r)) for r in at_task]) if at_task else nothing,
        "auc": bootstrap_interval([area_under_curve(scored_curve(r), total_frames, r.get("task_from", 0))
                                   for r in runs]),
        "reached": len(reached),
        "stages_only": len(runs) - len(at_task),
        "frames_to_threshold": float(np.median(reached)) if reached else None,
        "held": bootstrap_interval(held) if held else nothing,
    }


#: The smallest difference of the mean areas under the curve that ``compare_cores`` calls a difference:
#: 0.02 is two points of success rate over the whole budget. With 3 seeds the bootstrap intervals can
#: separate on less (2026-12-06: ur_gru's 0.813 [0.81, 0.82] against gru's 0.822 on Passive Visual Match
#: at delay 60, where every seed of both passed in its first window at the task).
MIN_AUC_DIFFERENCE = 0.02


def compare_cores(runs: list[dict], baseline_runs: list[dict], threshold: float, total_frames: int,
                  seeds: int) -> tuple[str, str]:
    """Does a core learn faster than a baseline core on one task? ``(verdict, evidence)``.

    The verdict compares the area under the curve (speed and final level in one number) by the
    bootstrap intervals of ``bootstrap_interval``: ``holds`` when the core's interval lies above the
    baseline's, ``reversed`` when below, ``no difference`` when they overlap or the means differ by less
    than ``MIN_AUC_DIFFERENCE`` (the evidence then says the intervals are apart); ``open: not run`` until
    both have ``seeds`` finished runs, ``open: neither reached the threshold`` when no seed of either
    reached it (a core may rise from the floor without reaching it, but the task then does not say
    which one solves it faster), with ``; ahead by area`` or ``; behind by area`` added where the areas
    would otherwise have read ``holds`` or ``reversed`` (one core rose further, or sooner, than the
    other). Overlapping intervals over 3 seeds are a conservative test: a real but small difference
    reads as ``no difference``.
    """
    if len(runs) < seeds or len(baseline_runs) < seeds:
        return "open: not run", f"{len(runs)} and {len(baseline_runs)} of {seeds} seeds finished"
    mine = summarize_runs(runs, threshold, total_frames)
    base = summarize_runs(baseline_runs, threshold, total_frames)
    evidence = (f"AUC {mine['auc'][0]:.2f} [{mine['auc'][1]:.2f}, {mine['auc'][2]:.2f}] vs "
                f"{base['auc'][0]:.2f} [{base['auc'][1]:.2f}, {base['auc'][2]:.2f}]; reached "
                f"{mine['reached']}/{mine['seeds']} vs {base['reached']}/{base['seeds']}")
    above, below = mine["auc"][1] > base["auc"][2], base["auc"][1] > mine["auc"][2]
    too_close = abs(mine["auc"][0] - base["auc"][0]) < MIN_AUC_DIFFERENCE
    if mine["reached"] == 0 and base["reached"] == 0:
        side = "" if too_close else "; ahead by area" if above else "; behind by area" if below else ""
        return "open: neither reached the threshold" + side, evidence
    if (above or below) and too_close:
        return "no difference", evidence + f"; the intervals are apart by less than {MIN_AUC_DIFFERENCE}"
    if above:
        return "holds", evidence
    if below:
        return "reversed", evidence
    return "no difference", evidence


def training_rate(run: dict) -> float | None:
    """Frames per second of wall time of the invocation that finished ``run`` (frames trained since it
    resumed over its ``wall_s``); ``None`` without a positive time."""
    frames = (run["curve"][-1][0] if run["curve"] else run["total_frames"]) - run.get("resumed_from", 0)
    return frames / run["wall_s"] if run.get("wall_s", 0) > 0 and frames > 0 else None


def not_run_here(suite: dict, task: str, core: str, runs: list[dict] | None = None) -> str | None:
    """Why the suite's ``not_run_here`` entries leave ``core``'s cells of ``task`` unrun on the
    project's machine (the first entry naming both; ``cores: all`` names every core), or ``None``.
    Given the finished ``runs`` (any tasks and cores), ``None`` too once the core has run every seed of
    the task: result files of a declared cell, run elsewhere, count as usual."""
    for entry in suite.get("not_run_here") or []:
        if task in entry["tasks"] and (entry["cores"] == "all" or core in entry["cores"]):
            if runs is not None and runs_of(runs, task, core) >= len(suite["seeds"]):
                return None
            return entry["reason"]
    return None


def runs_of(runs: list[dict], task: str, core: str) -> int:
    """How many of the finished ``runs`` are ``core``'s on ``task``."""
    return sum(r.get("task") == task and r.get("core") == core for r in runs)


def cells_not_run_here(suite: dict, task: str, runs: list[dict]) -> int:
    """How many of ``task``'s cells ``not_run_here`` leaves unrun that have no result (a result file of
    such a cell, where one was run elsewhere, counts as usual); ``runs`` are the finished runs."""
    seeds = len(suite["seeds"])
    return sum(seeds - runs_of(runs, task, core)
               for core in suite["cores"] if not_run_here(suite, task, core, runs))


def suite_cost(suite: dict, runs: list[dict]) -> dict:
    """How long the suite's cells take, from the finished runs' own rates. Per task: ``finished``,
    ``left`` and ``not_run_here`` (cells; those of ``cells_not_run_here`` are not left),
    ``rate`` (median ``training_rate`` of its finished runs, or ``None``),
    ``core_hours`` (hours per cell of each core with a finished run, at its own median rate) and
    ``hours_left`` (its cells left: each core's at its own rate, a core with no run yet at the slowest
    measured core's, so a fast memoryless core does not shorten the gated cores' time; ``None``
    without a rate). Over the suite: ``rates`` (the slowest and the fastest task's rate, or ``None``),
    ``hours_done`` (the finished cells' budgets at their cores' rates), ``hours_left`` (the cells
    left of tasks with a rate), ``frames_unmeasured`` (the frames left of tasks without one)."""
    seeds = len(suite["seeds"])
    tasks, done, left, unmeasured = {}, 0.0, 0.0, 0
    for task, spec in suite["tasks"].items():
        mine = [r for r in runs if r["task"] == task]
        per_core: dict[str, list[float]] = {}
        for run in mine:
            if run_rate := training_rate(run):
                per_core.setdefault(run.get("core"), []).append(run_rate)
        rates = [r for core_rates in per_core.values() for r in core_rates]
        rate = float(np.median(rates)) if rates else None
        core_hours = {core: spec["total_frames"] / float(np.median(r)) / 3600 for core, r in per_core.items()}
        unrun = {core: max(seeds - runs_of(mine, task, core), 0) for core in suite["cores"]
                 if not not_run_here(suite, task, core, mine)}
        remaining, task_left = sum(unrun.values()), None
        if rate:
            slowest = max(core_hours.values())
            done += sum(core_hours.get(r.get("core"), slowest) for r in mine)
            task_left = sum(n * core_hours.get(core, slowest) for core, n in unrun.items())
            left += task_left
        else:
            unmeasured += remaining * spec["total_frames"]
        tasks[task] = {"finished": len(mine), "left": remaining,
                       "not_run_here": cells_not_run_here(suite, task, mine), "rate": rate,
                       "core_hours": core_hours, "hours_left": task_left}
    measured = [t["rate"] for t in tasks.values() if t["rate"]]
    return {"tasks": tasks, "rates": (min(measured), max(measured)) if measured else None,
            "hours_done": done, "hours_left": left, "frames_unmeasured": unmeasured}
