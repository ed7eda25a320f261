"""A scripted env with known episode boundaries, registered on import (``module:EnvName-vN``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: Episode k has length LENGTHS[k % 3] and ends by termination if k is even, truncation if odd.
LENGTHS = (3, 5, 2)
#: Episode k's last info says ``success = SUCCESS[k % 4]`` (None: no verdict, no key).
SUCCESS = (True, None, False, None)


class ScriptedEpisodes(gym.Env):
    """Observation ``[episode index, step in episode]``; reward = 1 + step index."""

    def __init__(self):
        self.observation_space = spaces.Box(0, 1000, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.episode = -1
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.array([self.episode, 0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= LENGTHS[self.episode % 3]
        terminated = end and self.episode % 2 == 0
        truncated = end and self.episode % 2 == 1
        obs = np.array([self.episode, self.t], np.float32)
        verdict = SUCCESS[self.episode % 4]
        info = {"success": verdict} if end and verdict is not None else {}
        return obs, float(self.t), terminated, truncated, info


if "ScriptedEpisodes-v0" not in gym.registry:
    gym.register("ScriptedEpisodes-v0", entry_point=ScriptedEpisodes)
