"""``benchmarks/peers.py --profile-sb3`` finds every part it reports (needs the ``bench`` extra, so
it is skipped where sb3-contrib is not installed, e.g. in CI)."""

from __future__ import annotations

import pytest

pytest.importorskip("sb3_contrib")

from benchmarks.peers import PROFILE_PARTS, recurrent_ppo_profile  # noqa: E402


def test_recurrent_ppo_profile_finds_every_part():
    parts = recurrent_ppo_profile("popgym-RepeatPreviousEasy-v0", frames=1024)
    assert set(parts) == {part for part, _, _ in PROFILE_PARTS}
    learn = parts["learn"][1]
    assert all(0 < seconds <= learn for _, seconds in parts.values())
    assert parts["torch.lstm"][0] > 0
