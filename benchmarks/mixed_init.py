"""An initial network made of two seeds' draws: which part of a seed's starting weights a failure follows.

    python benchmarks/mixed_init.py --env MiniGrid-MemoryS13Random-v0 --seed 1 --from-seed 0 \\
        --parts core --out core0.pt [--config PRESET] [--option head_size=0 ...]
    python train_agent.py --env MiniGrid-MemoryS13Random-v0 --core ur_lstm --seed 1 --init-from core0.pt

The network is the one ``train_agent.py`` builds for the same flags (the program's defaults, or the
preset's, with each ``--option FIELD=VALUE`` as the run's flag, the core too: ``--option
core=gru``), drawn under ``torch.manual_seed(seed)`` as a run's is; the named parts (top-level
modules of ``agents.networks.ActorCritic``: torso, core, observation_gate, view_match, head, policy,
baseline, action_value, ...) are replaced by the network drawn under ``--from-seed``. The file is a
checkpoint ``--init-from`` loads. The run with ``--seed S --init-from FILE`` then has the episodes,
action samples and every other weight of seed S (its RNG draws its own network first, as without the
flag), so it differs from seed S's run in the named parts alone (docs/AGENTS.md, MiniGrid section).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.learner_speed import add_config_flags, initial_network, requested_config  # noqa: E402
from configs import ConfigError, TrainConfig  # noqa: E402


def mixed_weights(config: TrainConfig, seed: int, from_seed: int, parts: list[str]) -> dict:
    """The state dict of ``config``'s network drawn under ``seed``, with the modules named in
    ``parts`` taken from the one drawn under ``from_seed``; ``ValueError`` (one line) for a part the
    network lacks."""
    model = initial_network(config, seed)
    base = model.state_dict()
    names = [name for name, module in model.named_children() if any(True for _ in module.parameters())]
    unknown = [p for p in parts if p not in names]
    if unknown:
        raise ValueError(f"part {unknown[0]!r} is not a module with weights of this network; "
                         f"expected one of {', '.join(names)}")
    other = initial_network(config, from_seed).state_dict()
    return {key: (other[key] if key.split(".")[0] in parts else value).clone() for key, value in base.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_flags(parser)
    parser.add_argument("--seed", type=int, required=True, help="the run's seed: every part not named")
    parser.add_argument("--from-seed", type=int, required=True, help="the seed of the named parts")
    parser.add_argument("--parts", required=True, help="comma-separated module names, e.g. core,view_match")
    parser.add_argument("--out", required=True, help="the checkpoint file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not Path(args.out).parent.is_dir():
        raise SystemExit(f"mixed_init: --out {args.out!r}: no folder {str(Path(args.out).parent)!r}")
    try:
        config = requested_config(args)
        parts = [p for p in args.parts.split(",") if p]
        if not parts:
            raise ValueError(f"--parts names no module: {args.parts!r}")
        weights = mixed_weights(config, args.seed, args.from_seed, parts)
    except (ConfigError, ValueError) as error:
        raise SystemExit(f"mixed_init: {error}") from None
    torch.save({"model": weights, "frames": 0, "updates": 0}, args.out)
    print(f"wrote {args.out}: seed {args.seed}'s network with {args.parts} from seed {args.from_seed}")


if __name__ == "__main__":
    main()
