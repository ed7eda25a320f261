"""Training frames/s of gated-rl against Stable-Baselines3-Contrib RecurrentPPO, same machine, same
task, one run.

    pip install -e '.[bench]'          # sb3-contrib, not a dependency of the package
    python benchmarks/peers.py [--tasks MiniGrid-MemoryS7-v0 popgym-RepeatPreviousEasy-v0]

For each task it measures, in this order and with nothing else running:
- the raw random-action rate of our vector env (16 envs),
- the learner's own rate when fed one unroll batch from memory (updates/s x frames per update),
- gated-rl training through ``train_agent.py`` for each runtime (sync a2c, async impala, ray impala
  when Ray is installed) with an ``lstm`` and a ``ur_lstm`` core of hidden size 128 (the one-step
  agent of ``train_speed.ONE_STEP_AGENT``, as every number measured so far),
- RecurrentPPO (8 envs, ``MlpLstmPolicy`` with an LSTM of 128, sb3 defaults otherwise).

and prints a markdown table with each rate, its ratio to RecurrentPPO, and its ratio to the slower
of the raw env rate and the learner rate (the issue's two goals: >= 10x and >= 40%).

``--profile-sb3`` instead profiles RecurrentPPO alone and prints where its ``learn`` spends its time.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.learner_speed import learner_rate  # noqa: E402
from benchmarks.train_speed import ONE_STEP_AGENT, raw_rate, train_rate  # noqa: E402
from configs import TrainConfig  # noqa: E402

HIDDEN = 128
NUM_ENVS = 16


def recurrent_ppo(env_id: str):
    """sb3-contrib RecurrentPPO on ``env_id``: 8 envs, ``MlpLstmPolicy`` with an LSTM of ``HIDDEN``."""
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    from envs.registry import is_minigrid, resolve

    name = resolve(env_id)

    def make():
        env = gym.make(name)
        if is_minigrid(name):
            from minigrid.wrappers import ImgObsWrapper

            env = ImgObsWrapper(env)  # SB3 cannot take MiniGrid's mission string
        return env

    venv = make_vec_env(make, n_envs=8, seed=0)
    return RecurrentPPO("MlpLstmPolicy", venv, policy_kwargs={"lstm_hidden_size": HIDDEN},
                        device="cpu", seed=0, verbose=0)


def recurrent_ppo_rate(env_id: str, frames: int) -> float:
    """Frames/s of sb3-contrib RecurrentPPO's ``learn`` (model construction excluded)."""
    model = recurrent_ppo(env_id)
    start = time.perf_counter()
    model.learn(total_timesteps=frames)
    return model.num_timesteps / (time.perf_counter() - start)


PROFILE_PARTS = (  # (part, file it is defined in or "~" for built-ins, function name); learn first
    ("learn", "ppo_recurrent.py", "learn"),
    ("collect_rollouts", "ppo_recurrent.py", "collect_rollouts"),
    ("train", "ppo_recurrent.py", "train"),
    ("torch.lstm", "~", "<built-in method torch.lstm>"),
    ("backward", "~", "<method 'run_backward' of 'torch._C._EngineBase' objects>"),
    ("optimizer step", "adam.py", "step"),
)


def recurrent_ppo_profile(env_id: str, frames: int) -> dict[str, tuple[int, float]]:
    """Where RecurrentPPO's ``learn`` spends its time (cProfile): ``{part: (calls, seconds)}``."""
    import cProfile
    import pstats

    model = recurrent_ppo(env_id)
    profile = cProfile.Profile()
    profile.runcall(model.learn, total_timesteps=frames)
    found = {}
    for (filename, _, function), (_, calls, _, cumulative, _) in pstats.Stats(profile).stats.items():
        for part, file, name in PROFILE_PARTS:
            if filename.endswith(file) and function == name:
                found[part] = (calls, cumulative)
    return found


def print_recurrent_ppo_profile(env_id: str, frames: int) -> None:
    parts = recurrent_ppo_profile(env_id, frames)
    total = parts["learn"][1]
    print(f"\nRecurrentPPO on {env_id}, {frames:,} frames: {frames / total:,.0f} frames/s under cProfile\n")
    print("| part | calls | share of learn |")
    print("|---|---:|---:|")
    for part, _, _ in PROFILE_PARTS[1:]:
        calls, seconds = parts[part]
        print(f"| {part} | {calls:,} | {seconds / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+",
                        default=["MiniGrid-MemoryS7-v0", "popgym-RepeatPreviousEasy-v0"])
    parser.add_argument("--frames", type=int, default=300_000, help="gated-rl frames per run")
    parser.add_argument("--sb3-frames", type=int, default=16_384)
    parser.add_argument("--seconds", type=float, default=5.0, help="raw env and learner timing")
    parser.add_argument("--profile-sb3", action="store_true",
                        help="only profile RecurrentPPO (--sb3-frames frames per task): where its time goes")
    args = parser.parse_args()
    if args.profile_sb3:
        torch.set_num_threads(TrainConfig().run.threads)
        for env_id in args.tasks:
            print_recurrent_ppo_profile(env_id, args.sb3_frames)
        return
    runs = [("sync", "a2c"), ("async", "impala")]
    if importlib.util.find_spec("ray"):
        runs.append(("ray", "impala"))
    print(f"python benchmarks/peers.py {' '.join(sys.argv[1:])}".strip())
    for env_id in args.tasks:
        raw = raw_rate(env_id, NUM_ENVS, args.seconds)
        config = TrainConfig().with_overrides({"env": env_id, "core": "ur_lstm", "agent": "impala",
                                               "hidden_size": HIDDEN, "num_envs": NUM_ENVS, **ONE_STEP_AGENT})
        torch.set_num_threads(config.run.threads)
        learner = learner_rate(config, torch.device("cpu"), seconds=args.seconds)
        ppo = recurrent_ppo_rate(env_id, args.sb3_frames)
        bound = min(raw, learner)
        print(f"\n{env_id}: raw env {raw:,.0f} steps/s ({NUM_ENVS} envs), learner from memory "
              f"{learner:,.0f} frames/s (ur_lstm impala), RecurrentPPO {ppo:,.0f} frames/s\n")
        print("| trainer | core | frames/s | x RecurrentPPO | / min(raw env, learner) |")
        print("|---|---|---:|---:|---:|")
        print(f"| sb3-contrib RecurrentPPO (8 envs) | LSTM {HIDDEN} | {ppo:,.0f} | 1.0 | {ppo / bound:.2f} |")
        with tempfile.TemporaryDirectory() as tmp:
            for runtime, agent in runs:
                for core in ("lstm", "ur_lstm"):
                    rate = train_rate(env_id, core, runtime, agent, NUM_ENVS, args.frames,
                                      Path(tmp) / f"{runtime}_{core}", ("--hidden-size", str(HIDDEN)))
                    print(f"| gated-rl {runtime} {agent} ({NUM_ENVS} envs) | {core} {HIDDEN} | {rate:,.0f} | "
                          f"{rate / ppo:.1f} | {rate / bound:.2f} |", flush=True)


if __name__ == "__main__":
    main()
