"""Does a memory agent use the cue? Plays a run's latest checkpoint on its task (MiniGrid Memory or
Passive/Active Visual Match) and reports whether it sees the cue and acts on it.

    python benchmarks/memory_probe.py --logdir runs/minigrid_memory [--episodes 200]
        [--env-option KEY=VALUE ...]   # replaces the run's env options, e.g. min_delay=250

MiniGrid Memory tasks (``MiniGrid-MemoryS7-v0`` ... ``S17``): the cue object sits in the start room at
(1, H//2 - 1), the agent starts facing away from it, and at the junction (hallway end + 1, H//2) it
turns up or down towards an object; stepping next to the matching one succeeds. Reported over sampled
episodes (the policy's own sampling, core state carried):
- success rate and mean episode length;
- ``looked back``: the share of episodes in which the agent faced the start room from the junction
  (in S7 the cue is in view from there, so a one-step memory suffices after it);
- ``saw the cue``: the share of episodes in which the cue object was in the agent's view at a step
  the policy acted on (an agent that never turns to see it has nothing to remember);
- ``P(forward)`` when facing an object from the junction, split by whether the agent had looked back
  and whether the object matches the cue. An agent that uses the cue goes forward towards the
  matching object and not towards the other; a stalled one goes forward alike to both.
- with view match (``agents/view_match.py``), the faced object's view-match score there (the one the
  recognition loss trains), split by whether the object matches the cue and whether it is "seen
  again" in the loss's sense (in view earlier in the episode, out of view, back): does the score the
  heads read tell the matching object, or only that it was seen before?

Visual Match tasks (``PassiveVisualMatch-*``, ``ActiveVisualMatch-*``, ``envs/visual_match.py``): the
success rate, the share of episodes in which the cue ball was in view during the cue phase, the
success rate split by that (an agent that remembers is near 1 when it saw the cue and near
``1 / num_pads`` when it did not), and for Active, the share seen by the side the ball stood on (an
agent that always walks one way sees it on that side only) and the cue phase step by step: where the
agent stands in the corridor, by the side the ball stood on, and the policy's probability of each
move (does it turn back when the first end it reached had no ball, and is there time left to?).
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

from agents.checkpoint import CheckpointError, load_weights  # noqa: E402
from agents.rollout import EpisodePlayer  # noqa: E402
from benchmarks.learner_speed import build_agent  # noqa: E402
from configs import ConfigError, load_run_config  # noqa: E402
from configs.config import key_values  # noqa: E402
from envs.registry import make_env  # noqa: E402

FORWARD = 2  # MiniGrid action ids: 0 left, 1 right, 2 forward
SOUTH, WEST, NORTH = 1, 2, 3  # MiniGrid agent_dir: 0 east, 1 south, 2 west, 3 north


def probe(logdir: Path, episodes: int, seed: int = 1000, env_options: dict | None = None) -> dict:
    """The report of ``probe_memory`` or ``probe_visual_match``, whichever fits the run's task;
    ``env_options`` replace the run's own (the agent on another variant of its task)."""
    try:
        config = load_run_config(logdir / "config.yaml")
    except ConfigError as error:  # no run there, or a config.yaml that is not one
        raise SystemExit(f"memory_probe: {error}") from None
    task = config.env.env
    if not task.startswith(("MiniGrid-Memory", "PassiveVisualMatch", "ActiveVisualMatch")):
        raise SystemExit(f"memory_probe: {task!r} is not a MiniGrid Memory or Visual Match task")
    model, _ = build_agent(config)
    try:  # the newest checkpoint that passes the trainer's checks (a milestone if latest.pt does not)
        weights, source, skipped = load_weights(logdir)
    except CheckpointError as error:
        raise SystemExit(f"memory_probe: {error}") from None
    for problem in skipped:
        print(f"memory_probe: warning: {problem}; using {source.name} instead", file=sys.stderr)
    model.load_state_dict(weights)
    model.eval()
    torch.manual_seed(seed)  # the policy's sampling, so a rerun reports the same numbers
    try:
        env = make_env(task, **config.with_options(env=env_options).env.env_options)
    except ValueError as error:  # a bad --env-option: the env's one-line reason
        raise SystemExit(f"memory_probe: {error}") from None
    try:
        run = probe_memory if task.startswith("MiniGrid-Memory") else probe_visual_match
        return run(EpisodePlayer(model, env), episodes, seed)
    finally:
        env.close()


