"""The comparison suite: aggregation on curves with known answers, and a tiny grid end to end
(2 cores x 1 task x 2 seeds) with an interrupted cell that resumes, and the report."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import memory_suite, suite_report, suite_stats
from benchmarks.memory_suite import cells_of, load_suite, train_command
from benchmarks.suite_report import core_flags_note
from tests.processes import kill_group

ROOT = Path(__file__).resolve().parents[1]


def test_the_interval_stays_inside_the_range_of_the_values():
    """Returns 0, 1, 1 of three seeds: a 95% t-interval would reach 1.1 and below 0; the bootstrap
    interval holds the resampled means, between 0 and 1."""
    mean, low, high = suite_stats.bootstrap_interval([0.0, 1.0, 1.0])
    assert mean == pytest.approx(2 / 3) and 0.0 <= low < mean < high <= 1.0
    assert low == pytest.approx(0.0) and high == pytest.approx(1.0)  # 3 draws: all 0s and all 1s occur
    assert all(math.isnan(x) for x in suite_stats.bootstrap_interval([0.5])[1:])
    assert suite_stats.bootstrap_interval([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7, 0.7))
    assert suite_stats.bootstrap_interval([0.1, 0.4, 0.9]) == suite_stats.bootstrap_interval([0.1, 0.4, 0.9])


def test_frames_to_threshold_and_final_value():
    curve = [[100, 0.1], [200, 0.5], [300, 0.95], [400, 0.8]]
    assert suite_stats.frames_to_threshold(curve, 0.9) == 300
    assert suite_stats.frames_to_threshold(curve, 0.5) == 200
    assert suite_stats.frames_to_threshold(curve, 0.99) is None
    assert suite_stats.final_value(curve) == 0.8


def test_held_is_the_share_of_windows_after_the_first_at_the_threshold_that_stay_there():
    curve = [[100, 0.1], [200, 0.95], [300, 0.5], [400, 0.9], [500, 0.99], [600, 0.7]]
    assert suite_stats.held_fraction(curve, 0.9) == 0.5  # of 0.5, 0.9, 0.99, 0.7
    assert suite_stats.held_fraction(curve, 0.999) is None  # never reached
    assert suite_stats.held_fraction([[100, 0.2], [200, 0.95]], 0.9) is None  # nothing after it


def test_area_under_a_step_and_a_ramp():
    assert suite_stats.area_under_curve([[0, 1.0], [1000, 1.0]], 1000) == pytest.approx(1.0)
    assert suite_stats.area_under_curve([[0, 0.0], [1000, 1.0]], 1000) == pytest.approx(0.5)
    # held flat before the first point and after the last: 0.2 on [0, 500], 0.2 -> 0.6 ramp to 1000
    assert suite_stats.area_under_curve([[500, 0.2], [1000, 0.6]], 1000) == pytest.approx(0.3)
    # points past the budget are ignored
    assert suite_stats.area_under_curve([[0, 0.0], [1000, 0.0], [2000, 1.0]], 1000) == pytest.approx(0.0)


def test_with_a_curriculum_the_stages_count_zero_and_a_run_that_never_left_them_counts_zero():
    # the task reached at 400: 0 on [0, 400], then 1.0 to the end
    assert suite_stats.area_under_curve([[400, 1.0], [1000, 1.0]], 1000, task_from=400) == pytest.approx(0.6)
    assert suite_stats.area_under_curve([], 1000, task_from=None) == 0.0


def test_a_seed_stuck_in_the_stages_fails_the_summary_without_spoiling_the_final_return():
    runs = [{"curve": [[500, 1.0], [1000, 1.0]], "task_from": 500, "success_curve": [[500, 1.0], [1000, 1.0]]},
            {"curve": [], "task_from": None, "success_curve": []}]
    s = suite_stats.summarize_runs(runs, threshold=0.9, total_frames=1000)
    assert s["stages_only"] == 1 and s["reached"] == 1
    assert s["final"][0] == pytest.approx(1.0)
    assert s["auc"][0] == pytest.approx((0.5 + 0.0) / 2)
    nobody = suite_stats.summarize_runs(runs[1:], 0.9, 1000)
    assert math.isnan(nobody["final"][0]) and nobody["auc"][0] == 0.0


def test_a_verdict_task_whose_seeds_all_stayed_in_the_stages_is_still_labelled_by_its_success_rate():
    stuck = {"core": "ur_lstm", "curve": [], "task_from": None, "success_curve": [], "verdicts": True}
    assert suite_stats.gives_verdicts([stuck])
    assert not suite_stats.gives_verdicts([{**stuck, "verdicts": False}])
    spec = {"threshold": 0.9, "total_frames": 1000}
    table = "\n".join(suite_report.task_table("T", spec, [stuck], ["ur_lstm"]))
    assert "final success rate" in table and "1 never left the curriculum's stages" in table


def test_the_task_start_is_read_from_the_metrics(tmp_path):
    def metrics(*rows):
        (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return memory_suite.task_start(tmp_path)

    stage = {"frames": 100, "curriculum/mean_return_100": 0.3}
    assert metrics({"frames": 100, "charts/mean_return_100": 0.3}) == 0  # no stages
    assert metrics(stage, {"frames": 200, "charts/mean_return_100": 0.9}) == 200
    assert metrics(stage, {"frames": 200, "curriculum/mean_return_100": 0.5}) is None


def test_a_running_cells_progress_names_its_frames_stage_and_latest_window(tmp_path):
    assert memory_suite.cell_progress(tmp_path, 1000) == "starting"
    rows = [{"frames": 100, "curriculum/delay": 15, "curriculum/mean_return_100": 0.4,
             "curriculum/success_rate_100": 0.4}, {"frames": 200, "curriculum/delay": 60}]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"frames": 3'  # a line being written
    (tmp_path / "metrics.jsonl").write_text(text)
    assert memory_suite.cell_progress(tmp_path, 1000) == "0.00M of 0.00M frames, stage delay 15: success 0.40"
    rows.append({"frames": 2_500_000, "charts/mean_return_100": 0.93})  # at the task; no verdicts
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert memory_suite.cell_progress(tmp_path, 3_000_000) == "2.50M of 3.00M frames, the task: return 0.93"


def test_a_cell_that_never_reached_the_task_says_so_in_its_line():
    assert memory_suite.final_words({"final_return": None}) == " never left the curriculum's stages"
    assert memory_suite.final_words({"final_return": 0.25, "final_success": None}) == " final return 0.250"
    assert memory_suite.final_words({"final_return": 2.5, "final_success": 0.97}) == " final success 0.970"


def test_curves_on_one_grid():
    curves = [[[0, 0.0], [100, 1.0]], [[0, 0.0], [100, 0.0]], [[50, 0.5]]]
    grid, seeds = suite_stats.curves_on_grid(curves, 100, points=3)
    np.testing.assert_allclose(grid, [0, 50, 100])
    np.testing.assert_allclose(seeds, [[0.0, 0.5, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])


def test_summary_of_runs():
    runs = [{"curve": [[0, 0.0], [100, 1.0]]}, {"curve": [[0, 0.0], [50, 0.95], [100, 0.9]]},
            {"curve": [[0, 0.0], [100, 0.3]]}]
    s = suite_stats.summarize_runs(runs, threshold=0.9, total_frames=100)
    assert s["seeds"] == 3 and s["reached"] == 2
    assert s["frames_to_threshold"] == 75.0  # median of 100 and 50
    assert s["final"][0] == pytest.approx((1.0 + 0.9 + 0.3) / 3)
    assert s["held"][0] == 1.0  # the one seed with windows after its first 0.9 kept it
    with_verdicts = [{**run, "success_curve": [[100, value]]}
                     for run, value in zip(runs, (1.0, 0.5, 0.0), strict=True)]
    assert suite_stats.summarize_runs(with_verdicts, 0.9, 100)["final"][0] == pytest.approx(0.5)


def test_a_task_with_verdicts_is_judged_by_its_success_rate_not_its_return():
    """Visual match's return counts apples too: a run whose return passed 0.9 from its first window
    while its recall was at chance has not reached 0.9."""
    runs = [{"curve": [[0, 1.3], [100, 2.5]], "success_curve": [[0, 0.3], [50, 0.95], [100, 1.0]]},
            {"curve": [[0, 1.2], [100, 2.4]], "success_curve": [[0, 0.3], [100, 0.4]]}]
    s = suite_stats.summarize_runs(runs, threshold=0.9, total_frames=100)
    assert s["reached"] == 1 and s["frames_to_threshold"] == 50.0
    assert s["final"][0] == pytest.approx(0.7)  # the success rate, not the return
    assert s["auc"][0] == pytest.approx(suite_stats.area_under_curve(runs[0]["success_curve"], 100) / 2
                                        + suite_stats.area_under_curve(runs[1]["success_curve"], 100) / 2)
    no_verdicts = [{"curve": run["curve"]} for run in runs]
    assert suite_stats.summarize_runs(no_verdicts, 0.9, 100)["reached"] == 2  # the return it is


def _runs(core, task, aucs_as_levels, reached=True):
    """Runs whose curve sits flat at each level (so its area under the curve is that level); the curve
    touches 0.9 at the end when ``reached``."""
    return [{"core": core, "task": task, "curve": [[0, level], [99, level], [100, 0.9 if reached else level]]}
            for level in aucs_as_levels]


def test_a_claim_holds_reverses_or_stays_open_by_the_intervals_of_its_two_cores():
    compare = lambda a, b: suite_stats.compare_cores(a, b, threshold=0.9, total_frames=100, seeds=3)[0]  # noqa: E731
    fast, slow = _runs("ur", "T", [0.8, 0.82, 0.84]), _runs("std", "T", [0.3, 0.35, 0.4])
    assert compare(fast, slow) == "holds"
    assert compare(slow, fast) == "reversed"
    assert compare(fast, _runs("std", "T", [0.5, 0.81, 0.9])) == "no difference"  # the intervals overlap
    close = _runs("std", "T", [0.805, 0.81, 0.815])  # intervals apart from the next, means 0.015 apart
    assert compare(_runs("ur", "T", [0.82, 0.825, 0.83]), close) == "no difference"
    assert compare(_runs("ur", "T", [0.83, 0.835, 0.84]), close) == "holds"  # 0.025 apart
    assert compare(fast[:2], slow) == "open: not run"
    stalled = lambda core: _runs(core, "T", [0.2, 0.25, 0.3], reached=False)  # noqa: E731
    assert compare(stalled("ur"), stalled("std")) == "open: neither reached the threshold"
    rose = _runs("ur", "T", [0.5, 0.55, 0.6], reached=False)  # further from the floor, still short of 0.9
    assert compare(rose, stalled("std")) == "open: neither reached the threshold; ahead by area"
    assert compare(stalled("std"), rose) == "open: neither reached the threshold; behind by area"
    assert compare(_runs("ur", "T", [0.31, 0.315, 0.32], reached=False),  # apart, means 0.015 apart
                   _runs("std", "T", [0.3, 0.3, 0.3], reached=False)) == "open: neither reached the threshold"
    verdict, evidence = suite_stats.compare_cores(fast, stalled("std"), 0.9, 100, 3)
    assert verdict == "holds" and "reached 3/3 vs 0/3" in evidence


def test_the_claims_table_has_a_column_per_task_that_ran_and_names_the_others():
    from benchmarks.suite_report import claims_table

    suite = {"seeds": [0, 1, 2], "cores": ["ur", "std"],
             "tasks": {name: {"threshold": 0.9, "total_frames": 100} for name in ("A", "B")},
             "claims": [{"claim": "UR helps", "core": "ur", "baseline": "std"}]}
    runs = _runs("ur", "A", [0.8, 0.82, 0.84]) + _runs("std", "A", [0.3, 0.35, 0.4])
    lines = claims_table(suite, runs)
    assert lines[0] == "| claim | A |"
    assert lines[2].startswith("| UR helps: `ur` over `std` | **holds** (AUC 0.")
    assert lines[-1] == "Not run yet, so open for every claim: B."


def test_cells_not_run_here_are_named_with_their_reason_and_a_result_of_one_still_counts(tmp_path):
    """The suite's not_run_here: such a cell is not "left" in the time, not "open" in the claims (the
    claim says "not run here", the task's section says why), and a result file of one counts as usual."""
    from benchmarks.suite_report import claims_table

    suite = {"seeds": [0, 1, 2], "cores": ["ur", "std", "other"],
             "tasks": {name: {"threshold": 0.9, "total_frames": 100} for name in ("A", "B", "C")},
             "claims": [{"claim": "UR helps", "core": "ur", "baseline": "std"},
                        {"claim": "other helps", "core": "other", "baseline": "std"}],
             "not_run_here": [{"tasks": ["A", "B"], "cores": ["other"], "reason": "too slow."},
                              {"tasks": ["C"], "cores": "all", "reason": "far too slow."}]}
    assert suite_stats.not_run_here(suite, "A", "other") == "too slow."
    assert suite_stats.not_run_here(suite, "C", "ur") == "far too slow."
    assert suite_stats.not_run_here(suite, "A", "ur") is None
    runs = _runs("ur", "A", [0.8, 0.82, 0.84]) + _runs("std", "A", [0.3, 0.35, 0.4])
    lines = claims_table(suite, runs)
    assert lines[2].startswith("| UR helps: `ur` over `std` | **holds** (AUC 0.")
    assert lines[3] == "| other helps: `other` over `std` | **not run here** |"
    assert lines[-3] == "Not run yet, so open for every claim not named below: B."
    assert lines[-1] == ("Not run on this project's machine (each task's section says why): "
                         "`other` over `std` on B; every claim on C.")
    cost = suite_stats.suite_cost(suite, runs)["tasks"]
    assert [(cost[t]["finished"], cost[t]["left"], cost[t]["not_run_here"]) for t in "ABC"] == [
        (6, 0, 3), (0, 6, 3), (0, 0, 9)]
    ran_elsewhere = runs + _runs("other", "A", [0.5, 0.5, 0.5])  # a declared cell's results count
    assert claims_table(suite, ran_elsewhere)[3].startswith("| other helps: `other` over `std` | **holds**")
    assert suite_stats.suite_cost(suite, ran_elsewhere)["tasks"]["A"]["not_run_here"] == 0
    assert suite_stats.not_run_here(suite, "A", "other", ran_elsewhere[:-1]) == "too slow."  # 2 of 3 seeds
    assert suite_stats.not_run_here(suite, "A", "other", ran_elsewhere) is None
    page = tmp_path / "RESULTS.md"
    suite_report.write_report("tiny", suite, tmp_path / "results", page, tmp_path / "img", "report")
    text = page.read_text()
    assert "0 of 27 runs finished; 15 more are not run on this project's machine" in text
    assert "| other | 0 | not run here | | | | |" in text and "| ur | 0 | not run | | | | |" in text
    assert "Not run on this project's machine: `other`. Why: too slow." in text
    assert "Not run on this project's machine: `ur`, `std`, `other`. Why: far too slow." in text


