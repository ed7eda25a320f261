"""EnvPool and gymnasium backends must agree on MiniGrid: spaces, encoding, limits, outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from envs import make_env, make_vector_env
from envs.vector import envpool_installed

pytestmark = pytest.mark.skipif(not envpool_installed(), reason="the envpool extra is not installed")
MEMORY_IDS = ["MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS13-v0", "MiniGrid-MemoryS17Random-v0"]
LEFT, RIGHT, FORWARD = 0, 1, 2


def both(env_id, num_envs, seed=0):
    return [make_vector_env(env_id, num_envs, seed, backend=b) for b in ("gymnasium", "envpool")]


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_same_spaces_and_description(env_id):
    gym_env, pool_env = both(env_id, 2)
    assert gym_env.observation_description == pool_env.observation_description
    assert gym_env.single_action_space == pool_env.single_action_space
    a, _ = gym_env.reset(seed=0)
    b, _ = pool_env.reset()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape


def test_same_first_observations():
    """The start views (object, colour, state per cell) are the same set on both backends."""
    views = []
    for env in both("MiniGrid-MemoryS7-v0", 64):
        seen = set()
        obs, _ = env.reset()
        for _ in range(40):  # FORWARD runs into the wall or the cue; LEFT/RIGHT cycle episodes
            step = env.step(np.full(64, LEFT))
            seen.update(img.tobytes() for img in step.obs["image"][step.is_first])
        seen.update(img.tobytes() for img in obs["image"])
        views.append(seen)
    assert views[0] == views[1]


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_same_time_limit_ends_in_truncation(env_id):
    limit = make_env(env_id).unwrapped.max_steps  # 5 * size**2 in MiniGrid's Memory tasks
    for env in both(env_id, 2):
        env.reset()
        truncated_at = []
        for t in range(limit + 3):
            step = env.step(np.full(2, LEFT))  # turning in place never ends an episode
            assert not step.terminated.any() and (step.reward == 0).all()
            if step.truncated.any():
                assert step.truncated.all()
                truncated_at.append(t + 1)
        assert truncated_at == [limit], env.backend
        assert env.pop_episodes() == [(0.0, limit, False), (0.0, limit, False)]  # time-out: failure


def outcomes(env, steps, seed):
    rng = np.random.default_rng(seed)
    env.reset()
    for _ in range(steps):
        env.step(rng.choice([LEFT, RIGHT, FORWARD, FORWARD], size=env.num_envs))
    episodes = env.pop_episodes()
    returns = np.array([r for r, _, _ in episodes])
    lengths = np.array([n for _, n, _ in episodes])
    assert [success for _, _, success in episodes] == list(returns > 0), env.backend
    return returns, lengths


def test_same_outcome_distribution_under_a_scripted_policy():
    """A biased random walk: success rate, mean return and mean length agree statistically."""
    (r_gym, n_gym), (r_pool, n_pool) = (outcomes(env, 600, seed=3)
                                        for env in both("MiniGrid-MemoryS7-v0", 32))
    for a, b in ((r_gym > 0, r_pool > 0), (r_gym, r_pool), (n_gym, n_pool)):
        a, b = a.astype(float), b.astype(float)
        se = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * se + 1e-9, (a.mean(), b.mean())
    assert (r_gym >= 0).all() and (r_gym <= 1).all() and (r_pool >= 0).all() and (r_pool <= 1).all()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_navigation_actions_and_a_cue_reading_oracle_wins(backend):
    """With the three navigation actions, an agent that starts next to the cue (x = 1: four open cells
    ahead, then the wall), reads it, walks to the hallway's end and turns to the matching object wins
    every such episode: the cue is in the view and the actions keep their ids on both backends."""
    env = make_vector_env("MiniGrid-MemoryS7-v0", 1, 0, backend=backend, actions="navigation")
    assert env.single_action_space.n == 3
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    wins = episodes = 0
    while episodes < 12:
        image = obs["image"][0]  # [x, y, 3] view; the agent is at (3, 6) looking towards y = 0
        ahead = [int(image[3, 6 - k, 0]) for k in range(1, 6)]
        if ahead == [1, 1, 1, 1, 2]:  # empty x4, then wall: the x = 1 start, cue on the left
            cue = image[2, 6, 0]
            for _ in range(4):
                step = env.step(np.array([FORWARD]))
            left_object = step.obs["image"][0][1, 6, 0]
            env.step(np.array([LEFT if left_object == cue else RIGHT]))
            step = env.step(np.array([FORWARD]))
            assert step.terminated[0]
            wins += int(step.reward[0] > 0)
            episodes += 1
        else:
            step = env.step(rng.integers(3, size=1))
            while not (step.terminated[0] or step.truncated[0]):
                step = env.step(rng.integers(3, size=1))
        obs = env.step(np.array([LEFT])).obs  # the reset step
    assert wins == episodes
