"""Memory tasks behind one entry point.

    >>> from envs import make_vector_env
    >>> env = make_vector_env("MiniGrid-MemoryS7-v0", num_envs=16, seed=0)
    >>> obs, is_first = env.reset(seed=0)        # obs: {"image": [16, 7, 7, 3], "direction": [16]}
    >>> step = env.step(actions)                 # step.obs, .reward, .terminated, .truncated, .is_first
    >>> env.observation_description              # plain dict that agents build their torso from
"""

from .observations import describe_observation
from .recall import CueRecallEnv, register_recall
from .registry import MissingExtraError, available_envs, env_delay, make_env
from .vector import Episode, Transition, VectorEnv, envpool_supports, make_vector_env
from .visual_match import VisualMatchEnv, register_visual_match

register_visual_match()
register_recall()

__all__ = [
    "CueRecallEnv",
    "Episode",
    "MissingExtraError",
    "Transition",
    "VectorEnv",
    "VisualMatchEnv",
    "available_envs",
    "env_delay",
    "describe_observation",
    "envpool_supports",
    "make_env",
    "make_vector_env",
]
