"""Learning checks (slow): a recurrent core learns the short recall task, a memoryless one cannot.

Run with the rest of the suite (CI included); ``pytest -m "not slow"`` skips them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def train_and_evaluate(tmp_path: Path, *args: str) -> float:
    logdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, str(ROOT / "train_agent.py")]
    subprocess.run([*base, "--config", "recall_easy", "--logdir", str(logdir), "--seed", "1", *args],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=1200)
    subprocess.run([*base, "--eval", "--logdir", str(logdir), "--episodes", "100"],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    return json.loads((logdir / "eval.json").read_text())["mean_return"]


@pytest.mark.parametrize("agent", ["a2c", "impala"])
def test_ur_lstm_learns_the_short_recall_task(tmp_path, agent):
    assert train_and_evaluate(tmp_path, "--agent", agent) >= 0.9


def test_memoryless_core_stays_at_chance(tmp_path):
    mean = train_and_evaluate(tmp_path, "--core", "mlp", "--total-frames", "200000")
    # chance is 1/3; 100 episodes give a standard error of 0.047
    assert abs(mean - 1 / 3) < 4 * 0.047
