"""Pick a runtime by name. Every runtime offers the same learner-facing interface:

``next_batch() -> Unroll`` (``[T + 1, num_envs * batch_size]``), ``publish(version)`` after each update,
``policy_lag() -> float``, ``pop_episodes() -> [(return, length, success)]``, ``frames_per_batch``, ``close()``.
"""

from __future__ import annotations

from .runtime_async import AsyncRuntime
from .runtime_sync import SyncRuntime

RUNTIMES = ("sync", "async", "ray")


def make_runtime(name: str, env_factory, model, unroll_length: int, batch_size: int, seed: int,
                 num_actors: int = 1, ray_address: str = "", model_factory=None, exploration=None):
    """``env_factory(seed) -> VectorEnv``; ``model`` is the learner's (any device);
    ``model_factory`` (ray): see ``RayRuntime``; ``exploration``: the actors' ``RepeatExploration``
    (``agents.exploration``) or ``None``."""
    if name == "sync":
        return SyncRuntime(env_factory, model, unroll_length, batch_size, seed, exploration=exploration)
    if name == "async":
        return AsyncRuntime(env_factory, model, unroll_length, batch_size, seed, num_actors=num_actors,
                            exploration=exploration)
    if name == "ray":
        from .runtime_ray import RayRuntime

        return RayRuntime(env_factory, model, unroll_length, batch_size, seed, num_actors=num_actors,
                          address=ray_address or None, model_factory=model_factory, exploration=exploration)
    raise ValueError(f"unknown runtime {name!r}; expected one of {', '.join(RUNTIMES)}")
