"""Environment ids: our own tasks, MiniGrid, POPGym (extra), any gymnasium id or ``module:Env-vN``."""

from __future__ import annotations

import difflib
import importlib

import gymnasium as gym

from .observations import DictObservation, MiniGridObservation, check_minigrid_actions
from .recall import RECALL_IDS, register_recall
from .visual_match import DELAYS, register_visual_match

POPGYM_PREFIX = "popgym-"
MINIGRID_MEMORY_IDS = (
    "MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS9-v0", "MiniGrid-MemoryS11-v0",
    "MiniGrid-MemoryS13-v0", "MiniGrid-MemoryS13Random-v0", "MiniGrid-MemoryS17Random-v0",
)
OWN_IDS = tuple(
    f"{name}-{variant}-v0" for name in ("PassiveVisualMatch", "ActiveVisualMatch")
    for variant in ("Easy", *DELAYS)
) + ("PassiveVisualMatch-v0", "ActiveVisualMatch-v0", *RECALL_IDS)


class MissingExtraError(ValueError):
    """An id needs an optional dependency that is not installed."""


def _register_known() -> None:
    import minigrid  # noqa: F401  (registers the MiniGrid ids)

    register_visual_match()
    register_recall()


def popgym_installed() -> bool:
    try:
        import popgym  # noqa: F401
    except ImportError:
        return False
    return True


def available_envs() -> list[str]:
    """The memory tasks this package offers: own tasks, MiniGrid memory tasks, POPGym when installed."""
    _register_known()
    ids = list(OWN_IDS) + list(MINIGRID_MEMORY_IDS)
    if popgym_installed():
        ids += sorted(k for k in gym.registry if k.startswith(POPGYM_PREFIX))
    return ids


def is_minigrid(env_id: str) -> bool:
    return env_id.startswith("MiniGrid-") or env_id.startswith("BabyAI-")


def resolve(env_id: str) -> str:
    """Make sure ``env_id`` is registered (importing what it needs); return the id for ``gym.make``.

    Raises ``ValueError`` naming the id and the closest known ids, or ``MissingExtraError`` naming the
    extra to install.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env id must be a non-empty string, got {env_id!r}")
    _register_known()
    if env_id.startswith(POPGYM_PREFIX) and not popgym_installed():
        raise MissingExtraError(
            f"env {env_id!r} needs POPGym: pip install 'gated-rl[popgym]'"
        )
    if env_id.startswith(POPGYM_PREFIX):
        importlib.import_module("popgym")
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"cannot import the module of env {env_id!r}: {error}") from None
        except Exception as error:  # the user's module itself fails: name it and its error, in one line
            raise ValueError(f"importing the module of env {env_id!r} raised "
                             f"{type(error).__name__}: {error}") from None
        if name not in gym.registry:
            raise ValueError(f"module {module!r} did not register an env named {name!r}")
        return name
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry) + list(OWN_IDS), n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ValueError(
            f"unknown env {env_id!r}{hint}; see envs.available_envs() for the memory tasks, "
            "or use any registered gymnasium id or 'module:EnvName-vN'"
        )
    return env_id


def make_env(env_id: str, *, mission: str = "auto", actions: str = "auto", render_mode: str | None = None,
             **kwargs) -> gym.Env:
    """A single env whose observations are a flat dict of arrays (see ``envs.observations``).

    MiniGrid only: ``mission`` ``auto`` keeps the mission as word ids when it varies, ``tokens``
    always, ``drop`` never; ``actions`` ``all`` (7), ``navigation`` (left, right, forward) or ``auto``
    (navigation on the Memory tasks, where the other four do nothing, all elsewhere).
    Other keyword arguments go to ``gymnasium.make``.
    """
    name = resolve(env_id)
    check_minigrid_actions(actions)
    if actions not in ("auto", "all") and not is_minigrid(name):
        raise ValueError(f"actions={actions!r} applies to MiniGrid ids only, not {env_id!r}")
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(name, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad argument for env {env_id!r}: {error}") from None
    except ValueError as error:
        if not kwargs:
            raise
        # a value the env could not use (delay='abc': "invalid literal for int()") names no option
        options = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        raise ValueError(f"bad argument for env {env_id!r} ({options}): {error}") from None
    if is_minigrid(name):
        env = MiniGridObservation(env, mission=mission, actions=actions)
    return DictObservation(env)


def env_delay(env_id: str, **kwargs) -> int | None:
    """The recall delay of the env that ``make_env(env_id, **kwargs)`` builds (its ``delay``
    attribute: visual match, cue recall), or None where it has none."""
    env = make_env(env_id, **kwargs)
    try:
        delay = getattr(env.unwrapped, "delay", None)
    finally:
        env.close()
    return delay if isinstance(delay, int) and not isinstance(delay, bool) else None
