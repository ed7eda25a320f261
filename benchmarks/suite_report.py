"""The memory suite's report: a generated section of ``docs/RESULTS.md`` plus plots in ``docs/img/``.

Only the text between ``<!-- memory-suite:NAME:begin -->`` and ``<!-- memory-suite:NAME:end -->`` is
replaced (the section is appended when the markers are missing), so hand-written analysis elsewhere on
the page stays. Every number in the section is computed from the result files. A module, not a
command: ``python benchmarks/memory_suite.py SUITE --report`` writes the report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

if __name__ == "__main__":  # before the imports, which need the repository root on the path
    raise SystemExit("suite_report.py is a module: python benchmarks/memory_suite.py SUITE --report "
                     "writes the report")

import numpy as np  # noqa: E402

from benchmarks import suite_stats  # noqa: E402

GATE_CORES = ("lstm", "ur_lstm")


def load_results(results: Path, suite_name: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / suite_name).glob("*/*/seed*.json"))]


def _pm(interval: tuple[float, float, float]) -> str:
    mean, low, high = interval
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if math.isnan(low) else f"{mean:.3f} [{low:.2f}, {high:.2f}]"


def _frames(value) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"


def score_name(runs: list[dict]) -> str:
    """What one task's runs are judged by; "score" before any has finished (only the records tell)."""
    return ("success rate" if suite_stats.gives_verdicts(runs) else "return") if runs else "score"


