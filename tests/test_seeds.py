"""agents/seeds.py: the env seeds of different runs, resumes, actors, videos and benchmarks never share
an episode stream."""

from __future__ import annotations

from itertools import pairwise

from agents.seeds import actor_seed, benchmark_seed, training_seed, video_seed

NUM_ENVS = 256  # a vector env made with seed E seeds its envs E, E + 1, ..., E + NUM_ENVS - 1


def overlapping(bases: list[int]) -> bool:
    return any(b - a < NUM_ENVS for a, b in pairwise(sorted(bases)))


def test_runs_resumes_actors_videos_and_benchmarks_get_disjoint_streams():
    """Runs of seeds 0-19, each at updates 0-4 (a resume) with four actors, their first videos and the
    benchmarks' seeds: no two share an env seed. With the run's seed itself as the base (until
    2026-12-05), seeds 0 and 1 shared 15 of 16 envs. An actor's stream is not a run's whose seed is
    the actor's base (numpy's SeedSequence pads short entropy with zeros: the kinds' tags keep
    [x, 0] and [x] apart)."""
    bases = []
    for seed in range(20):
        for updates in range(5):
            base = training_seed(seed, updates)
            bases += [base] + [actor_seed(base, i) for i in range(4)]
        bases += [video_seed(seed, k) for k in range(3)] + [benchmark_seed(seed)]
    assert len(bases) == 20 * (5 * 5 + 3 + 1) and not overlapping(bases)
    assert all(0 <= b and b + 2**20 <= 2**31 for b in bases)  # base + env index stays an int32
    assert actor_seed(5, 0) != training_seed(5, 1)


def test_seeds_do_not_change_unnoticed():
    """Pinned values: a change of the hash's input layout or of numpy's SeedSequence would change the
    episodes of every run; this says so."""
    assert (training_seed(5, 0), training_seed(0, 0)) == (1228828801, 870814207)
    assert actor_seed(1228828801, 0) == 403710920
    assert (video_seed(0, 1), benchmark_seed(0)) == (1515336414, 1108230854)
