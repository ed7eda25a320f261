"""``benchmarks/initial_policy.py``: the mean action probabilities of the network a seed starts from."""

from __future__ import annotations

import numpy as np

from benchmarks.initial_policy import lean
from configs import TrainConfig


def test_lean_is_a_distribution_and_uniform_with_a_uniform_policy_start():
    config = TrainConfig().with_overrides({"env": "MiniGrid-MemoryS7-v0", "hidden_size": 16})
    probs, entropy = lean(config, seed=1, episodes=2, steps=5)
    assert probs.shape == (3,) and np.isclose(probs.sum(), 1.0) and 0 < entropy <= np.log(3) + 1e-6
    flat, entropy = lean(config.with_overrides({"uniform_policy_start": True}), seed=1, episodes=2, steps=5)
    np.testing.assert_allclose(flat, np.full(3, 1 / 3), rtol=1e-6)
    assert np.isclose(entropy, np.log(3))
