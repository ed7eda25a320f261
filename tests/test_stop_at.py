"""``--stop-at``: a run stops, saved, once its own task's window of 100 episodes reaches the value."""

from __future__ import annotations

import json

import torch

from tests.test_curriculum import FAST
from tests.test_train_agent import run


def _last_row(logdir) -> dict:
    return json.loads((logdir / "metrics.jsonl").read_text().splitlines()[-1])


def test_a_run_stops_saved_once_its_window_reaches_stop_at(tmp_path):
    """One update is 1280 frames and over 100 episodes of 8 steps: any success rate passes 0."""
    logdir = tmp_path / "run"
    result = run(*FAST, "--stop-at", "0", "--total-frames", "12800", "--logdir", str(logdir))
    assert "done; stopped at success" in result.stdout and "1,280 frames" in result.stdout
    assert torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)["frames"] == 1280
    assert "charts/success_rate_100" in _last_row(logdir)  # the window it stopped on is logged
    assert "stop_at: 0.0" in (logdir / "config.yaml").read_text()


def test_a_run_trains_its_budget_below_stop_at_and_a_resume_may_set_it(tmp_path):
    logdir = tmp_path / "run"
    result = run(*FAST, "--stop-at", "1.01", "--total-frames", "2560", "--logdir", str(logdir))
    assert "stopped at" not in result.stdout and "2,560 frames" in result.stdout
    resumed = run("--logdir", str(logdir), "--stop-at", "0", "--total-frames", "12800")  # may change on resume
    assert "done; stopped at success" in resumed.stdout and "3,840 frames" in resumed.stdout


def test_the_stages_of_a_delay_curriculum_never_stop_a_run(tmp_path):
    """Each update passes one stage (delays 1, 3, then the task's 6): the run stops at the first
    update whose window is the task's, not at a stage's that passes 0 as well."""
    logdir = tmp_path / "run"
    result = run(*FAST, "--delay-curriculum", "1,3", "--curriculum-success", "0.05", "--stop-at", "0",
                 "--total-frames", "12800", "--logdir", str(logdir))
    assert "now delay 6" in result.stdout and "done; stopped at success" in result.stdout
    assert "3,840 frames" in result.stdout and "a curriculum stage" not in result.stdout


def test_stop_at_nan_is_refused_in_one_line(tmp_path):
    result = run(*FAST, "--stop-at", "nan", "--logdir", str(tmp_path / "run"), check=False)
    assert result.returncode != 0 and "stop_at must be a number" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
