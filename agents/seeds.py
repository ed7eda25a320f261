"""Where every env seed of a run comes from, in one place, so that no two streams of episodes overlap.

A run with ``--seed S`` seeds torch, numpy and Python with ``S``. A vector env made with seed ``E``
seeds its env ``i`` with ``E + i`` (gymnasium and EnvPool alike), so the seeds handed to vector envs
are spread over ``[0, 2**31 - 2**20)`` by hashing, never ``S`` itself: with ``E = S`` the runs of
seeds 0 and 1 would share 15 of their 16 envs' episode streams (as they did until 2026-12-05), and
"3 seeds" would be three draws of nearly the same episodes. Its envs get:

- training, update ``U`` (0 for a new run, the checkpoint's count after a resume, so a resumed run
  sees fresh episodes): ``training_seed(S, U)``, a hash of ``(S, U)``, for the sync runtime and the
  runtimes' probes, and ``actor_seed(that, i)``, a hash of it and ``i``, for actor ``i`` of the
  async and Ray runtimes;
- evaluation (``--eval``): ``EVAL_SEED`` for the vector env, whatever the run's seed, so evaluations
  of different runs play the same episodes;
- videos: ``video_seed(S, k)``, a hash of ``(S, k)``, for episode ``k`` (one env each);
- benchmarks that train on a vector env of their own (``benchmarks/recall_supervised.py``):
  ``benchmark_seed(S)``.

Each kind of stream hashes a fixed number of words after a tag of its own (numpy's ``SeedSequence``
pads short entropy with zeros, so ``[x]`` and ``[x, 0]`` would give the same seed). Two streams of
``num_envs`` consecutive seeds meet with a chance of about ``2 * num_envs / 2**31``.
"""

from __future__ import annotations

import numpy as np

EVAL_SEED = 10_000
_TRAINING, _ACTORS, _VIDEOS, _BENCHMARKS = 1, 2, 3, 4  # the first word of each kind's hash
_SPAN = 2**31 - 2**20  # a base plus an env index below 2**20 stays a non-negative int32


def training_seed(seed: int, updates: int) -> int:
    """The vector env seed of a run (``--seed``) that starts training at update ``updates``."""
    return _spread(_TRAINING, seed, updates)


def actor_seed(seed: int, actor_index: int) -> int:
    """The vector env seed of actor ``actor_index`` (from 0) of a runtime started with ``seed``."""
    return _spread(_ACTORS, seed, actor_index)


def video_seed(seed: int, episode: int) -> int:
    """The seed of video episode ``episode`` (from 0) of a run with ``--seed seed``."""
    return _spread(_VIDEOS, seed, episode)


def benchmark_seed(seed: int) -> int:
    """The vector env seed of a benchmark's run with seed ``seed``."""
    return _spread(_BENCHMARKS, seed)


def _spread(tag: int, *words: int) -> int:
    """A seed in ``[0, _SPAN)`` hashed from a kind's ``tag`` and the non-negative integers ``words``
    (always as many for one tag)."""
    state = np.random.SeedSequence([tag, *(int(w) for w in words)]).generate_state(1, dtype=np.uint64)[0]
    return int(state % _SPAN)
