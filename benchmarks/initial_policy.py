"""How an untrained agent's policy leans: the mean action probabilities of the network a run with
``--seed S`` starts from, over the first steps of some episodes of its task.

    python benchmarks/initial_policy.py --env MiniGrid-MemoryS13Random-v0 --seeds 0,1,2,3,4
        [--config PRESET] [--episodes 20] [--steps 32] [--option head_size=0 ...]

The network is the one ``train_agent.py`` builds for the same flags (the program's defaults, or the
preset's), drawn under ``torch.manual_seed(S)`` as a run's is; episodes are played with sampled
actions and the core state carried (``agents.rollout.EpisodePlayer``), the same episodes for every
seed. A seed whose start leans towards one action explores differently from the first update on
(docs/AGENTS.md, MiniGrid section).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.rollout import EpisodePlayer  # noqa: E402
from benchmarks.learner_speed import add_config_flags, initial_network, requested_config  # noqa: E402
from configs import ConfigError, TrainConfig  # noqa: E402
from envs.registry import make_env  # noqa: E402


def lean(config: TrainConfig, seed: int, episodes: int, steps: int) -> tuple[np.ndarray, float]:
    """``(mean action probabilities [A], mean policy entropy in nats)`` of the network seed ``seed``
    starts from, over the first ``steps`` steps of ``episodes`` episodes (env seeds 100, 101, ...)."""
    model = initial_network(config, seed)
    model.eval()
    env = make_env(config.env.env, **config.env.env_options)
    torch.manual_seed(1000)  # the same action samples for every network
    player, probs = EpisodePlayer(model, env), []
    try:
        for episode in range(episodes):
            for step, (logits, _) in enumerate(player.steps(seed=100 + episode)):
                probs.append(torch.softmax(logits, -1).numpy())
                if step + 1 == steps:
                    break
    finally:
        env.close()
    p = np.array(probs)
    return p.mean(0), float(-(p * np.log(p)).sum(-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_flags(parser)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        config = requested_config(args)
        seeds = [int(s) for s in args.seeds.split(",")]
    except (ConfigError, ValueError) as error:
        raise SystemExit(f"initial_policy: {error}") from None
    print("| seed | mean action probabilities | mean entropy (nats) |")
    print("|---:|---|---:|")
    for seed in seeds:
        probs, entropy = lean(config, seed, args.episodes, args.steps)
        print(f"| {seed} | {' '.join(f'{p:.3f}' for p in probs)} | {entropy:.3f} |")


if __name__ == "__main__":
    main()
