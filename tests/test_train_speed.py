"""benchmarks/train_speed.py: ``--option`` sets a config field on top of the agent it times, a bad one
is a one-line error before anything runs, and a run that fails says why in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks import train_speed
from configs import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV, CORE = "MiniGrid-MemoryS7-v0", "ur_lstm"


def test_options_go_on_top_of_the_one_step_agent_or_of_the_defaults():
    fields = train_speed.agent_fields(False, ["head_size=0", "epochs=1"], ENV, CORE)
    assert fields == {**train_speed.ONE_STEP_AGENT, "head_size": 0, "epochs": 1}
    assert train_speed.agent_fields(False, ["head_size=64"], ENV, CORE)["head_size"] == 64  # the option wins
    assert train_speed.agent_fields(True, [], ENV, CORE) == {}
    assert train_speed.agent_fields(True, ["head_size=0"], ENV, CORE) == {"head_size": 0}


@pytest.mark.parametrize("option, message", [
    ("bogus=1", "unknown config key 'bogus'"),
    ("head_size=-3", "head_size must be an integer >= 0, got -3"),
    ("agent=a2c", "--option agent is set by the script itself"),
    ("epochs=3", "epochs=3 needs agent impala"),  # bad for the a2c row only
])
def test_a_bad_option_is_one_line_naming_it(option, message):
    with pytest.raises(ConfigError, match=message):
        train_speed.agent_fields(False, [option], ENV, CORE)


def test_the_script_refuses_a_bad_option_in_one_line():
    command = [sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--option", "agent=a2c"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("--option agent is set by the script itself; "
                                                           "options may set any other config field")


def test_the_timed_run_trains_with_its_own_fields_then_the_agent_fields_then_extra_flags(tmp_path):
    fields = train_speed.agent_fields(False, ["head_size=32"], ENV, CORE)
    rate = train_speed.train_rate(ENV, CORE, "sync", "a2c", 4, 4000, tmp_path / "run", ("--log-every-s", "0.2"),
                                  fields)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert rate > 0 and saved["core"]["head_size"] == 32 and saved["agent"]["epochs"] == 1
    own = train_speed.own_fields(ENV, CORE, "sync", "a2c", 4, 4000, tmp_path / "run")
    flat = {key: value for section in saved.values() for key, value in section.items()}
    assert {key: flat[key] for key in own} == {**own, "log_every_s": 0.2}  # the extra flag comes last and wins


def test_a_run_that_fails_exits_with_its_own_last_line(tmp_path):
    with pytest.raises(SystemExit, match=r"sync/a2c: train_agent.py stopped \(exit 2\): .*--novelty-bonus"):
        train_speed.train_rate(ENV, CORE, "sync", "a2c", 4, 4000, tmp_path / "run", (),
                               {**train_speed.ONE_STEP_AGENT, "novelty_bonus": 0.1})
