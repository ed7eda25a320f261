"""benchmarks/learner_speed.py and suite_report.py run as scripts: the first times the learner of the
run its flags name and refuses a bad flag in one line; the second, a module, says which command writes
the report (both failed with an import error when run as scripts: benchmarks/cores.py shadowed the
`cores` package, and `benchmarks` was not importable)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "learner_speed.py"
TINY = ["--env", "PassiveVisualMatch-Easy-v0", "--option", "hidden_size=16", "--option", "num_envs=2",
        "--option", "unroll_length=5", "--seconds", "0.2"]


def script(path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(path), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("root_on_path", [False, True])  # as the tests' own subprocesses have it
def test_learner_speed_times_the_named_run(root_on_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)} if root_on_path else None
    result = script(SCRIPT, *TINY, env=env)
    assert result.returncode == 0, result.stderr
    line = re.fullmatch(r"PassiveVisualMatch-Easy-v0, ur_lstm, unrolls of 5 x 2: learner ([\d,]+) frames/s "
                        r"\(CPU, 1 thread\(s\), torch .+\)\n", result.stdout)
    assert line and int(line.group(1).replace(",", "")) > 0, result.stdout


def test_learner_speed_refuses_a_bad_flag_in_one_line():
    for args, message in ((["--env", "PassiveVisualMatch-Easy-v0", "--option", "hiden_size=16"],
                           "unknown config key 'hiden_size'"),
                          (["--env", "Nope-v0"], "unknown env 'Nope-v0'")):
        result = script(SCRIPT, *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("learner_speed: ") and message in result.stderr


def test_suite_report_run_as_a_script_names_the_command_that_writes_the_report():
    result = script(ROOT / "benchmarks" / "suite_report.py")
    assert result.returncode == 1
    assert result.stderr == ("suite_report.py is a module: python benchmarks/memory_suite.py SUITE --report "
                             "writes the report\n")
