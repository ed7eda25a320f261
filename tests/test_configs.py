"""Config dataclasses, presets and validation."""

from __future__ import annotations

import pytest
import torch
import yaml

from configs import (
    ConfigError,
    TrainConfig,
    field_docs,
    field_owners,
    load_config,
    load_run_config,
    presets,
    safe_yaml,
)
from configs.config import ADDED_FIELDS


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
        ({"discount": "0.9"}, "discount must be a number, got '0.9'"),
        ({"unroll_length": 8.5}, "unroll_length must be an integer, got 8.5"),
        ({"env_options": [1]}, "env_options must be a mapping, got list"),
        ({"delay_curriculum": 15}, "delay_curriculum must be a list, got 15"),
        ({"delay_curriculum": [15, "60"]}, "delay_curriculum must be a list of positive integers"),
        ({"delay_curriculum": [60, 15]}, r"delay_curriculum must increase, got \[60, 15\]"),
        ({"curriculum_success": 0}, r"curriculum_success must be in \(0, 1\], got 0"),
        ({"curriculum_min_frames": -1}, "curriculum_min_frames must be an integer >= 0, got -1"),
        ({"curriculum_hold": 0}, "curriculum_hold must be an integer >= 1, got 0"),
        ({"curriculum_unroll_lengths": [-8]}, "curriculum_unroll_lengths must be a list of positive integers"),
        ({"curriculum_env_options": [1]}, "curriculum_env_options must be a mapping, got list"),
        ({"curriculum_env_options": {"min_delay": 5, "cue_steps": 20}},
         "curriculum_env_options cannot set min_delay: the stages set the delay"),
        ({"delay_curriculum": [15, 60], "curriculum_unroll_lengths": [80, 160, 300]},
         r"curriculum_unroll_lengths must give one length, or one per delay of delay_curriculum \(2\), got 3"),
        ({"seed": -5}, "seed must be an integer from 0 to 2147483647, got -5"),
        ({"seed": 2**32}, "seed must be an integer from 0 to 2147483647, got 4294967296"),
        ({"seed": True}, "seed must be an integer, got True"),
        ({"init_seed": -2}, "init_seed must be -1 \\(the run's seed\\) or an integer from 0 to 2147483647, "
                            "got -2"),
        ({"epochs": -1}, "epochs must be an integer >= 0 \\(0: the agent.s default\\), got -1"),
        ({"agent": "a2c", "epochs": 2}, "epochs=2 needs agent impala"),
        ({"action_value_cost": -1.0}, "action_value_cost must be >= 0, got -1.0"),
        ({"view_novelty_bonus": -0.1}, "view_novelty_bonus must be >= 0, got -0.1"),
        ({"repeat_exploration": 1.0}, r"repeat_exploration must be in \[0, 1\) \(at 1 every step .*got 1.0"),
        ({"repeat_exploration_length": 0}, "repeat_exploration_length must be a positive integer, got 0"),
        ({"adam_eps": 0.0}, "adam_eps must be positive, got 0.0"),
        ({"curriculum_task_learning_rate": -1e-3},
         r"curriculum_task_learning_rate must be a finite number >= 0 \(0: learning_rate\), got -0.001"),
        ({"optimizer": "rmsprop", "adam_eps": 1e-5}, "adam_eps=1e-05 applies to optimizer adam, not rmsprop"),
        ({"refine_bias": "sideways"}, "refine_bias must be one of neg_forget, zero, got 'sideways'"),
        ({"recognition_cost": -1.0, "view_match": True}, "recognition_cost must be >= 0, got -1.0"),
        ({"policy_query": True, "view_match": False}, "policy_query true needs view_match true"),
        ({"policy_query": "yes"}, "policy_query must be true or false, got 'yes'"),
        ({"uniform_policy_start": 1}, "uniform_policy_start must be true or false, got 1"),
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


def test_a_string_for_a_number_in_a_yaml_file_is_named(tmp_path):
    config = tmp_path / "quoted.yaml"
    config.write_text('agent:\n  discount: "0.9"\n')
    with pytest.raises(ConfigError, match="^discount must be a number, got '0.9'$"):
        load_config(config)


def test_a_binary_or_huge_config_file_is_one_line(tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="is not a UTF-8 text file"):
        load_config(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="is larger than 1048576 bytes"):
        load_config(huge)