def test_a_not_run_here_entry_names_the_suites_tasks_and_cores_and_a_reason(tmp_path):
    path = tmp_path / "suites.yaml"
    base = "s:\n  seeds: [0]\n  cores: [lstm, ur_lstm]\n  tasks: {T: {total_frames: 10, threshold: 0.9}}\n"
    for entry, message in (("{tasks: [T], cores: all}", "must have exactly the keys cores, reason, tasks"),
                           ("{tasks: [T], cores: all, reason: ''}", "needs a reason, got ''"),
                           ("{tasks: [U], cores: all, reason: slow}", "names task U, not in the suite \\(T\\)"),
                           ("{tasks: [T], cores: [gru], reason: slow}", "names core gru, not in the suite"),
                           ("{tasks: T, cores: all, reason: slow}", "tasks .* must be a list of task names"),
                           ("{tasks: [T], cores: some, reason: slow}", "must be a list of core names or all")):
        path.write_text(base + f"  not_run_here: [{entry}]\n")
        with pytest.raises(SystemExit, match=message):
            load_suite("s", path)
    path.write_text(base + "  not_run_here: [{tasks: [T], cores: [lstm], reason: slow}]\n")
    assert load_suite("s", path)["not_run_here"][0]["cores"] == ["lstm"]


def test_the_suite_skips_the_cells_not_run_here_unless_all_cells_is_given(tmp_path, monkeypatch, capsys):
    path = tmp_path / "suites.yaml"
    path.write_text("s:\n  seeds: [0, 1]\n  cores: [lstm, ur_lstm]\n  tasks: {T: {total_frames: 10, "
                    "threshold: 0.9}}\n  not_run_here: [{tasks: [T], cores: [lstm], reason: slow}]\n")
    ran = []
    monkeypatch.setattr(memory_suite, "run_suite", lambda cells, *args: ran.append(cells) or 0)
    memory_suite.main(["s", "--suites", str(path), "--work", str(tmp_path)])
    assert [(c.core, c.seed) for c in ran[-1]] == [("ur_lstm", 0), ("ur_lstm", 1)]
    assert "skipping 2 cells its not_run_here leaves unrun" in capsys.readouterr().out
    memory_suite.main(["s", "--suites", str(path), "--work", str(tmp_path), "--all-cells"])
    assert [c.core for c in ran[-1]] == ["lstm", "lstm", "ur_lstm", "ur_lstm"]


