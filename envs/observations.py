"""Observation handling: every env the agents see returns a flat ``dict`` of numpy arrays, and a plain
description of it (``describe_observation``) from which ``agents/`` builds its torso without
importing this package.

The description maps each key to a dict of plain values:

* ``{"kind": "minigrid_image", "shape": (7, 7, 3), "num_values": (11, 6, 4)}``: MiniGrid's symbolic
  grid (object, colour, state index per cell), uint8; ``num_values`` bounds each channel.
* ``{"kind": "discrete", "n": N}``: an integer in ``[0, N)``, int64.
* ``{"kind": "multi_discrete", "nvec": (n1, n2, ...)}``: integers, int64.
* ``{"kind": "tokens", "shape": (L,), "vocab_size": V}``: a word-id sequence (0 = padding), int64.
* ``{"kind": "box", "shape": (...)}``: a float32 vector or array.

A discrete or multi-discrete key may also carry ``"vocabulary": name`` (``share_vocabulary``): its
values are symbols of a vocabulary that other keys naming it share, so the value 3 of one such key
is the same symbol as the value 3 of another (the cue and the candidates of ``ShuffledCueRecall``).
"""

from __future__ import annotations

import zlib

import gymnasium as gym
import numpy as np
from gymnasium import spaces

MISSION_LENGTH = 16
MISSION_VOCAB = 512
# len(OBJECT_TO_IDX), len(COLOR_TO_IDX), 4: states are 0-2, but a fully observed agent cell holds
# its direction (0-3) there.
MINIGRID_IMAGE_VALUES = (11, 6, 4)


def share_vocabulary(space: spaces.Space, name: str) -> spaces.Space:
    """Mark a ``Discrete`` or ``MultiDiscrete`` space's values as symbols of the vocabulary ``name``
    (see the module docstring); returns the space."""
    if not isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        raise ValueError(f"a shared vocabulary needs a Discrete or MultiDiscrete space, got {space}")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a vocabulary name must be an identifier (letters, digits, _), got {name!r}")
    space.vocabulary = name
    return space


def describe_space(space: spaces.Space) -> dict:
    """The description of one (non-dict) observation space."""
    vocabulary = getattr(space, "vocabulary", None)
    shared = {"vocabulary": vocabulary} if vocabulary is not None else {}
    if isinstance(space, spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n), **shared}
    if isinstance(space, spaces.MultiDiscrete):
        return {"kind": "multi_discrete", "nvec": tuple(int(n) for n in space.nvec.ravel()), **shared}
    if isinstance(space, spaces.MultiBinary):
        return {"kind": "box", "shape": tuple(np.atleast_1d(space.n).tolist())}
    if isinstance(space, spaces.Box):
        return {"kind": "box", "shape": tuple(space.shape)}
    raise ValueError(
        f"unsupported observation space {space}; supported: Box, Discrete, MultiDiscrete, "
        "MultiBinary, and Dict/Tuple of those"
    )


def describe_observation(space: spaces.Space) -> dict[str, dict]:
    """Description (see module docstring) of the dict observations ``DictObservation`` produces."""
    if not isinstance(space, spaces.Dict):
        raise ValueError(f"expected the Dict space of a wrapped env, got {space}")
    out = {}
    for key, sub in space.spaces.items():
        if key == "image" and getattr(sub, "minigrid_symbolic", False):
            out[key] = {"kind": "minigrid_image", "shape": tuple(sub.shape),
                        "num_values": MINIGRID_IMAGE_VALUES}
        elif key == "mission":
            out[key] = {"kind": "tokens", "shape": tuple(sub.shape), "vocab_size": MISSION_VOCAB}
        else:
            out[key] = describe_space(sub)
    return out


def mission_tokens(text: str) -> np.ndarray:
    """Word ids of a mission string, ``[MISSION_LENGTH]`` int64; a stable hash per word, 0 = pad."""
    ids = np.zeros(MISSION_LENGTH, dtype=np.int64)
    words = text.lower().replace(",", " ").split()[:MISSION_LENGTH]
    for i, word in enumerate(words):
        ids[i] = 1 + zlib.crc32(word.encode()) % (MISSION_VOCAB - 1)
    return ids


def minigrid_image_space(view: int = 7) -> spaces.Box:
    """The symbolic image of a ``view`` x ``view`` window (MiniGrid's ``agent_view_size``)."""
    space = spaces.Box(0, 255, (view, view, 3), np.uint8)
    space.minigrid_symbolic = True  # marks the symbolic encoding for describe_observation
    return space


def _flatten_spaces(space: spaces.Space, prefix: str = "") -> dict[str, spaces.Space]:
    if isinstance(space, spaces.Dict):
        items = space.spaces.items()
    elif isinstance(space, spaces.Tuple):
        items = ((str(i), s) for i, s in enumerate(space.spaces))
    else:
        return {prefix or "obs": space}
    out = {}
    for key, sub in items:
        out.update(_flatten_spaces(sub, f"{prefix}.{key}" if prefix else key))
    return out


