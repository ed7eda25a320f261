"""Passive/Active Visual Match: API conformity, determinism, an oracle, and memoryless chance."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import VisualMatchEnv, available_envs, make_env
from envs.visual_match import APPLE, BALL

RIGHT, DOWN, LEFT, UP = 0, 1, 2, 3
IDS = [i for i in available_envs() if "VisualMatch" in i]


def visible_balls(obs) -> list[tuple[int, int, int]]:
    """(dx, dy, colour) of every ball in view, relative to the agent."""
    image = obs["image"]
    return [(int(x) - 3, int(y) - 3, int(image[x, y, 1])) for x, y in np.argwhere(image[..., 0] == BALL)]


class Oracle:
    """Remembers the cue colour (the first lone ball it sees), then walks to the matching pad."""

    def __init__(self):
        self.cue = None
        self.search = [LEFT] * 3 + [RIGHT] * 6  # active cue room: look at one end, then the other

    def act(self, obs) -> int:
        balls = visible_balls(obs)
        if self.cue is None and len(balls) == 1:
            self.cue = balls[0][2]
        if len(balls) >= 2:  # the pad row
            dx, dy, _ = next((b for b in balls if b[2] == self.cue), balls[0])
            return RIGHT if dx > 0 else LEFT if dx < 0 else UP
        if self.cue is None and self.search:
            return self.search.pop(0)
        return DOWN


def leftmost_pad(obs) -> int:
    """Memoryless: go to the leftmost pad."""
    balls = visible_balls(obs)
    if len(balls) < 2:
        return DOWN
    dx = min(b[0] for b in balls)
    return RIGHT if dx > 0 else LEFT if dx < 0 else UP


def red_pad(obs) -> int:
    """Memoryless: go to the red pad if there is one, else the rightmost."""
    balls = visible_balls(obs)
    if len(balls) < 2:
        return DOWN
    dx = next((b[0] for b in balls if b[2] == 0), max(b[0] for b in balls))
    return RIGHT if dx > 0 else LEFT if dx < 0 else UP


def play(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    total, info, terminated = 0.0, {}, False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += reward
        assert not truncated
    return total, info["success"]


def test_every_variant_is_registered_and_passes_check_env():
    assert len(IDS) == 10
    for env_id in IDS:
        check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("active", [False, True])
def test_oracle_reaches_the_maximum_return(active):
    env = VisualMatchEnv(delay=20, active=active, apple_reward=0.0)
    for seed in range(40):
        oracle = Oracle()
        total, correct = play(env, oracle.act, seed)
        assert correct and total == 1.0


@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize("policy", [leftmost_pad, red_pad])
def test_memoryless_policies_are_at_chance(active, policy):
    env = VisualMatchEnv(delay=10, active=active, num_pads=3)
    n = 600
    wins = sum(play(env, policy, seed)[1] for seed in range(n))
    p, sigma = 1 / 3, np.sqrt((1 / 3) * (2 / 3) / n)
    assert abs(wins / n - p) < 4 * sigma


def test_active_cue_is_out_of_view_at_the_start():
    env = VisualMatchEnv(active=True)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert visible_balls(obs) == []


def test_probe_views_follow_the_cue():
    """``phase``, ``cue_side``, ``cue_room_offset`` and ``cue_in_view`` (what
    benchmarks/memory_probe.py reads): walking three cells towards the cue brings it into view,
    walking away keeps it out, and it is gone once the delay begins."""
    env = VisualMatchEnv(active=True, delay=3)
    sides = set()
    for seed in range(12):
        env.reset(seed=seed)
        side = env.cue_side()
        sides.add(side)
        assert env.phase == "cue" and not env.cue_in_view()
        away, towards = (2, 0) if side == 1 else (0, 2)
        assert env.cue_room_offset() == 0
        for _ in range(3):
            env.step(away)
        assert not env.cue_in_view() and env.cue_room_offset() == -3 * side
        env.step(1)  # south, into the corridor's wall: no move
        assert env.cue_room_offset() == -3 * side
        for _ in range(6):
            obs, *_ = env.step(towards)
        assert env.cue_in_view() and visible_balls(obs) and env.cue_room_offset() == 3 * side
        while env.phase == "cue":
            env.step(1)
        assert env.phase == "delay" and not env.cue_in_view()
    assert sides == {-1, 1}
    passive = VisualMatchEnv()
    passive.reset(seed=0)
    assert passive.cue_side() == 0 and passive.cue_in_view()


def test_apples_pay_and_regrow():
    env = VisualMatchEnv(delay=200, apple_reward=0.5, num_apples=4)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = [env.step(int(rng.integers(4)))[1] for _ in range(150)]
    assert sum(r == 0.5 for r in rewards) >= 3
    assert (env._grid[..., 0] == APPLE).sum() == 4  # every eaten apple regrew


def test_seeding_is_deterministic():
    env = make_env("ActiveVisualMatch-Short-v0")
    actions = np.random.default_rng(1).integers(4, size=60)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=7)
        trace = [obs["image"].copy()]
        for a in actions:
            obs, reward, terminated, _, _ = env.step(int(a))
            trace.append(obs["image"].copy())
            if terminated:
                break
        runs.append(np.stack(trace))
    assert np.array_equal(runs[0], runs[1])


def test_episode_length_follows_the_delay():
    for delay in (10, 100, 500):
        env = VisualMatchEnv(delay=delay, recall_steps=4)
        env.reset(seed=0)
        steps, terminated = 0, False
        while not terminated:
            _, _, terminated, _, _ = env.step(DOWN)  # never touches a pad
            steps += 1
        assert steps == env.cue_steps + delay + 4


def test_min_delay_draws_each_episodes_delay():
    env = VisualMatchEnv(delay=12, min_delay=3, recall_steps=1)
    lengths = set()
    for seed in range(60):
        env.reset(seed=seed)
        steps, terminated = 0, False
        while not terminated:
            _, _, terminated, _, _ = env.step(DOWN)
            steps += 1
        lengths.add(steps - env.cue_steps - 1)
    assert lengths == set(range(3, 13))  # every delay of 3..12, none outside


def test_render_and_bad_arguments():
    env = make_env("PassiveVisualMatch-Medium-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    with pytest.raises(ValueError, match="num_pads must be between 2 and 4, got 7"):
        VisualMatchEnv(num_pads=7)
    with pytest.raises(ValueError, match="delay must be between"):
        VisualMatchEnv(delay=0)
    with pytest.raises(ValueError, match=r"min_delay must be between 1 and delay \(15\) steps, got 20"):
        VisualMatchEnv(delay=15, min_delay=20)
