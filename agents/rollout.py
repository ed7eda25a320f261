"""Unroll buffers and the actor that fills them.

Layout of one unroll of ``T`` transitions (``T + 1`` steps, index ``t`` of every ``[T + 1, B]`` field):

- ``obs[t]``: the observation x_t; ``reward[t]``, ``terminated[t]``, ``truncated[t]`` came with it;
  ``is_first[t]``: x_t starts an episode.
- ``last_action[t]``: the action taken before x_t in the same episode (0 where ``is_first``); the
  previous reward the network sees is ``reward[t]`` (0 where ``is_first``).
- ``action[t]``, ``behaviour_logits[t]``: what the actor did at x_t (unused at ``t = T``);
  ``repeated[t]``: that action was a repeat of exploration's (``agents.exploration``), not sampled.
- ``initial_state``: the core state *before* consuming x_0, so the learner's re-run of the core from
  it sees exactly what the actor saw.

Step ``T`` of one unroll is step 0 of the next (it supplies the bootstrap value), so the actor keeps
the state from before x_T as the next unroll's ``initial_state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cores.base import State, map_state, rebuild_state

from .exploration import RepeatExploration


class StopRequested(Exception):  # noqa: N818 (control flow, not an error)
    """A runtime's ``next_batch(should_stop)`` stopped waiting for unrolls because ``should_stop()``
    said the run is being stopped; the learner's model is untouched, so the run may save."""


#: The ``[T + 1, B, ...]`` fields of ``Unroll`` besides ``obs``.
STEP_FIELDS = ("reward", "terminated", "truncated", "is_first", "last_action", "action", "behaviour_logits",
               "repeated")


@dataclass
class Unroll:
    """Tensors of one or more unrolls; every field ``[T + 1, B, ...]`` except ``initial_state``."""

    obs: dict[str, Tensor]
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    is_first: Tensor
    last_action: Tensor
    action: Tensor
    behaviour_logits: Tensor
    repeated: Tensor
    initial_state: State

    @classmethod
    def allocate(cls, T: int, example_obs: dict[str, np.ndarray], num_actions: int,
                 initial_state: State) -> Unroll:
        B = next(iter(example_obs.values())).shape[0]
        obs = {k: torch.zeros((T + 1, *v.shape), dtype=torch.from_numpy(np.asarray(v)).dtype)
               for k, v in example_obs.items()}
        return cls(
            obs=obs,
            reward=torch.zeros(T + 1, B),
            terminated=torch.zeros(T + 1, B, dtype=torch.bool),
            truncated=torch.zeros(T + 1, B, dtype=torch.bool),
            is_first=torch.zeros(T + 1, B, dtype=torch.bool),
            last_action=torch.zeros(T + 1, B, dtype=torch.long),
            action=torch.zeros(T + 1, B, dtype=torch.long),
            behaviour_logits=torch.zeros(T + 1, B, num_actions),
            repeated=torch.zeros(T + 1, B, dtype=torch.bool),
            initial_state=map_state(torch.zeros_like, initial_state),
        )

    def clone(self) -> Unroll:
        """A copy that owns its memory (to release a shared buffer)."""
        return Unroll(
            obs={k: v.clone() for k, v in self.obs.items()},
            **{name: getattr(self, name).clone() for name in STEP_FIELDS},
            initial_state=map_state(torch.clone, self.initial_state),
        )

    def to(self, device) -> Unroll:
        """The same unroll on ``device`` (itself when it is already there)."""
        if self.reward.device == torch.device(device):
            return self
        return Unroll(
            obs={k: v.to(device, non_blocking=True) for k, v in self.obs.items()},
            **{name: getattr(self, name).to(device, non_blocking=True) for name in STEP_FIELDS},
            initial_state=map_state(lambda x: x.to(device, non_blocking=True), self.initial_state),
        )

    def share_memory_(self) -> Unroll:
        for tensor in self._tensors():
            tensor.share_memory_()
        return self

    def _tensors(self) -> list[Tensor]:
        return [*self.obs.values(), *(getattr(self, name) for name in STEP_FIELDS), *self.initial_state]

    @staticmethod
    def concat(unrolls: list[Unroll]) -> Unroll:
        """Join unrolls along the batch axis (state leaves along their batch axis 0)."""
        if len(unrolls) == 1:
            return unrolls[0]
        first = unrolls[0]
        return Unroll(
            obs={k: torch.cat([u.obs[k] for u in unrolls], dim=1) for k in first.obs},
            **{name: torch.cat([getattr(u, name) for u in unrolls], dim=1) for name in STEP_FIELDS},
            # rebuild_state, not type(state)(*leaves): a plain tuple takes one iterable, not the leaves
            initial_state=rebuild_state(first.initial_state, [
                torch.cat(parts, dim=0) for parts in zip(*(u.initial_state for u in unrolls), strict=True)]),
        )


def _to_tensor(value: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(value))


def choose_actions(logits: Tensor, greedy: bool, generator: torch.Generator | None = None) -> Tensor:
    """``logits [B, A]`` -> actions ``[B]``: sampled from the softmax, or the argmax with ``greedy``."""
    if greedy:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)


