"""Cue recall tasks: API conformity, episode structure, an oracle that remembers, memoryless chance."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import CueRecallEnv, available_envs, make_env, make_vector_env
from envs.recall import CUE_PHASE, DELAY_PHASE, QUERY_PHASE, RECALL_IDS


def play(env: CueRecallEnv, policy, episodes: int, seed: int = 0) -> list[float]:
    """Returns of ``episodes`` episodes; ``policy(obs, cue)`` gets the cue seen at the first step."""
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        cue, total, done = int(obs["symbol"]), 0.0, False
        while not done:
            obs, reward, done, truncated, _ = env.step(policy(obs, cue))
            total += reward
            assert not truncated
        returns.append(total)
    return returns


def oracle(obs, cue) -> int:
    if "candidates" in obs:
        return int(np.flatnonzero(obs["candidates"] == cue)[0]) if obs["phase"] == QUERY_PHASE else 0
    return cue - 1


@pytest.mark.parametrize("env_id", list(RECALL_IDS))
def test_registered_and_gymnasium_conform(env_id):
    assert env_id in available_envs()
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("delay", [0, 1, 15, 30])
@pytest.mark.parametrize("options", [{}, {"noise": True}, {"shuffled": True}, {"num_cues": 8}])
def test_episode_has_a_cue_a_delay_and_one_rewarded_query(delay, options):
    env = CueRecallEnv(delay=delay, **options)
    obs, _ = env.reset(seed=3)
    phases, symbols = [int(obs["phase"])], [int(obs["symbol"])]
    rewards, done, steps, info = [], False, 0, {}
    while not done:
        obs, reward, done, _, info = env.step(env.action_space.sample())
        rewards.append(reward)
        steps += 1
        if not done:
            phases.append(int(obs["phase"]))
            symbols.append(int(obs["symbol"]))
    assert steps == delay + 2
    assert phases == [CUE_PHASE] + [DELAY_PHASE] * delay + [QUERY_PHASE]
    assert 1 <= symbols[0] <= env.num_cues
    if options.get("noise"):
        assert all(1 <= s <= env.num_cues for s in symbols[1:-1])
    else:
        assert symbols[1:] == [0] * (delay + 1)
    assert all(r == 0.0 for r in rewards[:-1]) and rewards[-1] in (0.0, 1.0)
    assert info["success"] == (rewards[-1] == 1.0)


@pytest.mark.parametrize("options", [{}, {"noise": True}, {"shuffled": True},
                                     {"shuffled": True, "num_cues": 8}])
def test_an_agent_that_remembers_the_cue_always_wins(options):
    assert play(CueRecallEnv(delay=10, **options), oracle, 50) == [1.0] * 50


def test_without_memory_the_shuffled_query_is_chance():
    """A fixed slot (or a fixed cue name) is right in 1 of num_cues episodes."""
    for options in ({"shuffled": True}, {}):
        returns = play(CueRecallEnv(delay=3, num_cues=4, **options), lambda obs, cue: 0, 2000)
        assert abs(np.mean(returns) - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 2000)


def test_candidates_are_a_fresh_permutation_shown_only_at_the_query():
    env = CueRecallEnv(delay=2, num_cues=5, shuffled=True)
    orders = set()
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        for _ in range(2):
            assert not obs["candidates"].any()
            obs, *_ = env.step(0)
        obs, *_ = env.step(0)
        assert sorted(obs["candidates"]) == [1, 2, 3, 4, 5]
        orders.add(tuple(obs["candidates"]))
    assert len(orders) > 20


def test_same_seed_same_episode():
    a, b = CueRecallEnv(delay=4, noise=True, shuffled=True), CueRecallEnv(delay=4, noise=True, shuffled=True)
    for env in (a, b):
        env.reset(seed=11)
    for _ in range(6):
        oa, ob = a.step(1), b.step(1)
        assert all(np.array_equal(oa[0][k], ob[0][k]) for k in oa[0]) and oa[1:] == ob[1:]


@pytest.mark.parametrize("bad, message", [
    ({"delay": -1}, "delay must be an integer from 0 to 100000, got -1"),
    ({"delay": 2.5}, "delay must be an integer"),
    ({"num_cues": 1}, "num_cues must be an integer from 2 to 64, got 1"),
])
def test_bad_options_are_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        CueRecallEnv(**bad)
    with pytest.raises(ValueError, match="delay|num_cues"):
        make_env("CueRecall-v0", **bad)


def test_vector_env_reports_success_and_autoresets():
    env = make_vector_env("ShuffledCueRecall-v0", 3, seed=0, delay=1)
    obs, is_first = env.reset(seed=0)
    assert is_first.all() and obs["candidates"].shape == (3, 4)
    for _ in range(3):
        step = env.step(np.zeros(3, dtype=np.int64))
    assert step.terminated.all()
    episodes = env.pop_episodes()
    assert len(episodes) == 3 and all(e.length == 3 and e.success == (e.ret == 1.0) for e in episodes)
    assert env.step(np.zeros(3, dtype=np.int64)).is_first.all()
    env.close()
