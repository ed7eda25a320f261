"""Temporally extended exploration for the actors: now and then, repeat one random action for a while.

A policy sure of its first moves rarely samples a run of moves the other way: six in a row at
P = 0.1 each happen once in a million tries, so whatever lies six moves off its path is never found,
and nothing on the way there pays. At every step where it is not already repeating, an env starts a
repeat with probability ``epsilon``: one action drawn uniformly, taken for a length drawn uniformly
from ``1..max_length`` steps, cut short where the episode ends. This is the idea of ez-greedy
(Dabney, Ostrovski and Barreto, "Temporally-Extended epsilon-Greedy Exploration", ICLR 2021), which
draws lengths from a zeta distribution; a uniform length makes the runs of six or more that a
13-cell corridor needs common rather than rare.

How the learner uses a repeated step (marked in the unroll's ``repeated``): the actor logs the
policy's own logits as its behaviour logits, so V-trace's value targets follow the repeat as if the
policy had chosen it (its importance weights, against a behaviour certain of the action, would cut
the trace at the first step) and a run that pays raises the values of the states on its way; the
policy gradient leaves the repeated steps out, so the policy learns from its own actions, pulled
towards the run only through those values. (Trained on the repeats as well, the policy is pushed
off every action a repeat took that did not pay, and its entropy falls; docs/AGENTS.md.) What
remains biased: the value targets are those of the policy with its repeats, which take a share
``m / (m + (1 - epsilon) / epsilon)`` of the steps, ``m = (max_length + 1) / 2`` the mean length
(5% for 0.01 and 10). Actors use it; evaluation and the probes do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class RepeatExploration:
    """The settings; picklable, so a runtime can hand them to actor processes and Ray actors."""

    epsilon: float
    max_length: int = 10

    def __post_init__(self):
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"repeat exploration's epsilon must be in (0, 1], got {self.epsilon!r}")
        if not (isinstance(self.max_length, int) and not isinstance(self.max_length, bool)
                and self.max_length >= 1):
            raise ValueError(f"repeat exploration's max_length must be a positive integer, "
                             f"got {self.max_length!r}")

    def repeater(self, num_envs: int, num_actions: int, seed: int) -> ActionRepeater:
        return ActionRepeater(self, num_envs, num_actions, seed)


class ActionRepeater:
    """The repeats running in ``num_envs`` envs; ``apply`` overrides the policy's actions with them."""

    def __init__(self, settings: RepeatExploration, num_envs: int, num_actions: int, seed: int):
        self.settings, self.num_actions = settings, num_actions
        self.rng = np.random.default_rng((seed, 0xE2))  # not the stream of the envs seeded with seed
        self.action = np.zeros(num_envs, np.int64)
        self.left = np.zeros(num_envs, np.int64)  # steps of the running repeat still to take; 0: none

    def apply(self, actions: Tensor, is_first: np.ndarray) -> tuple[Tensor, Tensor]:
        """``actions [B]`` (the policy's, for the observations just seen) -> ``(actions to take [B],
        repeated [B] bool: which of them are a repeat's)``. ``is_first [B]``: that observation starts
        an episode (a repeat ends with its episode)."""
        self.left[np.asarray(is_first, bool)] = 0
        start = (self.left == 0) & (self.rng.random(self.left.shape[0]) < self.settings.epsilon)
        count = int(start.sum())
        if count:
            self.action[start] = self.rng.integers(0, self.num_actions, count)
            self.left[start] = self.rng.integers(1, self.settings.max_length + 1, count)
        repeating = self.left > 0
        self.left[repeating] -= 1
        mask = torch.from_numpy(repeating)
        if not repeating.any():
            return actions, mask
        return torch.where(mask, torch.from_numpy(self.action), actions), mask
