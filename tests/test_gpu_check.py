"""``benchmarks/gpu_check.py`` runs as a script: without CUDA it says so and checks nothing; with
``--device cpu`` it is a dry run of every part (core parity, learner timing, train_agent end to end)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")
def test_without_cuda_the_script_says_so():
    result = script()
    assert result.returncode == 0 and "no CUDA device: nothing to check" in result.stdout


def test_a_dry_run_on_the_cpu_checks_a_core_times_the_learner_and_trains_end_to_end():
    result = script("--device", "cpu", "--cores", "lstm", "--T", "5", "--B", "2", "--F", "4", "--H", "8",
                    "--learner-batch", "1", "--seconds", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 1 cores match their CPU results" in result.stdout
    for step in ("train", "resume", "eval"):
        assert f"train_agent.py {step} on cpu: exit 0" in result.stdout
