"""``benchmarks/profile_loop.py`` runs every stage and the async loop (a smoke test: rates, not speed)."""

from __future__ import annotations

from benchmarks.profile_loop import async_loop, stage_rates
from configs import load_config


def test_every_stage_and_the_async_loop_report_a_rate():
    config = load_config("recall_easy").with_overrides(
        {"hidden_size": 16, "num_envs": 2, "unroll_length": 5})
    rates = stage_rates(config, seconds=0.1)
    assert set(rates) == {"env", "policy", "actor", "learner"}
    assert all(rate > 0 for rate in rates.values())
    loop = async_loop(config, seconds=0.5)
    assert loop["async loop"] > 0
    assert 0.0 <= loop["learner waiting"] <= 1.0
    assert loop["policy lag"] >= 0
