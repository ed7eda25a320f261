"""Config dataclasses, presets and validation."""

from __future__ import annotations

import pytest

from configs import ConfigError, TrainConfig, field_docs, field_owners, load_config, presets


def test_every_preset_loads_and_validates():
    assert {"default", "minigrid_memory", "visual_match", "popgym", "recall_easy"} <= set(presets())
    for name in presets():
        assert isinstance(load_config(name), TrainConfig)


def test_field_names_are_unique_and_documented():
    owners = field_owners()
    docs = field_docs()
    assert set(owners) == set(docs)  # every field has a docstring for --help
    assert len(owners) == sum(len(TrainConfig().to_dict()[s]) for s in TrainConfig().to_dict())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"total_frames": 0}, "total_frames must be a positive integer, got 0"),
        ({"discount": 1.5}, r"discount must be in \[0, 1\], got 1.5"),
        ({"agent": "ppo"}, "agent must be one of impala, a2c, got 'ppo'"),
        ({"runtime": "rays"}, "runtime must be one of sync, async, ray, got 'rays'"),
        ({"num_envs": -1}, "num_envs must be a positive integer, got -1"),
        ({"previous_inputs": "no"}, "previous_inputs must be true or false, got 'no'"),
        ({"head_size": -1}, "head_size must be an integer >= 0, got -1"),
        ({"observation_gate": 1}, "observation_gate must be true or false, got 1"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number, got inf"),
        ({"td_lambda": float("nan")}, "td_lambda must be a finite number, got nan"),
        ({"learning_rat": 1.0}, r"unknown config key 'learning_rat' \(did you mean learning_rate\?\)"),
    ],
)
def test_bad_values_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides(overrides)


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: [1, 2")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    bad.write_text("trainer:\n  x: 1\n")
    with pytest.raises(ConfigError, match="unknown config section 'trainer'"):
        load_config(bad)


def test_round_trip_through_a_dict():
    config = load_config("default").with_overrides({"learning_rate": 1e-3, "seed": 3})
    assert TrainConfig.from_dict(config.to_dict()) == config