def _flatten_values(value, space: spaces.Space, prefix: str = "") -> dict:
    if isinstance(space, spaces.Dict):
        items = ((k, value[k], s) for k, s in space.spaces.items())
    elif isinstance(space, spaces.Tuple):
        items = ((str(i), value[i], s) for i, s in enumerate(space.spaces))
    else:
        return {prefix or "obs": value}
    out = {}
    for key, sub_value, sub in items:
        out.update(_flatten_values(sub_value, sub, f"{prefix}.{key}" if prefix else key))
    return out


def _is_float_box(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating)


class DictObservation(gym.ObservationWrapper):
    """Any supported observation space -> a flat ``Dict`` of arrays (non-dict spaces under ``"obs"``,
    nested keys joined by dots); float values as float32, discrete values as int64, integer Boxes
    (images, word ids) unchanged."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._source = env.observation_space
        flat = _flatten_spaces(self._source)
        converted = {}
        for key, sub in flat.items():
            describe_space(sub)  # raises a clear error for unsupported spaces
            if isinstance(sub, spaces.MultiBinary) or _is_float_box(sub):
                converted[key] = spaces.Box(-np.inf, np.inf, sub.shape, np.float32)
            else:
                converted[key] = sub
        self.observation_space = spaces.Dict(converted)

    def observation(self, observation):
        flat = _flatten_values(observation, self._source)
        out = {}
        for key, sub in self.observation_space.spaces.items():
            value = flat[key]
            if _is_float_box(sub):
                out[key] = np.asarray(value, dtype=np.float32)
            elif isinstance(sub, (spaces.Discrete, spaces.MultiDiscrete)):
                out[key] = np.asarray(value, dtype=np.int64)
            else:
                out[key] = value
        return out


MINIGRID_ACTION_SETS = {"all": 7, "navigation": 3}
"""MiniGrid action sets: all seven actions, or only turn left, turn right, forward (ids 0, 1, 2).
Memory tasks need only the three; the other four do nothing there except waste exploration."""
MINIGRID_ACTION_CHOICES = ("auto", *MINIGRID_ACTION_SETS)
"""What ``actions`` may name: a set, or ``auto`` (``minigrid_actions_for``)."""


def check_minigrid_actions(actions: str) -> None:
    """``ValueError`` naming the allowed choices unless ``actions`` is one of them."""
    if actions not in MINIGRID_ACTION_CHOICES:
        raise ValueError(f"unknown actions {actions!r}; expected one of {', '.join(MINIGRID_ACTION_CHOICES)}")


def minigrid_actions_for(env: gym.Env, actions: str) -> str:
    """The action set ``actions`` names for ``env``: ``auto`` is ``navigation`` on MiniGrid's Memory
    tasks (pickup, drop, toggle and done change nothing there: the env turns pickup into toggle, and
    neither object toggles) and ``all`` elsewhere; a set's own name is itself."""
    check_minigrid_actions(actions)
    if actions != "auto":
        return actions
    from minigrid.envs import MemoryEnv

    return "navigation" if isinstance(env.unwrapped, MemoryEnv) else "all"


def minigrid_success(reward: float, terminated: bool) -> bool:
    """MiniGrid's verdict on an ended episode: its only positive reward is for reaching the goal, so
    a termination with reward > 0 succeeded; a wrong object or the time limit did not."""
    return bool(terminated and reward > 0)


class MiniGridObservation(gym.ObservationWrapper):
    """MiniGrid's observation -> ``{"image": uint8 [V, V, 3], "direction": int64}`` (V: the env's
    ``agent_view_size``, 7 by default) plus
    ``"mission"`` word ids when ``mission`` is ``"tokens"``, or ``"auto"`` and the task's mission
    varies between episodes (MiniGrid's Memory tasks have one fixed mission, so it is dropped).

    ``actions="navigation"`` keeps only the first three actions (left, right, forward); the ids do not
    change, so the wrapped env receives the agent's action as it is. ``auto`` (the default): see
    ``minigrid_actions_for``. An episode's last ``info`` gets
    ``"success"`` (``minigrid_success``)."""

    def __init__(self, env: gym.Env, mission: str = "auto", actions: str = "auto"):
        super().__init__(env)
        self.action_space = spaces.Discrete(MINIGRID_ACTION_SETS[minigrid_actions_for(env, actions)])
        if mission not in ("auto", "tokens", "drop"):
            raise ValueError(f"unknown mission {mission!r}; expected one of auto, tokens, drop")
        if mission == "auto":
            mission_space = env.observation_space.spaces.get("mission")
            varies = getattr(mission_space, "ordered_placeholders", None) is not None
            mission = "tokens" if varies else "drop"
        self.keep_mission = mission == "tokens"
        view = env.observation_space.spaces["image"].shape[0]  # agent_view_size, 7 unless set
        obs_spaces = {"image": minigrid_image_space(view), "direction": spaces.Discrete(4)}
        if self.keep_mission:
            obs_spaces["mission"] = spaces.Box(0, MISSION_VOCAB - 1, (MISSION_LENGTH,), np.int64)
        self.observation_space = spaces.Dict(obs_spaces)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if terminated or truncated:
            info = {**info, "success": minigrid_success(reward, terminated)}
        return obs, reward, terminated, truncated, info

    def observation(self, observation):
        out = {"image": observation["image"], "direction": np.int64(observation["direction"])}
        if self.keep_mission:
            out["mission"] = mission_tokens(observation["mission"])
        return out
