"""benchmarks/train_speed.py: ``--option`` sets a config field on top of the agent it times, and a bad
one is a one-line error before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks import train_speed

ROOT = Path(__file__).resolve().parents[1]


def test_a_bad_option_is_one_line_naming_it():
    for option, message in (("bogus=1", "unknown config key 'bogus'"),
                            ("head_size=-3", "head_size must be an integer >= 0, got -3")):
        command = [sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--option", option]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(message)
        assert "Traceback" not in result.stderr


def test_the_timed_run_trains_with_the_agent_fields_given(tmp_path):
    fields = {**train_speed.ONE_STEP_AGENT, "head_size": 32}
    rate = train_speed.train_rate("MiniGrid-MemoryS7-v0", "ur_lstm", "sync", "a2c", 4, 4000, tmp_path / "run",
                                  ("--log-every-s", "0.2"), fields)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert rate > 0 and saved["core"]["head_size"] == 32 and saved["agent"]["epochs"] == 1