def test_a_claim_must_name_cores_of_its_suite(tmp_path):
    path = tmp_path / "suites.yaml"
    base = "s:\n  seeds: [0]\n  cores: [lstm, ur_lstm]\n  tasks: {T: {total_frames: 10, threshold: 0.9}}\n"
    path.write_text(base + "  claims: [{claim: x, core: ur_lstm, baseline: gru}]\n")
    with pytest.raises(SystemExit, match="claim 'x' names gru, not a core of suite 's' \\(lstm, ur_lstm\\)"):
        load_suite("s", path)
    path.write_text(base + "  claims: [{claim: x, core: ur_lstm}]\n")
    with pytest.raises(SystemExit, match="must have exactly the keys baseline, claim, core"):
        load_suite("s", path)
    path.write_text(base + "  claims: [{claim: x, core: ur_lstm, baseline: lstm}]\n")
    assert load_suite("s", path)["claims"][0]["baseline"] == "lstm"


def test_suites_file_defines_quick_and_paper():
    quick = load_suite("quick")
    assert {"mlp", "lstm", "gru", "ur_lstm", "ur_gru"} <= set(quick["cores"]) and len(quick["seeds"]) >= 3
    paper = load_suite("paper")
    assert {"lstm", "u_lstm", "r_lstm", "ur_lstm", "c_lstm", "gru", "ur_gru", "min_gru", "ur_min_gru",
            "mlp"} <= set(paper["cores"]) and len(paper["seeds"]) >= 3
    assert {(c["core"], c["baseline"]) for c in paper["claims"]} >= {("ur_lstm", "lstm"), ("ur_gru", "gru"),
                                                                      ("ur_min_gru", "min_gru")}
    mlp = cells_of("paper", paper, tasks=["CueRecall-D100"], cores=["mlp"])[0]
    # the memoryless floor: no previous action or reward, and trained at the task itself (no stages)
    assert train_command(mlp, Path("x"), 1)[-4:] == ["--previous-inputs", "False", "--delay-curriculum", ""]
    lstm = cells_of("paper", paper, tasks=["CueRecall-D100"], cores=["lstm"])[0]
    assert "--previous-inputs" not in train_command(lstm, Path("x"), 1)
    cells = cells_of("quick", quick, tasks=["MiniGrid-MemoryS7"], cores=["ur_lstm"])
    assert [c.seed for c in cells] == quick["seeds"]
    command = train_command(cells_of("quick", quick, tasks=["PassiveVisualMatch-Delay8"])[0],
                            Path("x"), 1)
    assert "--env-option" in command and "delay=8" in command and "--unroll-length" in command