def probe_visual_match(player: EpisodePlayer, episodes: int, seed: int) -> dict:
    """``{"success", "length", "saw_cue", "success_saw", "success_not_saw", "saw_by_side": {side:
    (share, episodes)}, "cue_path"}``; the split rates are None where no episode falls in the split.
    ``cue_path`` (Active only, else empty): one row per cue step, ``{"offset": {side: mean column
    relative to the start, before the step's move}, "moves": [P(east), P(south), P(west), P(north)]}``,
    the probabilities averaged over every episode."""
    env = player.env.unwrapped
    successes, lengths, saw_cue, sides, offsets, moves = [], [], [], [], [], []
    for episode in range(episodes):
        saw, side, steps, path, probabilities = False, None, 0, [], []
        for logits, _ in player.steps(seed=seed + episode):
            side = env.cue_side() if side is None else side
            saw = saw or env.cue_in_view()
            if env.active and env.phase == "cue":
                path.append(env.cue_room_offset())
                probabilities.append(torch.softmax(logits.float(), -1).numpy())
            steps += 1
        successes.append(bool(player.info.get("success")))
        lengths.append(steps)
        saw_cue.append(saw)
        sides.append(side)
        offsets.append(path)
        moves.append(probabilities)
    successes, saw_cue, sides = np.array(successes), np.array(saw_cue), np.array(sides)

    def mean_or_none(values):
        return float(np.mean(values)) if len(values) else None

    cue_steps = min(map(len, offsets))  # each episode has them all (none where not Active)
    cue_path = []
    if cue_steps:
        offsets = np.array([o[:cue_steps] for o in offsets])  # [episodes, cue steps]
        moves = np.array([m[:cue_steps] for m in moves])  # [episodes, cue steps, actions]
        cue_path = [{"offset": {int(side): float(offsets[sides == side, step].mean())
                                for side in sorted(set(sides.tolist()))},
                     "moves": moves[:, step].mean(axis=0).tolist()} for step in range(cue_steps)]
    return {"success": float(successes.mean()), "length": float(np.mean(lengths)),
            "saw_cue": float(saw_cue.mean()), "success_saw": mean_or_none(successes[saw_cue]),
            "success_not_saw": mean_or_none(successes[~saw_cue]),
            "saw_by_side": {int(side): (float(saw_cue[sides == side].mean()), int((sides == side).sum()))
                            for side in sorted(set(sides.tolist()))},
            "cue_path": cue_path}


def probe_memory(player: EpisodePlayer, episodes: int, seed: int) -> dict:
    """``{"success", "length", "looked_back", "saw_cue", "p_forward": {(looked_back, matching): (mean,
    visits)}, "scores": {(matching, seen_again): (mean score, visits)}}`` (``scores`` empty without
    view match)."""
    env = player.env
    successes, lengths, looked_back, saw_cue = [], [], [], []
    forward, scores = defaultdict(list), defaultdict(list)
    for episode in range(episodes):
        looked, saw, steps = False, False, 0
        sightings = Sightings()
        for logits, _ in player.steps(seed=seed + episode):
            sightings.update(player)
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
                seen = sightings.score(player, facing)
                if seen is not None:
                    scores[(type(facing) is type(cue), seen[0])].append(seen[1])
            steps += 1
        successes.append(bool(player.info.get("success")))  # envs.observations.minigrid_success
        lengths.append(steps)
        looked_back.append(looked)
        saw_cue.append(saw)
    return {"success": float(np.mean(successes)), "length": float(np.mean(lengths)),
            "looked_back": float(np.mean(looked_back)), "saw_cue": float(np.mean(saw_cue)),
            "p_forward": {key: (float(np.mean(v)), len(v)) for key, v in sorted(forward.items())},
            "scores": {key: (float(np.mean(v)), len(v)) for key, v in sorted(scores.items())}}


