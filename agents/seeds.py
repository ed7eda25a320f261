"""Where every env seed of a run comes from, in one place, so that no two streams of episodes overlap.

A run with ``--seed S`` seeds torch, numpy and Python with ``S``. A vector env made with seed ``E``
seeds its env ``i`` with ``E + i`` (gymnasium and EnvPool alike), so the seeds handed to vector envs
are spread over ``[0, 2**31 - 2**20)`` by hashing, never ``S`` itself: with ``E = S`` the runs of
seeds 0 and 1 would share 15 of their 16 envs' episode streams (as they did until 2026-12-05), and
"3 seeds" would be three draws of the same episodes. Its envs get:

- training, update ``U`` (0 for a new run, the checkpoint's count after a resume, so a resumed run
  sees fresh episodes): ``training_seed(S, U)``, a hash of ``(S, U)``, for the sync runtime and the
  runtimes' probes, and ``actor_seed(that, i)``, a hash of it and ``i``, for actor ``i`` of the
  async and Ray runtimes;
- evaluation (``--eval``): ``EVAL_SEED`` for the vector env, whatever the run's seed, so evaluations
  of different runs play the same episodes;
- videos: ``S + 20000 + k`` for episode ``k`` (one env each).

Two streams of ``num_envs`` consecutive seeds meet with a chance of about ``2 * num_envs / 2**31``.
"""

from __future__ import annotations

import numpy as np

EVAL_SEED = 10_000
_VIDEO_OFFSET = 20_000
_ACTORS = 1  # a word that keeps actor streams apart from the learner's (S, U) streams
_SPAN = 2**31 - 2**20  # a base plus an env index below 2**20 stays a non-negative int32


def training_seed(seed: int, updates: int) -> int:
    """The vector env seed of a run (``--seed``) that starts training at update ``updates``."""
    return _spread(seed, updates)


def actor_seed(seed: int, actor_index: int) -> int:
    """The vector env seed of actor ``actor_index`` (from 0) of a runtime started with ``seed``."""
    return _spread(seed, _ACTORS, actor_index)


def video_seed(seed: int, episode: int) -> int:
    """The seed of video episode ``episode`` (from 0) of a run with ``--seed seed``."""
    return seed + _VIDEO_OFFSET + episode


def _spread(*words: int) -> int:
    """A seed in ``[0, _SPAN)`` hashed from the non-negative integers ``words``."""
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(1, dtype=np.uint64)[0]
    return int(state % _SPAN)
