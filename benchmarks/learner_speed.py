"""The learner's own speed: ``Learner.update`` on unrolls held in memory (no acting), in frames/s.

    python benchmarks/learner_speed.py --env ENV [--config PRESET] [--option FIELD=VALUE ...]
        [--seconds 5] [--threads 1]

Shared by ``peers.py`` (the "learner from memory" bound) and ``gpu_check.py`` (CUDA vs CPU); its network
builders also by ``memory_probe.py``, ``initial_policy.py`` and ``mixed_init.py``. Builds the
agent the way ``train_agent.py`` does (``nothing imports the composition root``, so it is rebuilt here
from the same parts).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the package, not benchmarks/cores.py, is `cores`

import torch  # noqa: E402

from agents.learner import Learner, learner_settings  # noqa: E402
from agents.networks import ActorCritic  # noqa: E402
from agents.rollout import Unroll  # noqa: E402
from agents.runtime_sync import SyncRuntime  # noqa: E402
from configs import TrainConfig, key_values, load_config  # noqa: E402
from cores import core_factory  # noqa: E402
from envs import make_vector_env  # noqa: E402


def build_agent(config: TrainConfig):
    """``(model, env_factory)`` for ``config``, built like ``train_agent.build_model`` does;
    ``env_factory(seed)`` makes the config's vector env (picklable, for actor processes)."""
    c = config.core
    factory = functools.partial(_make_env, config.env)
    probe = factory(0)
    num_actions = int(probe.single_action_space.n)
    core = core_factory(c.core, c.hidden_size, c.core_options, refine_bias=c.refine_bias)
    model = ActorCritic.build(probe.observation_description, num_actions, core, **config.model_options())
    probe.close()
    return model, factory


def initial_network(config: TrainConfig, seed: int):
    """The network a run of ``config`` with ``--seed seed`` starts from (drawn under
    ``torch.manual_seed(seed)``, as ``train_agent.py`` draws it)."""
    torch.manual_seed(seed)
    return build_agent(config)[0]


def add_config_flags(parser) -> None:
    """``--env``, ``--config`` and repeatable ``--option FIELD=VALUE``: the run a benchmark builds."""
    parser.add_argument("--env", required=True)
    parser.add_argument("--config", default="", help="a preset of configs/ (default: the program's defaults)")
    parser.add_argument("--option", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config field as the run sets it (repeatable), e.g. head_size=0")


def requested_config(args) -> TrainConfig:
    """The config ``add_config_flags``' flags name; ``ConfigError`` (one line) for a bad one."""
    base = load_config(args.config) if args.config else TrainConfig()
    return base.with_overrides({"env": args.env, **key_values(args.option, "--option")})


def _make_env(env_config, seed: int):
    e = env_config
    return make_vector_env(e.env, e.num_envs, seed, backend=e.env_backend, **e.env_options)


def learner_rate(config: TrainConfig, device: torch.device, batch_size: int = 1, seconds: float = 5.0) -> float:
    """Frames/s of ``Learner.update`` for ``config``'s agent on ``device``, ``batch_size`` unrolls of
    ``unroll_length x num_envs`` collected once beforehand (Adam, constant learning rate)."""
    a = config.agent
    model, factory = build_agent(config)
    runtime = SyncRuntime(factory, model, a.unroll_length, 1, seed=0)
    batch = Unroll.concat([runtime.next_batch().clone() for _ in range(batch_size)]).to(device)
    runtime.close()
    model.to(device)
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=a.learning_rate), None,
                      learner_settings(a))
    learner.update(batch)
    _sync(device)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        learner.update(batch)
        updates += 1
    _sync(device)
    return updates * batch.action[:-1].numel() / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Frames/s of Learner.update on unrolls held in memory "
                                                 "(no acting), on the CPU; gpu_check.py times CUDA.")
    add_config_flags(parser)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed updates for this long")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.threads < 1:
        parser.error(f"--seconds must be > 0 and --threads >= 1, got {args.seconds:g} and {args.threads}")
    try:  # a bad --option or env is one line; a failure in the timed updates keeps its traceback
        config = requested_config(args)
        build_agent(config)
    except ValueError as error:  # ConfigError is one
        print(f"learner_speed: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    rate = learner_rate(config, torch.device("cpu"), seconds=args.seconds)
    c = config
    print(f"{c.env.env}, {c.core.core}, unrolls of {c.agent.unroll_length} x {c.env.num_envs}: "
          f"learner {rate:,.0f} frames/s (CPU, {args.threads} thread(s), torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
