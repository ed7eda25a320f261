"""Where every env seed of a run comes from, in one place, so that no two streams of episodes overlap.

A run with ``--seed S`` seeds torch, numpy and Python with ``S``. Its envs get:

- training, update ``U`` (0 for a new run, the checkpoint's count after a resume, so a resumed run
  sees fresh episodes): ``S + 1000 * U`` for the sync runtime and the runtimes' probes, and
  ``S + 1000 * U + 7919 * (i + 1)`` for actor ``i`` of the async and Ray runtimes (a prime stride, so
  the actors' streams do not meet each other's or the learner's);
- evaluation (``--eval``): ``EVAL_SEED`` for the vector env, whatever the run's seed, so evaluations
  of different runs play the same episodes;
- videos: ``S + 20000 + k`` for episode ``k``.
"""

from __future__ import annotations

EVAL_SEED = 10_000
_RESUME_STRIDE = 1000
_ACTOR_STRIDE = 7919
_VIDEO_OFFSET = 20_000


def training_seed(seed: int, updates: int) -> int:
    """The env seed of a run (``--seed``) that starts training at update ``updates``."""
    return seed + _RESUME_STRIDE * updates


def actor_seed(seed: int, actor_index: int) -> int:
    """The env seed of actor ``actor_index`` (from 0) of a runtime started with ``seed``."""
    return seed + _ACTOR_STRIDE * (actor_index + 1)


def video_seed(seed: int, episode: int) -> int:
    """The seed of video episode ``episode`` (from 0) of a run with ``--seed seed``."""
    return seed + _VIDEO_OFFSET + episode
