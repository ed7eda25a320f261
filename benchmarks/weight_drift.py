"""How far training moves the weights: relative change of each weight tensor between checkpoints.

    python benchmarks/weight_drift.py RUN/checkpoints/a.pt RUN/checkpoints/b.pt [c.pt ...]

For each pair of consecutive checkpoints (given in training order) and each floating-point tensor of
the model, prints ``|w_b - w_a| / |w_a|`` (Frobenius norms) and the frames between them. A policy that
has learned its task and keeps a constant learning rate keeps moving: with Adam each weight steps by
about the learning rate at every update whatever its gradient's size, so the weights random-walk.
Comparing this drift between runs that differ in learning rate shows how much of it the rate makes.
Checkpoints are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def drift(before: dict, after: dict) -> dict[str, float]:
    """``{name: |after - before| / |before|}`` over the floating-point tensors of two state dicts."""
    out = {}
    for name, old in before.items():
        if old.dtype.is_floating_point and name in after:
            out[name] = ((after[name] - old).norm() / old.norm().clamp_min(1e-12)).item()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="two or more, in training order")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give two or more checkpoints, in training order")
    loaded = []
    for path in args.checkpoints:
        try:
            loaded.append(torch.load(path, weights_only=True, map_location="cpu"))
        except (OSError, RuntimeError) as error:
            print(f"cannot read checkpoint {str(path)!r}: {error}", file=sys.stderr)
            return 2
    pairs = list(zip(loaded, loaded[1:], strict=False))
    changes = [drift(a["model"], b["model"]) for a, b in pairs]
    spans = [f"{a['frames']:,}->{b['frames']:,}" for a, b in pairs]
    width = max(len(name) for name in changes[0])
    print(f"{'tensor':{width}s}  " + "  ".join(f"{span:>21s}" for span in spans))
    for name in changes[0]:
        print(f"{name:{width}s}  " + "  ".join(f"{change.get(name, float('nan')):21.4f}" for change in changes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
