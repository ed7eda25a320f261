"""Where the training loop's time goes: each stage alone, then the async loop with all of them.

    python benchmarks/profile_loop.py [--config minigrid_memory] [--env ID] [--core NAME] [--seconds 8]

Stages, one thread each (on 2 cores the async runtime runs the actor and the learner on one core
each), in microseconds per frame (one env step of one env):

- ``env``: the vector env stepped with random actions (the raw rate);
- ``policy``: ``ActorCritic.step`` and sampling for the B envs of one vector step;
- ``actor``: ``Actor.collect`` filling unrolls (env + policy + buffer writes);
- ``learner``: ``Learner.update`` on an unroll batch held in memory;
- ``async loop``: the ``async`` runtime (one actor process) feeding the learner, as in
  ``train_agent.py`` without logging: frames/s and the share of the learner's time spent waiting.

The async loop cannot beat the slower of ``actor`` and ``learner``; its frames/s over that bound says
how much the handing-over (shared buffers, queues, weight publishing, two processes on two cores)
costs. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.learner import Learner, learner_settings  # noqa: E402
from agents.rollout import Actor, Unroll  # noqa: E402
from agents.runtimes import make_runtime  # noqa: E402
from benchmarks.learner_speed import build_agent, learner_rate  # noqa: E402
from configs import load_config  # noqa: E402


def timed(fn, seconds: float) -> tuple[int, float]:
    """Call ``fn`` until ``seconds`` have passed (after one warm-up call): ``(calls, elapsed)``."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def stage_rates(config, seconds: float) -> dict[str, float]:
    """Frames/s of the env, the policy, the actor and the learner, each alone on one thread."""
    model, env_factory = build_agent(config)
    env = env_factory(0)
    B, T = env.num_envs, config.agent.unroll_length
    rng = np.random.default_rng(0)
    num_actions = int(env.single_action_space.n)
    calls, elapsed = timed(lambda: env.step(rng.integers(num_actions, size=B)), seconds)
    rates = {"env": calls * B / elapsed}

    actor = Actor(env, model, seed=0)
    obs = {k: torch.from_numpy(v) for k, v in actor.obs.items()}
    zeros = torch.zeros(B, dtype=torch.long)
    state = model.initial_state(B)

    @torch.inference_mode()
    def policy():
        out, _ = model.step(obs, zeros, zeros.float(), zeros.bool(), state)
        torch.multinomial(torch.softmax(out.logits, -1), 1)

    calls, elapsed = timed(policy, seconds)
    rates["policy"] = calls * B / elapsed
    unroll = Unroll.allocate(T, actor.obs, num_actions, state)
    calls, elapsed = timed(lambda: actor.collect(unroll), seconds)
    rates["actor"] = calls * T * B / elapsed
    env.close()
    rates["learner"] = learner_rate(config, torch.device("cpu"), seconds=seconds)
    return rates


def async_loop(config, seconds: float) -> dict[str, float]:
    """The async runtime with one actor process feeding a learner on this thread."""
    model, env_factory = build_agent(config)
    a = config.agent
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=a.learning_rate), None,
                      learner_settings(a))
    runtime = make_runtime("async", env_factory, model, a.unroll_length, a.batch_size, seed=0,
                           num_actors=1)
    try:
        for _ in range(3):  # the actor process starts and warms up
            learner.update(runtime.next_batch())
            runtime.publish(learner.updates)
        waiting = frames = 0.0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            before = time.perf_counter()
            batch = runtime.next_batch()
            waiting += time.perf_counter() - before
            learner.update(batch)
            runtime.publish(learner.updates)
            frames += runtime.frames_per_batch
        elapsed = time.perf_counter() - start
    finally:
        runtime.close()
    return {"async loop": frames / elapsed, "learner waiting": waiting / elapsed,
            "policy lag": runtime.policy_lag()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="minigrid_memory", help="preset name or YAML path")
    parser.add_argument("--env", help="override the preset's env")
    parser.add_argument("--core", help="override the preset's core")
    parser.add_argument("--seconds", type=float, default=8.0, help="per stage")
    args = parser.parse_args()
    config = load_config(args.config).with_overrides(
        {k: v for k, v in (("env", args.env), ("core", args.core)) if v})
    torch.set_num_threads(1)
    e, a = config.env, config.agent
    print(f"python benchmarks/profile_loop.py {' '.join(sys.argv[1:])}".strip())
    print(f"{e.env}, {e.num_envs} envs, core {config.core.core} {config.core.hidden_size}, "
          f"{a.agent}, unroll {a.unroll_length}, batch {a.batch_size}; torch {torch.__version__}, "
          "1 thread per stage\n")
    rates = stage_rates(config, args.seconds)
    loop = async_loop(config, args.seconds)
    print("| stage | us per frame | frames/s |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {1e6 / rate:.1f} | {rate:,.0f} |")
    bound = min(rates["actor"], rates["learner"])
    print(f"| async loop | {1e6 / loop['async loop']:.1f} | {loop['async loop']:,.0f} |")
    print(f"\nasync loop / min(actor, learner) = {loop['async loop'] / bound:.2f}; the learner waited "
          f"{100 * loop['learner waiting']:.0f}% of the time for unrolls; policy lag "
          f"{loop['policy lag']:.1f} updates")


if __name__ == "__main__":
    main()
