"""benchmarks/mixed_init.py: a network whose named parts come from another seed's draw."""

from __future__ import annotations

import pytest
import torch

from agents.checkpoint import load_weights
from benchmarks.learner_speed import build_agent
from benchmarks.mixed_init import main
from configs import TrainConfig


def drawn(seed: int, config: TrainConfig) -> dict:
    torch.manual_seed(seed)
    return build_agent(config)[0].state_dict()


def test_named_parts_come_from_the_other_seed_and_the_rest_from_the_runs(tmp_path):
    out = tmp_path / "mixed.pt"
    main(["--env", "MiniGrid-MemoryS7-v0", "--seed", "1", "--from-seed", "0", "--parts", "core,policy",
          "--option", "hidden_size=16", "--out", str(out)])
    weights, _, _ = load_weights(out)  # what --init-from reads
    config = TrainConfig().with_overrides({"env": "MiniGrid-MemoryS7-v0", "hidden_size": 16})
    own, other = drawn(1, config), drawn(0, config)
    assert weights.keys() == own.keys()
    for key, value in weights.items():
        source = other if key.split(".")[0] in ("core", "policy") else own
        assert torch.equal(value, source[key]), key
    # the two draws differ, so the loop above tells which seed each part came from
    for key in ("core.layers.0.weight_ih", "policy.weight", "torso.mix.0.weight"):
        assert not torch.equal(own[key], other[key]), key


def test_a_part_the_network_lacks_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="part 'cor' is not a module with weights of this network; "
                                          "expected one of torso, core"):
        main(["--env", "MiniGrid-MemoryS7-v0", "--seed", "1", "--from-seed", "0", "--parts", "cor",
              "--out", str(tmp_path / "x.pt")])
    assert not (tmp_path / "x.pt").exists()