class Sightings:
    """Counts, over one episode, the sightings of each view-match element value (``agents.recognition``:
    a sighting begins when a value comes into view), from what the policy saw at each step."""

    def __init__(self):
        self.counts: dict[int, int] = defaultdict(int)
        self.in_view: set[int] = set()

    def update(self, player: EpisodePlayer) -> None:
        match = player.model.view_match
        if match is None:
            return
        now = set(match.element_values(player.observation)[0].tolist())
        for value in now - self.in_view:
            self.counts[value] += 1
        self.in_view = now

    def score(self, player: EpisodePlayer, obj) -> tuple[bool, float] | None:
        """``(seen again, the highest score over the cells showing obj)`` at this step; None without
        view match or with ``obj`` out of view."""
        match = player.model.view_match
        if match is None:
            return None
        image = player.observation["image"][0].reshape(-1, 3).long()  # cells in the scores' order
        cells = (image == torch.tensor(obj.encode())).all(-1)
        if not bool(cells.any()):
            return None
        first = match.first_element["image"]
        span = slice(first, first + cells.numel())
        value = int(match.element_values(player.observation)[0][span][cells][0])
        return self.counts[value] >= 2, float(player.output.match_scores[0][span][cells].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, required=True)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--env-option", action="append", metavar="KEY=VALUE",
                        help="replaces the run's env option (repeatable), e.g. min_delay=250")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        options = key_values(args.env_option, "--env-option")
    except ValueError as error:
        raise SystemExit(f"memory_probe: {error}") from None
    result = probe(args.logdir, args.episodes, env_options=options)
    if "saw_by_side" in result:
        print_visual_match(args.logdir, args.episodes, result)
        return
    print(f"{args.logdir}: success {result['success']:.2f}, mean length {result['length']:.1f} steps, "
          f"saw the cue in {result['saw_cue']:.0%} and looked back from the junction in "
          f"{result['looked_back']:.0%} of {args.episodes} episodes")
    print("| looked back | facing the matching object | P(forward) | visits |")
    print("|---|---|---:|---:|")
    for (looked, matching), (mean, visits) in result["p_forward"].items():
        print(f"| {'yes' if looked else 'no'} | {'yes' if matching else 'no'} | {mean:.2f} | {visits} |")
    if result["scores"]:
        print("\nthe faced object's view-match score at the junction (recognition-trained):")
        print("| facing the matching object | seen again | mean score | visits |")
        print("|---|---|---:|---:|")
        for (matching, seen), (mean, visits) in result["scores"].items():
            print(f"| {'yes' if matching else 'no'} | {'yes' if seen else 'no'} | {mean:+.2f} | {visits} |")


def print_visual_match(logdir: Path, episodes: int, result: dict) -> None:
    def rate(value):
        return "-" if value is None else f"{value:.2f}"

    print(f"{logdir}: success {result['success']:.2f}, mean length {result['length']:.1f} steps, saw the "
          f"cue in {result['saw_cue']:.0%} of {episodes} episodes; success when it saw the cue "
          f"{rate(result['success_saw'])}, when it did not {rate(result['success_not_saw'])}")
    names = {-1: "west end", 0: "beside the start", 1: "east end"}
    print("| the cue stood | episodes | saw it |")
    print("|---|---:|---:|")
    for side, (share, count) in result["saw_by_side"].items():
        print(f"| {names[side]} | {count} | {share:.0%} |")
    if result["cue_path"]:
        sides = list(result["cue_path"][0]["offset"])
        print("\nthe cue phase, step by step: the mean column before the move (0: the start, - west, + east)"
              " by where the ball stood, and the policy's mean probability of each move")
        print("| step | " + " | ".join(f"column, ball at the {names[side]}" for side in sides)
              + " | P(east) | P(west) | P(north or south) |")
        print("|---:|" + "---:|" * (len(sides) + 3))
        for step, row in enumerate(result["cue_path"], start=1):
            east, south, west, north = row["moves"]
            columns = " | ".join(f"{row['offset'][side]:+.1f}" for side in sides)
            print(f"| {step} | {columns} | {east:.2f} | {west:.2f} | {north + south:.2f} |")


if __name__ == "__main__":
    main()
