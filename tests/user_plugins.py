"""A user core and a user env, loaded by import path (``module:Name``) in the command-line tests.

``PairCore``'s state is a plain tuple of two tensors, as the README's recipe for a core allows (no
NamedTuple). ``NanReward-v0`` gives a NaN reward from step ``nan_after`` of each env on, as an env
with a bug would. ``StuckStep-v0`` hangs inside ``step`` from step ``stuck_after`` on, as a simulator
that never answers would.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from cores import Core


class PairCore(Core):
    """``h`` is a leaky average of a linear map of the input, ``c`` a running sum of ``h``; the state
    is the plain tuple ``(h, c)``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.output_size = input_size, hidden_size
        self.proj = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size, device=None):
        zeros = torch.zeros(batch_size, self.output_size, device=device, dtype=self.proj.weight.dtype)
        return (zeros, zeros.clone())

    def step(self, x, state):
        h, c = state
        h = 0.5 * h + 0.5 * torch.tanh(self.proj(x))
        c = 0.9 * c + 0.1 * h
        return h + c, (h, c)


class NanReward(gym.Env):
    """Observation ``[step / 10]``; reward 1 for action 1, and NaN from step ``nan_after`` of the env's
    life on (counting across episodes of 5 steps)."""

    def __init__(self, nan_after: int = 100):
        self.observation_space = spaces.Box(0, 1, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.nan_after, self.steps, self.t = nan_after, 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        self.steps += 1
        reward = float("nan") if self.steps >= self.nan_after else float(action)
        return np.array([self.t / 10], np.float32), reward, self.t >= 5, False, {}


class StuckStep(NanReward):
    """``NanReward``'s task with finite rewards, whose ``step`` never returns from step ``stuck_after``
    of the env's life on (it sleeps in Python, so a signal handler can still run)."""

    def __init__(self, stuck_after: int = 100):
        super().__init__(nan_after=2**62)
        self.stuck_after = stuck_after

    def step(self, action):
        while self.steps >= self.stuck_after:
            time.sleep(0.05)
        return super().step(action)


if "NanReward-v0" not in gym.registry:
    gym.register("NanReward-v0", entry_point=NanReward)
if "StuckStep-v0" not in gym.registry:
    gym.register("StuckStep-v0", entry_point=StuckStep)
