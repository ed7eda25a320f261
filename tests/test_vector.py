"""Batched stepping semantics: is_first, termination vs truncation, episode tracking, backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs import make_vector_env
from tests.scripted_envs import LENGTHS, SUCCESS

SCRIPTED = "tests.scripted_envs:ScriptedEpisodes-v0"


def expected_stream(steps: int, episode: int):
    """What one scripted env must produce per step under next-step autoreset."""
    rows, t, ended = [], 0, False
    for _ in range(steps):
        if ended:
            episode, t, ended = episode + 1, 0, False
            rows.append((episode, 0, 0.0, False, False, True))
            continue
        t += 1
        end = t >= LENGTHS[episode % 3]
        rows.append((episode, t, float(t), end and episode % 2 == 0, end and episode % 2 == 1, False))
        ended = end
    return rows


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_scripted_episode_boundaries(vectorization):
    env = make_vector_env(SCRIPTED, num_envs=2, seed=0, vectorization=vectorization)
    obs, is_first = env.reset(seed=0)
    assert is_first.all() and np.array_equal(obs["obs"][:, 1], [0, 0])
    first_episode = int(obs["obs"][0, 0])
    got = []
    for _ in range(20):
        step = env.step(np.zeros(2, dtype=np.int64))
        got.append([(int(step.obs["obs"][i, 0]), int(step.obs["obs"][i, 1]), float(step.reward[i]),
                     bool(step.terminated[i]), bool(step.truncated[i]), bool(step.is_first[i]))
                    for i in range(2)])
    env.close()
    want = expected_stream(20, first_episode)
    assert [row[0] for row in got] == want
    assert [row[1] for row in got] == want


def test_episode_statistics_skip_the_reset_step():
    env = make_vector_env(SCRIPTED, num_envs=1, seed=0)  # first episode has index 0
    for _ in range(12):  # episodes of length 3, 5 and 2, with a reset step between them
        env.step(np.zeros(1, dtype=np.int64))
    assert env.pop_episodes() == [(6.0, 3, True), (15.0, 5, None), (3.0, 2, False)]
    assert env.pop_episodes() == []


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_success_verdict_comes_from_the_last_info(vectorization):
    """Each finished episode carries its env's ``info["success"]`` from its last step, or None
    where that info has no verdict (through gymnasium's masked vector info)."""
    env = make_vector_env(SCRIPTED, num_envs=2, seed=0, vectorization=vectorization)
    obs, _ = env.reset(seed=0)
    first = int(obs["obs"][0, 0])
    for _ in range(30):
        env.step(np.zeros(2, dtype=np.int64))
    episodes = env.pop_episodes()
    env.close()
    want, k, steps = [], first, 0
    while steps + LENGTHS[k % 3] <= 30:  # an episode of n steps, then its reset step
        n = LENGTHS[k % 3]
        want.append((float(n * (n + 1) // 2), n, SUCCESS[k % 4]))
        steps, k = steps + n + 1, k + 1
    assert [e for i, e in enumerate(episodes) if i % 2 == 0] == want  # both envs run in lockstep
    assert {success for _, _, success in want} == {True, False, None}


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        make_vector_env(SCRIPTED, 2, backend="gpu")
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 0"):
        make_vector_env(SCRIPTED, 0)
    env = make_vector_env(SCRIPTED, 2)
    with pytest.raises(ValueError, match=r"actions must have shape \[2\]"):
        env.step(np.zeros(3, dtype=np.int64))


def test_minigrid_batch_layout():
    env = make_vector_env("MiniGrid-MemoryS7-v0", num_envs=3, seed=1, backend="gymnasium")
    obs, _ = env.reset(seed=1)
    assert obs["image"].shape == (3, 7, 7, 3) and obs["image"].dtype == np.uint8
    assert obs["direction"].shape == (3,) and obs["direction"].dtype == np.int64
    assert env.observation_description == {
        "image": {"kind": "minigrid_image", "shape": (7, 7, 3), "num_values": (11, 6, 4)},
        "direction": {"kind": "discrete", "n": 4},
    }
    step = env.step(np.array([2, 2, 2]))
    assert step.reward.dtype == np.float32 and step.is_first.dtype == bool


def test_envpool_backend_errors(monkeypatch):
    import envs.vector

    with pytest.raises(ValueError, match="backend 'envpool' (does not implement|is not installed)"):
        make_vector_env("PassiveVisualMatch-Short-v0", 2, backend="envpool")
    monkeypatch.setattr(envs.vector, "envpool_installed", lambda: False)
    with pytest.raises(ValueError, match=r"is not installed \(pip install 'gated-rl\[envpool\]'\)"):
        make_vector_env("MiniGrid-MemoryS7-v0", 2, backend="envpool")
    env = make_vector_env("MiniGrid-MemoryS7-v0", 2)  # auto falls back to gymnasium
    assert env.backend == "gymnasium"


def test_a_smaller_minigrid_view_reaches_the_torso():
    """``agent_view_size`` (an env option) shrinks the image the agent sees and its description;
    ``auto`` runs it on gymnasium, and EnvPool refuses env options in one line."""
    from agents.networks import Torso

    env = make_vector_env("MiniGrid-MemoryS9-v0", 2, seed=0, agent_view_size=3, actions="navigation")
    obs, _ = env.reset(seed=0)
    assert env.backend == "gymnasium" and obs["image"].shape == (2, 3, 3, 3)
    assert env.observation_description["image"]["shape"] == (3, 3, 3)
    torso = Torso(env.observation_description, 16)
    assert torso({k: torch.as_tensor(v) for k, v in obs.items()}).shape == (2, 16)
    with pytest.raises(ValueError, match="backend 'envpool' takes no env options, got agent_view_size"):
        make_vector_env("MiniGrid-MemoryS9-v0", 2, backend="envpool", agent_view_size=3)
