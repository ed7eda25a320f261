"""Cue recall: the smallest task that needs memory over a chosen delay.

An episode is ``delay + 2`` steps:

1. **Cue** (step 0): ``symbol`` shows the cue, one of ``num_cues`` symbols (1..K), uniformly drawn.
2. **Delay** (``delay`` steps): ``symbol`` is 0 (blank) or, with ``noise``, a random symbol of the same
   alphabet each step, which the agent must not mistake for the cue.
3. **Query** (the last step): the action names the cue and the episode ends (a termination) with
   reward 1 if it is right, else 0; the last ``info`` has ``"success"``. Actions before the query do
   nothing and earn nothing.

With ``shuffled`` the query also shows ``candidates``, the K symbols in a fresh random order, and the
action picks the *slot* that holds the cue: the policy must compare what it remembers with what it
sees, instead of mapping each cue to a fixed action. A policy without memory gets ``1 / num_cues``
either way.

Observations: ``{"phase": int (0 cue, 1 delay, 2 query), "symbol": int in [0, K]}`` plus, with
``shuffled``, ``"candidates": int [K]`` (all 0 before the query). Actions: ``Discrete(K)``.
``symbol`` and ``candidates`` share the vocabulary ``"symbols"`` (``envs.observations.share_vocabulary``):
the same value is the same symbol in both.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .observations import share_vocabulary

CUE_PHASE, DELAY_PHASE, QUERY_PHASE = 0, 1, 2
SYMBOLS = "symbols"  # the vocabulary of the cue and the candidates


class CueRecallEnv(gym.Env):
    """The cue recall task (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, delay: int = 15, num_cues: int = 4, noise: bool = False, shuffled: bool = False):
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 100_000:
            raise ValueError(f"delay must be an integer from 0 to 100000, got {delay!r}")
        if not isinstance(num_cues, int) or isinstance(num_cues, bool) or not 2 <= num_cues <= 64:
            raise ValueError(f"num_cues must be an integer from 2 to 64, got {num_cues!r}")
        self.delay, self.num_cues = delay, num_cues
        self.noise, self.shuffled = bool(noise), bool(shuffled)
        obs = {"phase": spaces.Discrete(3),
               "symbol": share_vocabulary(spaces.Discrete(num_cues + 1), SYMBOLS)}
        if self.shuffled:
            obs["candidates"] = share_vocabulary(spaces.MultiDiscrete([num_cues + 1] * num_cues), SYMBOLS)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Discrete(num_cues)
        self._t = 0
        self._cue = 1
        self._order = np.arange(1, num_cues + 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._cue = int(self.np_random.integers(1, self.num_cues + 1))
        return self._observation(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; expected an integer in [0, {self.num_cues})")
        if self._t > self.delay:  # the query step
            chosen = int(self._order[int(action)]) if self.shuffled else int(action) + 1
            correct = chosen == self._cue
            return self._observation(), float(correct), True, False, {"success": correct}
        self._t += 1
        if self._t > self.delay and self.shuffled:
            self._order = self.np_random.permutation(np.arange(1, self.num_cues + 1))
        return self._observation(), 0.0, False, False, {}

    def _observation(self) -> dict:
        if self._t == 0:
            phase, symbol = CUE_PHASE, self._cue
        elif self._t <= self.delay:
            phase = DELAY_PHASE
            symbol = int(self.np_random.integers(1, self.num_cues + 1)) if self.noise else 0
        else:
            phase, symbol = QUERY_PHASE, 0
        obs = {"phase": phase, "symbol": symbol}
        if self.shuffled:
            shown = phase == QUERY_PHASE
            obs["candidates"] = (self._order if shown else np.zeros(self.num_cues, np.int64)).astype(np.int64)
        return obs


#: Registered ids and their constructor arguments (delay and num_cues can be changed by env options).
RECALL_IDS = {
    "CueRecall-v0": {},
    "NoisyCueRecall-v0": {"noise": True},
    "ShuffledCueRecall-v0": {"shuffled": True},
}


def register_recall() -> None:
    """Register the ``RECALL_IDS`` with gymnasium."""
    for env_id, kwargs in RECALL_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="envs.recall:CueRecallEnv", kwargs=kwargs)