def task_table(task: str, spec: dict, runs: list[dict], cores: list[str], not_run_here=()) -> list[str]:
    """One row per core, judged by the success rate where the task's runs report verdicts (else the
    return: ``suite_stats.scored_curve``); a core of ``not_run_here`` without runs is marked so."""
    final = f"final {score_name(runs)}"
    lines = [f"| core | seeds | {final} | reached {spec['threshold']} | frames to {spec['threshold']} "
             "(median of those that reached it) | held after (share of windows) | area under the curve |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for core in cores:
        mine = [r for r in runs if r["core"] == core]
        if not mine:
            lines.append(f"| {core} | 0 | {'not run here' if core in not_run_here else 'not run'} | | | | |")
            continue
        s = suite_stats.summarize_runs(mine, spec["threshold"], spec["total_frames"])
        stuck = f" ({s['stages_only']} never left the curriculum's stages)" if s["stages_only"] else ""
        lines.append(f"| {core} | {s['seeds']} | {_pm(s['final'])}{stuck} | {s['reached']}/{s['seeds']} | "
                     f"{_frames(s['frames_to_threshold'])} | {_pm(s['held'])} | {_pm(s['auc'])} |")
    return lines


def claims_table(suite: dict, runs: list[dict]) -> list[str]:
    """The suite's ``claims`` (each a core that should learn faster than a baseline core), one row per
    claim and one column per task with finished runs, each cell ``suite_stats.compare_cores``'s verdict
    and its evidence, or **not run here** where the suite's ``not_run_here`` leaves a core of the claim
    short of its seeds; tasks where nothing has run are named below the table, and so are the claims
    not run here on them."""
    seeds = len(suite["seeds"])
    claims = suite.get("claims") or []
    ran = [t for t in suite["tasks"] if any(r["task"] == t for r in runs)]

    def unrun(claim: dict, task: str) -> bool:
        return any(suite_stats.not_run_here(suite, task, claim[k], runs) for k in ("core", "baseline"))

    lines = ["| claim | " + " | ".join(ran) + " |", "|---|" + "---|" * len(ran)]
    for claim in claims:
        cells = []
        for task in ran:
            spec = suite["tasks"][task]
            mine, base = ([r for r in runs if r["task"] == task and r["core"] == claim[k]]
                          for k in ("core", "baseline"))
            verdict, evidence = suite_stats.compare_cores(mine, base, spec["threshold"], spec["total_frames"],
                                                          seeds)
            cells.append("**not run here**" if unrun(claim, task) else f"**{verdict}** ({evidence})")
        lines.append(f"| {claim['claim']}: `{claim['core']}` over `{claim['baseline']}` | " + " | ".join(cells)
                     + " |")
    missing = [t for t in suite["tasks"] if t not in ran]
    groups: dict[tuple, list[str]] = {}  # the claims not run here -> the tasks without runs they concern
    for task in missing:
        names = tuple(f"`{c['core']}` over `{c['baseline']}`" for c in claims if unrun(c, task))
        if names:
            groups.setdefault(("every claim",) if len(names) == len(claims) else names, []).append(task)
    open_tasks = [t for t in missing if not claims or not all(unrun(c, t) for c in claims)]
    if open_tasks:
        lines += ["", f"Not run yet, so open for every claim{' not named below' if groups else ''}: "
                  f"{', '.join(open_tasks)}."]
    if groups:
        lines += ["", "Not run on this project's machine (each task's section says why): "
                  + "; ".join(f"{', '.join(names)} on {', '.join(tasks)}" for names, tasks in groups.items())
                  + "."]
    return lines


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot_task(path: Path, task: str, spec: dict, runs: list[dict], cores: list[str]) -> None:
    fig, ax = _pyplot().subplots(figsize=(6, 3.6))
    for core in cores:
        curves = [suite_stats.scored_curve(r) for r in runs if r["core"] == core and r["curve"]]
        if not curves:
            continue
        grid, seeds = suite_stats.curves_on_grid(curves, spec["total_frames"])
        (line,) = ax.plot(grid, seeds.mean(0), label=f"{core} (mean of {len(curves)})")
        for seed in seeds:  # each seed's own curve: a band over 3 seeds would leave the possible range
            ax.plot(grid, seed, color=line.get_color(), lw=0.6, alpha=0.45)
    ax.axhline(spec["threshold"], color="grey", lw=0.8, ls="--")
    score = "success rate" if suite_stats.gives_verdicts(runs) else "mean return"
    ax.set(title=task, xlabel="frames", ylabel=f"{score} (last 100 episodes)")
    ax.legend(fontsize=7)
    _save(fig, path)


def _cdf(runs: list[dict], gate: str, which: int):
    """Cumulative distribution of a gate over units, all seeds pooled, at snapshot ``which`` (0 the
    first, -1 the last): ``(bucket upper limits, fraction of units at or below, median frames)``.
    A CDF uses TensorBoard's own (uneven) bucket limits, so nothing is re-binned."""
    pairs, frames = [], []
    for run in runs:
        snaps = run.get("gates", {}).get(gate)
        if not snaps:
            continue
        snap = snaps[which]
        frames.append(snap["frames"])
        pairs += [(min(limit, 1.0), count) for limit, count in zip(snap["limits"], snap["counts"], strict=True)]
    if not pairs:
        return None
    pairs.sort()
    limits = np.array([p[0] for p in pairs])
    cumulative = np.cumsum([p[1] for p in pairs])
    return limits, cumulative / max(cumulative[-1], 1), int(np.median(frames))


def _scalar_at(runs: list[dict], name: str, which: int) -> float:
    """A logged gate statistic at the first (``which=0``) or last log, averaged over seeds."""
    values = [run["gates"][name][which][1] for run in runs if run.get("gates", {}).get(name)]
    return float(np.mean(values)) if values else math.nan


def gate_section(path: Path, task: str, runs: list[dict]) -> list[str]:
    """Forget and effective gate distributions of lstm and ur_lstm, early and late, plus a table."""
    cores = [c for c in GATE_CORES if any(r["core"] == c and r.get("gates") for r in runs)]
    if not cores:
        return []
    fig, axes = _pyplot().subplots(1, len(cores), figsize=(5 * len(cores), 3.2), squeeze=False)
    rows = ["| core | gate | when (frames, median over seeds) | mean | fraction above 0.99 |",
            "|---|---|---:|---:|---:|"]
    for ax, core in zip(axes[0], cores, strict=True):
        mine = [r for r in runs if r["core"] == core]
        for gate in ("forget", "effective"):
            for which, style in ((0, ":"), (-1, "-")):
                cdf = _cdf(mine, gate, which)
                if cdf is None:
                    continue
                limits, fraction, frames = cdf
                ax.step(limits, fraction, style, where="post", label=f"{gate} @ {_frames(frames)}")
                mean = _scalar_at(mine, f"{gate}_mean", which)
                above = _scalar_at(mine, f"{gate}_above_0.99", which)
                rows.append(f"| {core} | {gate} | {_frames(frames)} | {mean:.3f} | {above:.4f} |")
        ax.set(title=f"{core} on {task}", xlabel="gate activation", ylabel="fraction of units at or below",
               xlim=(0, 1))
        ax.legend(fontsize=7)
    _save(fig, path)
    return rows


def time_section(suite: dict, runs: list[dict]) -> list[str]:
    """How long the suite takes: each core's cells of a task at the median rate of its finished runs
    there, a core with none at the slowest measured core's."""
    cost = suite_stats.suite_cost(suite, runs)
    skipped = sum(t["not_run_here"] for t in cost["tasks"].values())
    lines = ["| task | cells finished | cells left | " + ("cells not run here | " if skipped else "")
             + "frames/s per run (median) | hours per cell (fastest-slowest core) | hours left |",
             "|---|---:|---:|" + ("---:|" if skipped else "") + "---:|---:|---:|"]
    for task, t in cost["tasks"].items():
        rate, per_cell, left = "-", "-", "-"
        if t["rate"] is not None:
            fast, slow = (f"{h:.2f}" for h in (min(t["core_hours"].values()), max(t["core_hours"].values())))
            rate, left = f"{t['rate']:,.0f}", f"{t['hours_left']:.1f}"
            per_cell = fast if fast == slow else f"{fast}-{slow}"
        lines.append(f"| {task} | {t['finished']} | {t['left']} | "
                     + (f"{t['not_run_here']} | " if skipped else "") + f"{rate} | {per_cell} | {left} |")
    hours = lambda h: f"{h:.1f}" if h < 10 else f"{h:.0f}"  # noqa: E731
    text = f"The finished cells took about {hours(cost['hours_done'])} run-hours"
    if not any(t["left"] for t in cost["tasks"].values()):
        text += "; every cell has run" + (" but those not run here" if skipped else "")
    elif cost["hours_left"]:
        text += (f"; the cells left of tasks with a finished run need about {hours(cost['hours_left'])} more "
                 "(each core's at its own rate there, a core not run there yet at the slowest core's)")
    if cost["frames_unmeasured"]:
        guess = ""
        if cost["rates"]:
            slow, fast = (cost["frames_unmeasured"] / rate / 3600 for rate in cost["rates"])
            guess = (f" (about {hours(fast)} to {hours(slow)} run-hours at the fastest and the slowest "
                     "measured task's rate; only a guess, their envs and unrolls differ)")
        text += f", and the tasks no run has finished {cost['frames_unmeasured'] / 1e9:.2f}G frames{guess}"
    if skipped:
        text += (f"; not counted: the {skipped} cells not run on this project's machine (the suite's "
                 "`not_run_here`, each task's section says why)")
    return ["Each run's rate is its frames over its wall time as it ran (on the machines named above, "
            "with the `--threads` its command names; a 2-CPU machine running two runs of one thread at a "
            "time takes about half the run-hours). " + text + ".", "", *lines]


def core_flags_note(suite: dict) -> str:
    """The suite's per-core flags as a sentence (empty without any): they change what a cell ran."""
    flags = suite.get("core_flags") or {}
    if not flags:
        return ""
    return " Per core: " + "; ".join(f"`{core}` with {json.dumps(f)}" for core, f in flags.items()) + "."


def write_report(suite_name: str, suite: dict, results: Path, page: Path, images: Path, command: str) -> None:
    runs = load_results(results, suite_name)
    cores = list(suite["cores"])
    machines = sorted({r["machine"] for r in runs})
    expected = len(suite["tasks"]) * len(cores) * len(suite["seeds"])
    declared = sum(suite_stats.cells_not_run_here(suite, t, runs) for t in suite["tasks"])
    declared_note = (f"; {declared} more are not run on this project's machine (the suite's `not_run_here`; "
                     "each task's section says which and why)" if declared else "")
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), page.parent.resolve())).as_posix()  # noqa: E731
    out = [f"## Memory suite `{suite_name}`", "",
           f"Runs: `python benchmarks/memory_suite.py {suite_name}`; this section: `{command}`. "
           f"{len(runs)} of {expected} runs finished{declared_note}. Machine: {'; '.join(machines) or '-'}. "
           f"Raw per-run results: `{rel(results / suite_name)}/` (format in `benchmarks/memory_suite.py`). "
           "Each run is judged by the success rate of its last 100 training episodes where the task gives "
           "a verdict (visual match's return also counts its apples), else by their mean return; the final "
           "value is that at the end of the budget; brackets hold a 95% percentile-bootstrap interval of "
           "the mean over seeds (it stays inside the "
           "range of the seeds' values; with 3 seeds it is narrow, so the plots draw each seed's curve, "
           "thin, beside the mean); \"held after\" is the share of a run's logged windows after its first at "
           "the threshold that stay at or above it (over the seeds that reached it: how well a core keeps "
           "what it learned); the area under the curve is the curve's mean over the budget. Where a "
           "preset's delay curriculum trains shorter delays first, the curves are the task's own, from its "
           "first window; the stages' frames count 0 in the area and a run that never left them counts 0 "
           "(the final value is then over the seeds that reached the task).", ""]
    if suite.get("claims"):
        out += ["### Claims", "",
                "Generated from the result files: for each claim, does the first core learn faster than "
                "the second (area under the curve, bootstrap intervals over seeds; "
                "`benchmarks/suite_stats.py`, `compare_cores`)? **holds**: its interval lies above the "
                "baseline's; **reversed**: below; **no difference**: they overlap, or the means differ by "
                f"less than {suite_stats.MIN_AUC_DIFFERENCE} (two points of success over the budget); "
                "**open**: a core has not run every seed, or no seed of either reached the threshold "
                "(with *ahead by area* or *behind by area* where the areas alone would have read "
                "**holds** or **reversed**: one core rose further from the floor than the other)"
                + ("; **not run here**: a core of the claim is among the cells the suite's `not_run_here` "
                   "leaves unrun on this project's machine" if suite.get("not_run_here") else "") + ".", "",
                *claims_table(suite, runs), ""]
    out += ["### Time", "", *time_section(suite, runs), ""]
    gate_task = None
    for task, spec in suite["tasks"].items():
        mine = [r for r in runs if r["task"] == task]
        options = spec.get("options") or {}
        score = score_name(mine)
        out += [f"### {task}", "",
                (f"Preset `{spec['config']}`" if spec.get("config") else "The program's defaults")
                + f"{' with ' + json.dumps(options) if options else ''}, "
                f"{spec['total_frames']:,} frames per run, solved at a {score} of {spec['threshold']}."
                + core_flags_note(suite), ""]
        reasons = {core: why for core in cores if (why := suite_stats.not_run_here(suite, task, core, mine))}
        out += task_table(task, spec, mine, cores, reasons)
        for why in dict.fromkeys(reasons.values()):
            out += ["", "Not run on this project's machine: "
                    + ", ".join(f"`{core}`" for core, w in reasons.items() if w == why) + f". Why: {why}"]
        if mine:
            image = images / f"{suite_name}_{task}.png"
            plot_task(image, task, spec, mine, cores)
            out += ["", f"![{task}]({rel(image)})"]
            if any(r.get("gates") for r in mine if r["core"] in GATE_CORES):
                gate_task = task
        out.append("")
    if gate_task is not None:
        image = images / f"{suite_name}_gates.png"
        rows = gate_section(image, gate_task, [r for r in runs if r["task"] == gate_task])
        out += ["### Gate saturation", "",
                f"Cumulative distributions of the forget gate and the effective forget gate (with the "
                f"refine gate applied; for `lstm` the two are the same gate) over all units at the first "
                f"step of a training batch, seeds pooled, early (dotted) and late (solid) in training, on "
                f"{gate_task}; a jump at the right edge is saturation. The table gives the logged mean "
                f"and fraction above 0.99 at the first and last log, averaged over seeds.", "", *rows, "",
                f"![gates]({rel(image)})", ""]
    begin, end = f"<!-- memory-suite:{suite_name}:begin -->", f"<!-- memory-suite:{suite_name}:end -->"
    block = "\n".join([begin, *out, end])
    text = page.read_text() if page.exists() else "# Results\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