def test_yaml_aliases_are_refused_so_a_config_cannot_expand_beyond_its_text(tmp_path):
    """A billion-laughs config: nine lines whose aliases would expand to 10**9 list items when copied."""
    lines = ["env:", "  env_options:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*name\) are not allowed"):
        load_config(bomb)
    assert safe_yaml("[1, {a: 2}]", "x") == [1, {"a": 2}]


def test_the_default_preset_is_visual_match_under_its_own_run_directory():
    default, visual_match = load_config("default").to_dict(), load_config("visual_match").to_dict()
    assert default["run"].pop("logdir") == "runs/default" != visual_match["run"].pop("logdir")
    assert default == visual_match


def test_a_config_states_only_what_differs_from_its_base(tmp_path):
    (tmp_path / "mine.yaml").write_text("base: visual_match\nagent:\n  learning_rate: 0.01\n"
                                       "env:\n  env_options: {delay: 3}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("base: ../mine.yaml\nrun:\n  total_frames: 7\nagent:\n")
    config, preset = load_config(tmp_path / "sub" / "child.yaml"), load_config("visual_match")
    assert (config.agent.learning_rate, config.run.total_frames) == (0.01, 7)  # each file's own fields win
    # child.yaml's empty agent section changes nothing; the fields no file sets come from visual_match
    assert config.agent.unroll_length == preset.agent.unroll_length  # the rest: the base's
    assert config.env.env == preset.env.env and preset.env.env_options == {"fixed_pads": True}
    assert config.env.env_options == {"delay": 3}  # a mapping field is replaced whole


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base: [default]\n", r"base in config file '.*' must be a preset name or a file path, got list"),
        ("base: no_such_preset\n", r"cannot read config file '.*no_such_preset.yaml': .*; presets: default, "),
        ("base: loop.yaml\n", r"names 'loop.yaml' as its base, which leads back to itself"),
    ],
)
def test_a_bad_base_is_a_one_line_error(tmp_path, text, message):
    config = tmp_path / "loop.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_round_trip_through_a_dict():
    config = load_config("default").with_overrides({"learning_rate": 1e-3, "seed": 3})
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_the_choices_a_config_allows_are_the_ones_the_code_implements():
    """configs imports nothing of ours, so each choice is listed twice; these must agree."""
    import agents.learner
    import agents.runtimes
    import cores.gates
    import envs.vector
    from configs import config

    assert config.RUNTIMES == agents.runtimes.RUNTIMES
    assert config.BACKENDS == envs.vector.BACKENDS
    assert config.AGENTS == agents.learner.AGENTS
    assert config.OPTIMIZERS == agents.learner.OPTIMIZERS
    assert config.REFINE_BIASES == cores.gates.REFINE_BIASES
    for name in config.OPTIMIZERS:
        agents.learner.make_optimizer(name, [torch.zeros(1, requires_grad=True)], 1e-3)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        agents.learner.make_optimizer("sgd", [torch.zeros(1, requires_grad=True)], 1e-3)
    adam = agents.learner.make_optimizer("adam", [torch.zeros(1, requires_grad=True)], 1e-3, adam_eps=1e-5)
    assert adam.param_groups[0]["eps"] == 1e-5


def test_a_run_saved_before_a_field_existed_loads_with_the_value_it_trained_with(tmp_path):
    """A config.yaml written before observation_gate, input_norm, epochs and action_value_cost existed
    must not take today's defaults for them: the network and the optimiser steps would differ from
    what its checkpoint holds."""
    old, owners = TrainConfig().to_dict(), field_owners()
    for key in ADDED_FIELDS:
        del old[owners[key]][key]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old))
    config = load_run_config(path)
    assert (config.core.observation_gate, config.core.input_norm) == (False, False)
    assert (config.agent.epochs, config.agent.action_value_cost) == (1, 0.0)
    assert config.core.refine_bias == "neg_forget"
    assert (config.core.view_match, config.agent.recognition_cost) == (False, 0.0)
    assert config.core.head_size == 0  # linear heads, before head_size existed (748954c)
    assert config.env.curriculum_hold == 1  # a stage passed on its first window, before 3988d37
    path.write_text(yaml.safe_dump(TrainConfig().to_dict()))  # a run saved today keeps what it says
    assert load_run_config(path) == TrainConfig()
