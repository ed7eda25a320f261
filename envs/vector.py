"""Batched environments with one semantics for every backend.

``make_vector_env`` returns a ``VectorEnv``; each ``step(actions [B])`` returns a ``Transition`` with,
per env: the next observation, the reward, ``terminated``, ``truncated``, and ``is_first`` (this
observation starts an episode).

Autoreset is *next-step*, as in gymnasium 1.x and EnvPool: when an episode ends at step t (its last
observation is returned, with ``terminated`` or ``truncated`` set), the call at step t+1 ignores its
action and returns the first observation of the next episode with ``is_first`` set, reward 0 and both
end flags clear. The learner therefore sees the final observation of a truncated episode (to bootstrap
from) and must mask the transition into an ``is_first`` observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from .observations import MISSION_LENGTH, describe_observation, minigrid_success, mission_tokens
from .registry import is_minigrid, make_env, resolve

BACKENDS = ("auto", "gymnasium", "envpool")
VECTORIZATIONS = ("sync", "async")


@dataclass
class Transition:
    """One batched step; every array has the env batch ``B`` first."""

    obs: dict[str, np.ndarray]
    reward: np.ndarray  # [B] float32
    terminated: np.ndarray  # [B] bool
    truncated: np.ndarray  # [B] bool
    is_first: np.ndarray  # [B] bool


class Episode(NamedTuple):
    """A finished episode. ``success``: the task's own verdict where the env gives one in its last
    ``info["success"]`` (MiniGrid: reached the goal; visual match: recalled the cue), else None."""

    ret: float
    length: int
    success: bool | None = None


class VectorEnv:
    """``num_envs`` envs stepped as a batch (module docstring). Also tracks finished episodes:
    ``pop_episodes()`` returns the ``Episode``s finished since the last call."""

    def __init__(self, impl, backend: str, single_observation_space, action_space, converter=None):
        self._impl = impl
        self.backend = backend
        self.num_envs = impl.num_envs
        self.single_observation_space = single_observation_space
        self.single_action_space = action_space
        self.observation_description = describe_observation(single_observation_space)
        self._convert = converter or (lambda obs, info: obs)
        self._ended = np.zeros(self.num_envs, dtype=bool)
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._finished: list[Episode] = []

    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> ``(obs, is_first [B])``; env ``i`` is seeded with ``seed + i``."""
        obs, info = self._reset_impl(seed)
        self._ended[:] = False
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._convert(obs, info), np.ones(self.num_envs, dtype=bool)

    def _reset_impl(self, seed):
        return self._impl.reset(seed=seed)

    def step(self, actions) -> Transition:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape [{self.num_envs}], got {list(actions.shape)}")
        obs, reward, terminated, truncated, info = self._impl.step(actions)
        is_first = self._is_first(info)
        reward = np.asarray(reward, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        done = terminated | truncated
        success = self._success(info, reward, terminated, truncated) if done.any() else None
        self._track(reward, done, is_first, success)
        return Transition(self._convert(obs, info), reward, terminated, truncated, is_first)

    def _is_first(self, info) -> np.ndarray:
        return self._ended.copy()  # next-step autoreset: the call after an end returns a first obs

    def _success(self, info, reward, terminated, truncated) -> list[bool | None]:
        """Per env, ``info["success"]`` where this step's info has it (gymnasium's vector info: the
        values and a ``"_success"`` mask), else None."""
        if "success" not in info:
            return [None] * self.num_envs
        mask = info.get("_success", np.ones(self.num_envs, bool))
        return [bool(v) if m else None for v, m in zip(info["success"], mask, strict=True)]

    def _track(self, reward, done, is_first, success) -> None:
        self._returns[is_first] = 0.0
        self._lengths[is_first] = 0
        live = ~is_first
        self._returns[live] += reward[live]
        self._lengths[live] += 1
        for i in np.flatnonzero(done):
            self._finished.append(Episode(float(self._returns[i]), int(self._lengths[i]), success[i]))
        self._ended = done

    def pop_episodes(self) -> list[Episode]:
        finished, self._finished = self._finished, []
        return finished

    def close(self) -> None:
        self._impl.close()


class _EnvPoolVectorEnv(VectorEnv):
    """EnvPool marks the first observation of an episode with ``info["elapsed_step"] == 0``; its
    seeds are fixed when it is created (``make_vector_env``'s ``seed``), so ``reset`` takes none."""

    def _reset_impl(self, seed):
        if seed is not None and seed != self._seed:
            raise ValueError(
                f"EnvPool seeds are fixed at creation (seed={self._seed}); make a new env for "
                f"seed={seed}"
            )
        return self._impl.reset()

    def _is_first(self, info) -> np.ndarray:
        return np.asarray(info["elapsed_step"]) == 0

    def _success(self, info, reward, terminated, truncated) -> list[bool | None]:
        # EnvPool runs MiniGrid only; its info has no verdict, so give the one MiniGridObservation adds.
        return [minigrid_success(r, t) if t or tr else None
                for r, t, tr in zip(reward, terminated, truncated, strict=True)]


def envpool_installed() -> bool:
    try:
        import envpool  # noqa: F401
    except ImportError:
        return False
    return True


def envpool_supports(env_id: str) -> bool:
    """True if EnvPool is installed and implements ``env_id``."""
    if not envpool_installed() or not is_minigrid(env_id):
        return False
    import envpool

    return env_id in envpool.list_all_envs()


def make_vector_env(
    env_id: str,
    num_envs: int,
    seed: int = 0,
    *,
    backend: str = "auto",
    vectorization: str = "sync",
    mission: str = "auto",
    actions: str = "auto",
    num_threads: int = 0,
    **kwargs,
) -> VectorEnv:
    """``num_envs`` copies of ``env_id`` as one ``VectorEnv``, reset with ``seed``.

    ``backend``: ``envpool`` (C++ MiniGrid, needs the ``envpool`` extra), ``gymnasium`` (any id), or
    ``auto`` (EnvPool where it implements the id and no env kwargs are given, else gymnasium).
    ``vectorization`` (gymnasium backend): ``sync`` (one process) or ``async`` (a process per env).
    ``num_threads`` (EnvPool): worker threads, 0 = one per core. ``mission`` and ``actions``: see
    ``envs.make_env``; both backends apply them the same way.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if vectorization not in VECTORIZATIONS:
        raise ValueError(
            f"unknown vectorization {vectorization!r}; expected one of {', '.join(VECTORIZATIONS)}"
        )
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    name = resolve(env_id)
    if backend == "envpool" and kwargs:
        # Not forwarded: envpool 1.x's MiniGrid accepts agent_view_size but corrupts its heap with any
        # value but 7 ("double free or corruption" within 50 steps, MemoryS9, 2026-12-01).
        raise ValueError(f"backend 'envpool' takes no env options, got {', '.join(sorted(kwargs))}; "
                         "use backend gymnasium (auto picks it when env options are given)")
    if backend == "envpool" and not envpool_supports(name):
        why = "is not installed (pip install 'gated-rl[envpool]')" if not envpool_installed() else (
            f"does not implement {env_id!r}"
        )
        raise ValueError(f"backend 'envpool' {why}")
    if backend == "envpool" or (backend == "auto" and not kwargs and envpool_supports(name)):
        return _make_envpool(name, num_envs, seed, mission, actions, num_threads)
    return _make_gymnasium(env_id, num_envs, seed, vectorization, mission, actions, kwargs)


def _make_gymnasium(env_id, num_envs, seed, vectorization, mission, actions, kwargs) -> VectorEnv:
    def factory():
        return make_env(env_id, mission=mission, actions=actions, **kwargs)

    vector_cls = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
    impl = vector_cls([factory] * num_envs, autoreset_mode=AutoresetMode.NEXT_STEP)
    env = VectorEnv(impl, "gymnasium", impl.single_observation_space, impl.single_action_space)
    env.reset(seed=seed)
    return env


def _make_envpool(env_id, num_envs, seed, mission, actions, num_threads) -> VectorEnv:
    import envpool

    # The observation layout and action set both backends share; a smaller action set keeps the first
    # ids, so EnvPool takes the agent's actions unchanged.
    reference = make_env(env_id, mission=mission, actions=actions)
    keep_mission = "mission" in reference.observation_space.spaces
    impl = envpool.make(env_id, env_type="gymnasium", num_envs=num_envs, seed=seed,
                        num_threads=num_threads,
                        max_episode_steps=reference.unwrapped.max_steps)

    def convert(obs, info):
        out = {"image": obs["image"], "direction": obs["direction"].astype(np.int64)}
        if keep_mission:
            texts = (bytes(row).rstrip(b"\0").decode() for row in obs["mission"])
            out["mission"] = np.stack([mission_tokens(t) for t in texts]).reshape(-1, MISSION_LENGTH)
        return out

    env = _EnvPoolVectorEnv(impl, "envpool", reference.observation_space,
                            reference.action_space, converter=convert)
    env._seed = seed
    reference.close()
    env.reset()
    return env
