"""benchmarks/weight_drift.py: the relative change of each weight tensor between checkpoints."""

from __future__ import annotations

import torch

from benchmarks import weight_drift


def _checkpoint(path, frames, weight, bias):
    torch.save({"frames": frames, "model": {"layer.weight": weight, "layer.bias": bias,
                                            "steps": torch.tensor(3)}}, path)
    return str(path)


def test_drift_is_the_relative_change_of_each_floating_tensor(tmp_path, capsys):
    first = _checkpoint(tmp_path / "a.pt", 1000, torch.tensor([3.0, 4.0]), torch.tensor([1.0]))
    second = _checkpoint(tmp_path / "b.pt", 2000, torch.tensor([3.0, 4.5]), torch.tensor([1.0]))
    third = _checkpoint(tmp_path / "c.pt", 3500, torch.tensor([0.0, 0.0]), torch.tensor([2.0]))
    assert weight_drift.main([first, second, third]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "1,000->2,000" in lines[0] and "2,000->3,500" in lines[0]
    weight = lines[1].split()
    assert weight[0] == "layer.weight" and float(weight[1]) == 0.1  # |(0, 0.5)| / |(3, 4)|
    assert float(weight[2]) == 1.0  # all of it gone
    bias = lines[2].split()
    assert bias[0] == "layer.bias" and float(bias[1]) == 0.0 and float(bias[2]) == 1.0
    assert not any(line.startswith("steps") for line in lines)  # integer buffers are not weights


def test_an_unreadable_checkpoint_is_one_line(tmp_path, capsys):
    first = _checkpoint(tmp_path / "a.pt", 0, torch.ones(2), torch.ones(1))
    assert weight_drift.main([first, str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pt" in err
