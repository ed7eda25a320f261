"""Observation wrappers and the description agents build their torso from."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from envs import describe_observation, make_env
from envs.observations import MISSION_LENGTH, describe_space, mission_tokens, share_vocabulary


def test_minigrid_memory_drops_its_fixed_mission():
    env = make_env("MiniGrid-MemoryS7-v0")
    assert set(env.observation_space.spaces) == {"image", "direction"}
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (7, 7, 3) and obs["direction"].dtype == np.int64


def test_minigrid_task_with_varying_missions_keeps_word_ids():
    env = make_env("MiniGrid-GoToObject-6x6-N2-v0")
    description = describe_observation(env.observation_space)
    assert description["mission"] == {"kind": "tokens", "shape": (MISSION_LENGTH,), "vocab_size": 512}
    obs, _ = env.reset(seed=0)
    assert obs["mission"].dtype == np.int64 and obs["mission"][0] > 0
    assert make_env("MiniGrid-GoToObject-6x6-N2-v0", mission="drop").observation_space.spaces.keys() \
        == {"image", "direction"}


def test_mission_tokens_are_stable_and_padded():
    a = mission_tokens("go to the red ball")
    assert np.array_equal(a, mission_tokens("Go to the red ball"))
    assert (a[:5] > 0).all() and (a[5:] == 0).all()


def test_description_of_every_supported_space():
    assert describe_space(spaces.Discrete(5)) == {"kind": "discrete", "n": 5}
    assert describe_space(spaces.MultiDiscrete([2, 3])) == {"kind": "multi_discrete", "nvec": (2, 3)}
    assert describe_space(spaces.Box(-1, 1, (3, 2))) == {"kind": "box", "shape": (3, 2)}
    assert describe_space(spaces.MultiBinary(4)) == {"kind": "box", "shape": (4,)}
    with pytest.raises(ValueError, match="unsupported observation space"):
        describe_space(spaces.Text(5))


def test_a_shared_vocabulary_is_described_and_needs_discrete_values():
    assert describe_space(share_vocabulary(spaces.Discrete(5), "symbols")) == {
        "kind": "discrete", "n": 5, "vocabulary": "symbols"}
    assert describe_space(share_vocabulary(spaces.MultiDiscrete([5, 5]), "symbols"))["vocabulary"] == "symbols"
    with pytest.raises(ValueError, match="Discrete or MultiDiscrete"):
        share_vocabulary(spaces.Box(0, 1, (2,)), "symbols")
    with pytest.raises(ValueError, match="must be an identifier"):
        share_vocabulary(spaces.Discrete(3), "a.b")
