"""agents/seeds.py: the env seeds of different runs, resumes and actors never share an episode stream."""

from __future__ import annotations

from agents.seeds import actor_seed, training_seed

NUM_ENVS = 256  # a vector env made with seed E seeds its envs E, E + 1, ..., E + NUM_ENVS - 1


def overlapping(bases: list[int]) -> bool:
    bases = sorted(bases)
    return any(b - a < NUM_ENVS for a, b in zip(bases, bases[1:]))


def test_runs_resumes_and_actors_get_disjoint_streams():
    """Runs of seeds 0-19, each at updates 0-4 (a resume) with four actors: no two vector envs share an
    env seed. With the run's seed itself as the base (until 2026-12-05), seeds 0 and 1 shared 15 of 16."""
    bases = []
    for seed in range(20):
        for updates in range(5):
            base = training_seed(seed, updates)
            bases += [base] + [actor_seed(base, i) for i in range(4)]
    assert len(bases) == 20 * 5 * 5 and not overlapping(bases)
    assert all(0 <= b and b + 2**20 <= 2**31 for b in bases)  # base + env index stays an int32


def test_seeds_are_reproducible():
    assert training_seed(3, 7) == training_seed(3, 7) and actor_seed(11, 2) == actor_seed(11, 2)
    assert training_seed(3, 7) != training_seed(7, 3)
