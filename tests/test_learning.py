"""Learning checks (slow): a recurrent core learns recall tasks, a memoryless one cannot; the program's
defaults (only ``--env`` and ``--core`` given) learn a 15-step recall, and the shuffled form at delay 30.

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


#: The learning checks stop a run once its window of 100 episodes is this good (``--stop-at``), so
#: a run that learns takes what it needs rather than its whole budget; the evaluation after it must
#: still reach 0.9, which a policy at 0.98 misses in 100 episodes about once in 10^5 (binomial).
SOLVED = "0.98"


def train_and_evaluate(tmp_path: Path, *args: str, preset: tuple[str, ...] = ("--config", "recall_easy"),
                       seed: int = 1) -> float:
    """Train (``args`` on top of ``preset``), then evaluate 100 episodes; the mean return."""
    logdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, str(ROOT / "train_agent.py")]
    subprocess.run([*base, *preset, "--logdir", str(logdir), "--seed", str(seed), *args],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=1200)
    subprocess.run([*base, "--eval", "--logdir", str(logdir), "--episodes", "100"],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    return json.loads((logdir / "eval.json").read_text())["mean_return"]


def test_a2c_learns_the_short_recall_task(tmp_path):
    """A2C, named here so that the test keeps its subject if the preset's agent changes. IMPALA, the
    program's default agent, is checked by the learning tests of the defaults below (since 2026-12-06;
    until then this test ran it on the preset too, 83 s of CI for what they check)."""
    assert train_and_evaluate(tmp_path, "--agent", "a2c", "--stop-at", SOLVED) >= 0.9


def test_memoryless_core_stays_at_chance(tmp_path):
    mean = train_and_evaluate(tmp_path, "--core", "mlp", "--total-frames", "100000")
    # chance is 1/3; 100 episodes give a standard error of 0.047
    assert abs(mean - 1 / 3) < 4 * 0.047


def test_the_defaults_learn_a_15_step_recall(tmp_path):
    """CueRecall-v0: the cue at the first step, 15 blank steps, then name the cue (4 cues, chance
    1/4). Nothing but the env, the core and a budget: the program's defaults must learn it (with the
    defaults of 496ee9b the ``defaults`` suite's seeds reached 0.9 at 70k, 87k and 100k frames; with
    the head layer of 2026-12-05 at 84k, 81k and 73k, docs/AGENTS.md; 300k frames leave seed 0 a
    margin of 3.6x)."""
    args = ("--env", "CueRecall-v0", "--total-frames", "300000", "--stop-at", SOLVED)
    assert train_and_evaluate(tmp_path, *args, "--core", "ur_lstm", preset=(), seed=0) >= 0.9


def test_memoryless_control_stays_at_chance_on_the_15_step_recall(tmp_path):
    args = ("--env", "CueRecall-v0", "--total-frames", "150000", "--core", "mlp", "--previous-inputs", "false")
    mean = train_and_evaluate(tmp_path, *args, preset=(), seed=0)
    assert abs(mean - 1 / 4) < 4 * 0.0433  # 100 episodes: standard error sqrt(3/16 / 100)


def test_the_defaults_learn_the_shuffled_recall_at_delay_30(tmp_path):
    """ShuffledCueRecall-v0 at delay 30 (the query shows the four symbols in a random order; pick the
    slot of the cue), nothing but the env, the core and a budget. With the program's defaults since
    496ee9b (view match and the recognition loss on; the cue and the candidates share a vocabulary)
    the ``defaults`` suite's ur_lstm seeds reached 0.9 at 145k, 150k and 151k frames, where the
    defaults before stayed below it for 3M frames in 3 of 3 seeds (docs/AGENTS.md); with the head
    layer of 2026-12-05 at 116k, 76k and 111k. 450k frames leave seed 0 a margin of 3.9x."""
    args = ("--env", "ShuffledCueRecall-v0", "--env-option", "delay=30", "--core", "ur_lstm",
            "--total-frames", "450000", "--stop-at", SOLVED)
    assert train_and_evaluate(tmp_path, *args, preset=(), seed=0) >= 0.9
