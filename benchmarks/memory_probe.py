"""Does a MiniGrid Memory agent use the cue? Plays a run's latest checkpoint and reports what it does at
the junction, where the hallway meets the two objects.

    python benchmarks/memory_probe.py --logdir runs/minigrid_memory [--episodes 200]

Memory tasks (``MiniGrid-MemoryS7-v0`` ... ``S17``): the cue object sits in the start room at (1, H//2 - 1),
the agent starts facing away from it, and at the junction (hallway end + 1, H//2) it turns up or down
towards an object; stepping next to the matching one succeeds. Reported over sampled episodes (the
policy's own sampling, core state carried):
- success rate and mean episode length;
- ``looked back``: the share of episodes in which the agent faced the start room from the junction
  (in S7 the cue is in view from there, so a one-step memory suffices after it);
- ``saw the cue``: the share of episodes in which the cue object was in the agent's view at a step
  the policy acted on (an agent that never turns to see it has nothing to remember);
- ``P(forward)`` when facing an object from the junction, split by whether the agent had looked back
  and whether the object matches the cue. An agent that uses the cue goes forward towards the
  matching object and not towards the other; a stalled one goes forward alike to both.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.checkpoint import load_checkpoint  # noqa: E402
from agents.rollout import EpisodePlayer  # noqa: E402
from benchmarks.learner_speed import build_agent  # noqa: E402
from configs import load_run_config  # noqa: E402
from envs.registry import make_env  # noqa: E402

FORWARD = 2  # MiniGrid action ids: 0 left, 1 right, 2 forward
SOUTH, WEST, NORTH = 1, 2, 3  # MiniGrid agent_dir: 0 east, 1 south, 2 west, 3 north


def probe(logdir: Path, episodes: int, seed: int = 1000) -> dict:
    """``{"success", "length", "looked_back", "saw_cue", "p_forward": {(looked_back, matching): (mean,
    visits)}}``."""
    config = load_run_config(logdir / "config.yaml")
    if not config.env.env.startswith("MiniGrid-Memory"):
        raise SystemExit(f"memory_probe: {config.env.env!r} is not a MiniGrid Memory task")
    model, _ = build_agent(config)
    model.load_state_dict(load_checkpoint(logdir / "checkpoints" / "latest.pt")["model"])
    model.eval()
    torch.manual_seed(seed)  # the policy's sampling, so a rerun reports the same numbers
    env = make_env(config.env.env, **config.env.env_options)
    player = EpisodePlayer(model, env)
    successes, lengths, looked_back, saw_cue = [], [], [], []
    forward = defaultdict(list)
    for episode in range(episodes):
        looked, saw, steps = False, False, 0
        for logits, _ in player.steps(seed=seed + episode):
            grid = env.unwrapped  # the pose the policy acted on
            junction = (grid.success_pos[0], grid.height // 2)
            pose = tuple(int(v) for v in grid.agent_pos), int(grid.agent_dir)
            saw = saw or bool(grid.agent_sees(1, grid.height // 2 - 1))
            if pose == (junction, WEST):
                looked = True
            if pose[0] == junction and pose[1] in (NORTH, SOUTH):
                facing = grid.grid.get(junction[0], junction[1] + (-2 if pose[1] == NORTH else 2))
                cue = grid.grid.get(1, grid.height // 2 - 1)
                forward[(looked, type(facing) is type(cue))].append(float(torch.softmax(logits, -1)[FORWARD]))
            steps += 1
        successes.append(bool(player.info.get("success")))  # envs.observations.minigrid_success
        lengths.append(steps)
        looked_back.append(looked)
        saw_cue.append(saw)
    env.close()
    return {"success": float(np.mean(successes)), "length": float(np.mean(lengths)),
            "looked_back": float(np.mean(looked_back)), "saw_cue": float(np.mean(saw_cue)),
            "p_forward": {key: (float(np.mean(v)), len(v)) for key, v in sorted(forward.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, required=True)
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = probe(args.logdir, args.episodes)
    print(f"{args.logdir}: success {result['success']:.2f}, mean length {result['length']:.1f} steps, "
          f"saw the cue in {result['saw_cue']:.0%} and looked back from the junction in "
          f"{result['looked_back']:.0%} of {args.episodes} episodes")
    print("| looked back | facing the matching object | P(forward) | visits |")
    print("|---|---|---:|---:|")
    for (looked, matching), (mean, visits) in result["p_forward"].items():
        print(f"| {'yes' if looked else 'no'} | {'yes' if matching else 'no'} | {mean:.2f} | {visits} |")


if __name__ == "__main__":
    main()