class Actor:
    """Steps a vector env with a policy, carrying the core state across unrolls.

    ``env`` follows ``envs.VectorEnv`` (``reset``, ``step`` -> obs/reward/terminated/truncated/
    is_first, ``num_envs``); it is passed in, never imported, so this module does not depend on envs.
    """

    def __init__(self, env, model, seed: int, generator: torch.Generator | None = None,
                 exploration: RepeatExploration | None = None):
        """``exploration``: repeats of random actions among the sampled ones (``agents.exploration``);
        never with ``greedy`` steps."""
        self.env, self.model = env, model
        self.num_envs = env.num_envs
        obs, is_first = env.reset(seed=seed)
        B = self.num_envs
        self.obs = obs
        self.reward = np.zeros(B, np.float32)
        self.terminated = np.zeros(B, bool)
        self.truncated = np.zeros(B, bool)
        self.is_first = np.asarray(is_first, bool)
        self.last_action = np.zeros(B, np.int64)
        self.state = model.initial_state(B)  # the state before consuming self.obs
        self.generator = generator
        self.repeater = exploration.repeater(B, model.num_actions, seed) if exploration else None
        self.repeated = torch.zeros(B, dtype=torch.bool)  # the last step's actions that were repeats

    def _write(self, unroll: Unroll, t: int) -> None:
        for key, value in self.obs.items():
            unroll.obs[key][t] = _to_tensor(value)
        unroll.reward[t] = _to_tensor(self.reward)
        unroll.terminated[t] = _to_tensor(self.terminated)
        unroll.truncated[t] = _to_tensor(self.truncated)
        unroll.is_first[t] = _to_tensor(self.is_first)
        unroll.last_action[t] = _to_tensor(self.last_action)

    @torch.inference_mode()
    def collect(self, unroll: Unroll) -> None:
        """Fill ``unroll`` (``T + 1`` steps) in place, continuing from where the last one ended."""
        T = unroll.action.shape[0] - 1
        for leaf, value in zip(unroll.initial_state, self.state, strict=True):
            leaf.copy_(value)
        for t in range(T + 1):
            self._write(unroll, t)
            if t == T:
                break  # x_T is x_0 of the next unroll; its action is chosen there
            action, logits = self.step()
            unroll.action[t] = action
            unroll.behaviour_logits[t] = logits
            unroll.repeated[t] = self.repeated

    @torch.inference_mode()
    def step(self, greedy: bool = False) -> tuple[Tensor, Tensor]:
        """Act once in every env (sampled, or argmax with ``greedy``), carrying the core state and
        swapping in the initial state where an episode starts; ``(action [B], logits [B, A])``."""
        obs = {k: _to_tensor(v) for k, v in self.obs.items()}
        # A non-finite reward from the env goes into the unroll as it is (the learner stops the run
        # and names it); the policy acts on 0 in its place rather than fail on NaN probabilities.
        reward = np.nan_to_num(self.reward, nan=0.0, posinf=0.0, neginf=0.0)
        out, self.state = self.model.step(obs, _to_tensor(self.last_action), _to_tensor(reward),
                                          _to_tensor(self.is_first), self.state)
        action = choose_actions(out.logits, greedy, self.generator)
        if self.repeater is not None and not greedy:
            action, self.repeated = self.repeater.apply(action, self.is_first)
        elif self.repeater is not None:  # a greedy step ends every repeat
            self.repeater.left[:] = 0
            self.repeated = torch.zeros_like(self.repeated)
        actions = action.numpy()
        step = self.env.step(actions)
        self.obs = step.obs
        self.is_first = np.asarray(step.is_first, bool)
        self.reward = np.where(self.is_first, 0.0, step.reward).astype(np.float32)
        self.terminated = np.asarray(step.terminated, bool)
        self.truncated = np.asarray(step.truncated, bool)
        self.last_action = np.where(self.is_first, 0, actions).astype(np.int64)
        return action, out.logits


class EpisodePlayer:
    """Plays single episodes of one unbatched env (``reset``/``step`` of gymnasium, dict observations)
    with ``model``, carrying the core state from the initial state as ``Actor.step`` does for a vector
    env. For callers that look at the env between steps (rendering, reading positions).

    ``steps(seed)`` resets the env and yields ``(logits [A], action)`` before the env takes each
    action, so the env is as the policy saw it; meanwhile ``observation`` (``{key: [1, ...]}``) and
    ``output`` (the model's ``AgentOutput``, batch of one) are what the policy saw and gave at that
    step. Once it is exhausted, ``reward``, ``terminated``, ``truncated`` and ``info`` are those of
    the episode's last step.
    """

    def __init__(self, model, env, greedy: bool = False):
        self.model, self.env, self.greedy = model, env, greedy
        self.reward, self.terminated, self.truncated, self.info = 0.0, False, False, {}
        self.observation, self.output = None, None

    def steps(self, seed: int):
        obs, _ = self.env.reset(seed=seed)
        state = self.model.initial_state(1)
        last_action, reward = torch.zeros(1, dtype=torch.long), torch.zeros(1)
        is_first = torch.ones(1, dtype=torch.bool)
        self.terminated = self.truncated = False
        while not (self.terminated or self.truncated):
            batch = {key: _to_tensor(value)[None] for key, value in obs.items()}
            with torch.inference_mode():
                out, state = self.model.step(batch, last_action, reward, is_first, state)
            self.observation, self.output = batch, out
            logits = out.logits[0]
            action = int(choose_actions(out.logits, self.greedy)[0])
            yield logits, action
            obs, r, self.terminated, self.truncated, self.info = self.env.step(action)
            self.reward = float(r)
            last_action, reward = torch.tensor([action]), torch.tensor([self.reward])
            is_first = torch.zeros(1, dtype=torch.bool)
