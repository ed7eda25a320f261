"""Training throughput of each runtime, as a ratio to the raw random-action throughput of the same
vector env, measured in the same run.

    python benchmarks/train_speed.py [--env MiniGrid-MemoryS7-v0] [--core ur_lstm] [--seconds 30]
        [--devices cpu,cuda] [--num-actors N] [--agent-defaults] [--option head_size=0 ...]

Each runtime trains through ``train_agent.py`` (a subprocess, fresh run directory) for a fixed frame
budget; frames/s is read from its ``metrics.jsonl`` (``perf/sps``, median after the first log).
With ``--devices cpu,cuda`` every runtime runs once per learner device (actors stay on the CPU).
Every run takes ``ONE_STEP_AGENT`` (the agent of every speed number up to 2026-12-01) unless
``--agent-defaults`` asks for the program's defaults; ``--option FIELD=VALUE`` (repeatable) sets a
config field on top of either, to time one setting against the same agent without it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configs.config import ADDED_FIELDS, ConfigError, TrainConfig, as_flags, key_values  # noqa: E402
from envs import make_vector_env  # noqa: E402

#: One optimiser step per batch, no observation gate, input LayerNorm or action-value head, the refine
#: gate's -b_f start, no view match or recognition loss (the program's defaults until 2026-12-01): the
#: agent the speed pages measured. The defaults since 2026-12-02 add the first four (impala then takes
#: 3 optimiser steps per batch), since 2026-12-03 the last two; linear heads too (a head layer of 128 is
#: the default since 2026-12-05).
ONE_STEP_AGENT = ADDED_FIELDS


def raw_rate(env_id: str, num_envs: int, seconds: float) -> float:
    env = make_vector_env(env_id, num_envs, seed=0)
    rng = np.random.default_rng(0)
    n = env.single_action_space.n
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(n, size=num_envs))
        steps += num_envs
    env.close()
    return steps / (time.perf_counter() - start)


def own_fields(env_id: str, core: str, runtime: str, agent: str, num_envs: int, frames: int, logdir: Path,
               device: str = "auto", num_actors: int = 1) -> dict:
    """The config fields the script sets itself for one timed run (``OWN_FIELDS``; an ``--option`` of
    one would change what the table names)."""
    return {"env": env_id, "core": core, "agent": agent, "runtime": runtime, "num_envs": num_envs,
            "total_frames": frames, "logdir": str(logdir), "device": device, "num_actors": num_actors,
            "log_every_s": 3, "checkpoint_every_s": 100000}


OWN_FIELDS = tuple(own_fields("", "", "", "", 0, 0, Path()))
RUNS = (("sync", "a2c"), ("sync", "impala"), ("async", "impala"))  # (runtime, agent), in table order


def agent_fields(agent_defaults: bool, options: list[str], env: str, core: str) -> dict:
    """The config fields every timed run takes: ``ONE_STEP_AGENT`` (``{}`` with ``agent_defaults``)
    with ``options`` (``FIELD=VALUE`` strings) on top. Raises ``ConfigError`` in one line where an
    option is not a config field, is one of ``OWN_FIELDS``, or makes a bad config for one of ``RUNS``."""
    fields = ({} if agent_defaults else dict(ONE_STEP_AGENT)) | key_values(options, "--option")
    own = [name for name in fields if name in OWN_FIELDS]
    if own:
        raise ConfigError(f"--option {own[0]} is set by the script itself; options may set any other "
                          f"config field")
    for runtime, agent in RUNS:
        TrainConfig().with_overrides({"env": env, "core": core, "runtime": runtime, "agent": agent, **fields})
    return fields


def train_rate(env_id: str, core: str, runtime: str, agent: str, num_envs: int, frames: int,
               logdir: Path, extra: tuple[str, ...] = (), agent_fields: dict = ONE_STEP_AGENT,
               device: str = "auto", num_actors: int = 1) -> float:
    """Median ``perf/sps`` of a fresh ``train_agent.py`` run (start-up excluded): ``own_fields``, then
    ``agent_fields`` (``{}``: the program's defaults), as flags, then ``extra`` flags."""
    run = own_fields(env_id, core, runtime, agent, num_envs, frames, logdir, device, num_actors)
    command = [sys.executable, str(ROOT / "train_agent.py"), *as_flags(run), *as_flags(agent_fields), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        sys.exit(f"{runtime}/{agent}: train_agent.py stopped (exit {result.returncode}): {last}")
    rates = [json.loads(line).get("perf/sps") for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    rates = [r for r in rates if r]
    if not rates:
        sys.exit(f"{runtime}/{agent} logged no frame rate in {frames:,} frames: raise --frames")
    return statistics.median(rates[1:] or rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-MemoryS7-v0")
    parser.add_argument("--core", default="ur_lstm")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--frames", type=int, default=150_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="raw env measurement")
    parser.add_argument("--devices", default="cpu", help="learner devices, comma-separated")
    parser.add_argument("--num-actors", type=int, default=1, help="actor processes of the async runtime")
    parser.add_argument("--agent-defaults", action="store_true",
                        help="the program's default agent instead of ONE_STEP_AGENT")
    parser.add_argument("--option", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config field set on top of the agent (repeatable)")
    args = parser.parse_args()
    try:
        fields = agent_fields(args.agent_defaults, args.option, args.env, args.core)
    except ConfigError as error:
        parser.error(str(error))
    devices = [d for d in args.devices.split(",") if d]
    raw = raw_rate(args.env, args.num_envs, args.seconds)
    print(f"{args.env}, {args.num_envs} envs, core {args.core}; raw random-action rate {raw:,.0f} "
          f"steps/s; python benchmarks/train_speed.py {' '.join(sys.argv[1:])}\n")
    print("| runtime | agent | learner device | training frames/s | / raw env |")
    print("|---|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            for runtime, agent in RUNS:
                rate = train_rate(args.env, args.core, runtime, agent, args.num_envs, args.frames,
                                  Path(tmp) / f"{runtime}_{agent}_{device}", agent_fields=fields,
                                  device=device,
                                  num_actors=args.num_actors if runtime == "async" else 1)
                print(f"| {runtime} | {agent} | {device} | {rate:,.0f} | {rate / raw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
