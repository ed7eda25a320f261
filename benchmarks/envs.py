"""Environment throughput (steps/s, random actions): single env and vectorised, per backend.

    python benchmarks/envs.py [--seconds 2] [--envs PassiveVisualMatch-Medium-v0,MiniGrid-MemoryS7-v0]

Prints a Markdown table: one row per task, columns for a single env in one process and for
``make_vector_env`` with 8 and 16 envs on each available backend (gymnasium sync, gymnasium async,
EnvPool where it implements the task). A vectorised step of N envs counts as N steps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs import envpool_supports, make_env, make_vector_env  # noqa: E402
from envs.registry import popgym_installed  # noqa: E402

DEFAULT_ENVS = [
    "PassiveVisualMatch-Medium-v0", "ActiveVisualMatch-Medium-v0",
    "MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS13Random-v0", "MiniGrid-MemoryS17Random-v0",
]


def single_env_rate(env_id: str, seconds: float) -> float:
    env = make_env(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n_actions = env.action_space.n
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(n_actions)))
            if terminated or truncated:
                env.reset()
        steps += 100
    return steps / (time.perf_counter() - start)


def vector_rate(env_id: str, num_envs: int, seconds: float, **options) -> float:
    env = make_vector_env(env_id, num_envs, seed=0, **options)
    rng = np.random.default_rng(0)
    n_actions = env.single_action_space.n
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            env.step(rng.integers(n_actions, size=num_envs))
        steps += 20 * num_envs
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--envs", default="")
    args = parser.parse_args()
    env_ids = [e for e in args.envs.split(",") if e] or list(DEFAULT_ENVS)
    if not args.envs and popgym_installed():
        env_ids.append("popgym-RepeatPreviousEasy-v0")
    columns = ["1 env"]
    configs = []
    for n in (8, 16):
        configs += [(n, "gymnasium", "sync"), (n, "gymnasium", "async"), (n, "envpool", "sync")]
        columns += [f"{n} gym sync", f"{n} gym async", f"{n} envpool"]
    print(f"steps/s, random actions, {os.cpu_count()} CPUs; "
          f"python benchmarks/envs.py --seconds {args.seconds}\n")
    print("| task | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for env_id in env_ids:
        cells = [f"{single_env_rate(env_id, args.seconds):,.0f}"]
        for n, backend, vectorization in configs:
            if backend == "envpool" and not envpool_supports(env_id):
                cells.append("–")
                continue
            rate = vector_rate(env_id, n, args.seconds, backend=backend, vectorization=vectorization)
            cells.append(f"{rate:,.0f}")
        print(f"| {env_id} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