def test_a_subset_of_seeds_runs_alone_and_a_name_not_in_the_suite_is_refused():
    quick = load_suite("quick")
    cells = cells_of("quick", quick, tasks=["MiniGrid-MemoryS7"], seeds=[1])
    assert [(c.core, c.seed) for c in cells] == [(core, 1) for core in quick["cores"]]
    for subset, message in (({"tasks": ["MiniGrid-MemoryS8"]}, "has no task MiniGrid-MemoryS8; it has"),
                            ({"cores": ["ur_lstn"]}, "has no core ur_lstn; it has"),
                            ({"seeds": [0, 7]}, "has no seed 7; it has 0, 1, 2")):
        with pytest.raises(SystemExit, match=message):
            cells_of("quick", quick, **subset)


def test_each_cell_gets_the_machines_cpus_shared_among_the_jobs_unless_threads_are_given():
    assert memory_suite.cell_threads(jobs=1, cpus=2) == 2
    assert memory_suite.cell_threads(jobs=2, cpus=2) == 1
    assert memory_suite.cell_threads(jobs=3, cpus=2) == 1  # never 0
    assert memory_suite.cell_threads(jobs=4, cpus=16) == 4
    assert memory_suite.cell_threads(jobs=1, threads=1, cpus=16) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_the_cpus_shared_are_those_the_process_may_run_on(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert memory_suite.usable_cpus() == 1
    assert memory_suite.cell_threads(jobs=1) == 1


def test_bad_jobs_or_threads_are_refused_in_one_line(capsys):
    for flags, bad in ((["--jobs", "0"], "--jobs 0"), (["--threads", "-1"], "--threads -1")):
        with pytest.raises(SystemExit):
            memory_suite.main(["quick", *flags])
        assert bad in capsys.readouterr().err


TINY = """
tiny:
  seeds: [0, 1]
  cores: [mlp, ur_lstm]
  tasks:
    Recall: {config: recall_easy, options: {num_envs: 2, unroll_length: 10, hidden_size: 16,
             torso_size: 16, runtime: sync, log_every_s: 0.2}, total_frames: 10000, threshold: 0.9}
"""


LONG = """
tiny:
  seeds: [0, 1]
  cores: [mlp]
  tasks:
    Recall: {config: recall_easy, options: {num_envs: 2, unroll_length: 10, hidden_size: 16,
             torso_size: 16, runtime: sync, log_every_s: 0.2}, total_frames: 100000000, threshold: 0.9}
"""


@pytest.mark.slow
def test_a_signal_stops_a_suite_of_long_cells_at_once(tmp_path):
    """Two cells of a budget that would take hours, started as a script's background job (SIGINT
    ignored): a SIGINT to the suite alone stops both cells within seconds, each with a checkpoint, and
    leaves no process; a SIGTERM while they save changes nothing. (The suite waits on its cells in
    short slices: an untimed wait slept through a signal until a cell ended, and an inherited SIG_IGN
    made SIGINT do nothing; a second signal raised out of the wait for the saving cells.)"""
    (tmp_path / "suites.yaml").write_text(LONG)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def ignore_sigint():
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "memory_suite.py"), "tiny",
                             "--suites", str(tmp_path / "suites.yaml"), "--work", str(tmp_path / "work"),
                             "--results", str(tmp_path / "results"), "--jobs", "2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=ignore_sigint)
    cells = [tmp_path / "work" / "tiny" / "Recall" / "mlp" / f"seed{seed}" for seed in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while not all((c / "metrics.jsonl").exists() for c in cells) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.2)  # the suite is waiting for its cells to save: an impatient second signal
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
    finally:
        kill_group(proc)
    assert all((c / "checkpoints" / "latest.pt").exists() for c in cells)


def suite(tmp_path, *args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_suite.py"), "tiny",
                           "--suites", str(tmp_path / "suites.yaml"), "--work", str(tmp_path / "work"),
                           "--results", str(tmp_path / "results"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, **kwargs)


@pytest.mark.slow
def test_tiny_grid_end_to_end_with_an_interrupted_cell(tmp_path):
    (tmp_path / "suites.yaml").write_text(TINY)
    # Interrupt the suite alone (as `kill PID` or a scheduler would) as soon as the first cell logs: the
    # suite passes the stop to its trainer, which saves a checkpoint and exits; no process is left.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "memory_suite.py"), "tiny",
                             "--suites", str(tmp_path / "suites.yaml"), "--work", str(tmp_path / "work"),
                             "--results", str(tmp_path / "results")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = tmp_path / "work" / "tiny" / "Recall" / "mlp" / "seed0"
    try:
        deadline = time.monotonic() + 120
        while not (first / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) == 130  # the running cell saved; no new cell started
        with pytest.raises(ProcessLookupError):  # the trainer exited with the suite: no orphan
            os.killpg(proc.pid, 0)
    finally:
        kill_group(proc)
    assert (first / "checkpoints" / "latest.pt").exists() and not (tmp_path / "results" / "tiny").exists()
    assert not (tmp_path / "work" / "tiny" / "Recall" / "mlp" / "seed1").exists()

    result = suite(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": done") == 4
    files = sorted((tmp_path / "results" / "tiny").glob("*/*/seed*.json"))
    assert len(files) == 4
    records = {(r["core"], r["seed"]): r for r in (json.loads(f.read_text()) for f in files)}
    interrupted = records[("mlp", 0)]
    assert 0 < interrupted["resumed_from"] < 10000  # resumed from its checkpoint, not restarted
    assert records[("mlp", 1)]["resumed_from"] == 0
    for record in records.values():
        assert record["curve"] and record["curve"][-1][0] >= 10000 - 20
        assert record["final_return"] == record["curve"][-1][1]
        assert record["final_success"] == record["success_curve"][-1][1]  # visual match gives verdicts
        assert record["config"]["core"]["core"] == record["core"]
    assert set(records[("ur_lstm", 0)]["gates"]) >= {"forget", "refine", "effective"}
    assert records[("mlp", 0)]["gates"] == {}

    again = suite(tmp_path)  # finished cells are skipped
    assert again.stdout.count(": skipped") == 4

    page = tmp_path / "RESULTS.md"
    page.write_text("# Results\n\nHand-written text stays.\n")
    report = suite(tmp_path, "--report", "--page", str(page), "--images", str(tmp_path / "img"))
    assert report.returncode == 0, report.stderr
    text = page.read_text()
    assert "Hand-written text stays." in text and "4 of 4 runs finished" in text
    assert "| ur_lstm | 2 |" in text and "| mlp | 2 |" in text
    assert "final success rate |" in text
    assert (tmp_path / "img" / "tiny_Recall.png").stat().st_size > 1000
    assert (tmp_path / "img" / "tiny_gates.png").exists()
    suite(tmp_path, "--report", "--page", str(page), "--images", str(tmp_path / "img"))
    assert page.read_text().count("<!-- memory-suite:tiny:begin -->") == 1  # replaced, not appended


def test_the_report_states_each_cores_flags():
    """A suite's core_flags change what its cells ran (e.g. the defaults of a past day); the report
    says so beside each task instead of calling them the program's defaults."""
    assert core_flags_note({"core_flags": {"mlp": {"previous_inputs": False}}}) == (
        ' Per core: `mlp` with {"previous_inputs": false}.')
    assert core_flags_note({}) == ""


def test_a_task_no_run_has_reached_names_no_score_it_cannot_know(tmp_path):
    """Whether a task is judged by success rate or return comes from its runs' records: before any
    has finished the report says "score", not "return"."""
    suite = {"seeds": [0], "cores": ["mlp"],
             "tasks": {"Recall": {"options": {"env": "CueRecall-v0"}, "total_frames": 1000, "threshold": 0.9}}}
    page = tmp_path / "RESULTS.md"
    suite_report.write_report("tiny", suite, tmp_path / "results", page, tmp_path / "img", "report")
    text = page.read_text()
    assert "solved at a score of 0.9" in text and "0 of 1 runs finished" in text and "| final score |" in text
    assert "| mlp | 0 | not run |" in text


def test_the_suites_time_comes_from_each_tasks_own_rate():
    """Hours per cell from the median rate of a core's finished runs of a task (frames since each
    resumed over its wall time); a task with no finished run is counted in frames, not hours."""
    suite = {"seeds": [0, 1], "cores": ["a", "b"],
             "tasks": {"T": {"total_frames": 7_200_000}, "U": {"total_frames": 1_000_000}}}
    runs = [{"task": "T", "core": "a", "curve": [[7_200_000, 1.0]], "total_frames": 7_200_000,
             "resumed_from": 0, "wall_s": 7200.0},               # 1000 frames/s
            {"task": "T", "core": "a", "curve": [[7_200_000, 1.0]], "total_frames": 7_200_000,
             "resumed_from": 3_600_000, "wall_s": 1200.0}]       # 3000 frames/s since it resumed
    assert suite_stats.training_rate(runs[1]) == 3000
    cost = suite_stats.suite_cost(suite, runs)
    t = cost["tasks"]["T"]
    assert (t["finished"], t["left"], t["rate"], t["core_hours"]) == (2, 2, 2000, {"a": 1.0})
    assert cost["tasks"]["U"] == {"finished": 0, "left": 4, "not_run_here": 0, "rate": None, "core_hours": {},
                                  "hours_left": None}
    assert (cost["hours_done"], cost["hours_left"], cost["frames_unmeasured"]) == (2.0, 2.0, 4_000_000)
    assert cost["rates"] == (2000, 2000)
    assert suite_stats.training_rate({**runs[0], "wall_s": 0}) is None


def test_the_cells_left_take_each_cores_own_rate_and_an_unrun_core_the_slowest():
    """A fast memoryless core must not shorten the gated cores' time: each core's cells left at its own
    median rate, a core with no finished run at the slowest measured core's."""
    suite = {"seeds": [0, 1, 2], "cores": ["fast", "slow", "new"], "tasks": {"T": {"total_frames": 3_600_000}}}
    run = lambda core, rate: {"task": "T", "core": core, "curve": [[3_600_000, 0.0]],  # noqa: E731
                              "total_frames": 3_600_000, "wall_s": 3_600_000 / rate}
    runs = [run("fast", 2000), run("fast", 2000), run("fast", 2000), run("slow", 1000)]
    t = suite_stats.suite_cost(suite, runs)["tasks"]["T"]
    assert t["core_hours"] == {"fast": 0.5, "slow": 1.0}
    assert (t["left"], t["hours_left"]) == (5, 2 * 1.0 + 3 * 1.0)  # slow's two seeds, new's three at slow's
    assert t["rate"] == 2000  # the median over every run, as the table prints it
    assert suite_stats.suite_cost(suite, runs)["hours_done"] == 3 * 0.5 + 1.0
