#!/usr/bin/env python
"""Train, resume and evaluate gated-rl agents.

    python train_agent.py --env MiniGrid-MemoryS7-v0 --core ur_lstm --agent impala \\
        --total-frames 2000000 --num-envs 16 --seed 0 --logdir runs/s7 [--config default] \\
        [--core-option key=value ...] [--env-option key=value ...] [--learning-rate 5e-4 ...]
    python train_agent.py --logdir runs/s7                   # the same command again resumes
    python train_agent.py --eval --logdir runs/s7 [--episodes 20] [--video]

Every config field is a flag (``--help`` lists them with their meaning). A run directory holds
``config.yaml``, TensorBoard events, ``checkpoints/latest.pt`` (and milestones) and ``metrics.jsonl``.
Bad input ends with one line on stderr and exit status 2, before anything is written.

One run at a time trains in a run directory: a run (new or resumed) locks it (``DIR/.lock``, see
``agents.checkpoint.RunLock``; the kernel frees the lock when the run's process ends, even by SIGKILL),
and a second run on a directory in use is refused with one line (exit 2) while the first goes on.
``--eval`` takes no lock and may run while the run trains: it only reads ``config.yaml`` and
``checkpoints/latest.pt``, which a run replaces atomically (so it reads one whole checkpoint, the newest
or the one before), and writes ``eval.json`` (atomically too) and ``videos/``, which training never writes.

SIGINT or SIGTERM, to the run or to its whole process group (the async runtime's actors ignore both),
ends training after the current update with a checkpoint and exit status 130 or 143 (128 + the signal:
stopped, not finished). A second signal while the run waits for an env step (one that hangs) stops
the wait. Actor processes exit by themselves within a second of the learner's death. A Ctrl-C outside
training (while torch imports, during ``--eval``) ends with the one line ``interrupted``, status 130.

A loss, gradient or weight that is not finite (or a non-finite reward from the env) stops training
with one line naming it, the update and the frames, and exit status 1; the update is not saved, so
``checkpoints/latest.pt`` and the milestones keep the last finite weights.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import random
import signal
import sys
import threading
import time
from pathlib import Path

COMMAND = "gated-rl"  # the console script of the installed package (pyproject.toml [project.scripts])


def prog() -> str:
    """How the user invoked the program: ``gated-rl`` or ``train_agent.py``."""
    return COMMAND if Path(sys.argv[0]).name == COMMAND else "train_agent.py"


def _one_line_interrupt(kind, error, traceback, default=sys.excepthook):
    """A Ctrl-C that the run's own signal handling does not catch (while torch imports, while the config
    is read, during ``--eval``) ends with one line instead of a traceback; Python still exits as one
    killed by SIGINT (status 130)."""
    if issubclass(kind, KeyboardInterrupt):
        print(f"{prog()}: interrupted", file=sys.stderr)
        return
    default(kind, error, traceback)


sys.excepthook = _one_line_interrupt  # installed before the slow imports below: most of a start's time
# A Ctrl-C during those imports is noted and acted on after them: raised inside them, a
# KeyboardInterrupt could abort the process from a C++ extension's init (pybind11: "terminate called")
# or be swallowed by a library's broad except, leaving the run to go on.
_interrupts_while_importing: list[int] = []
_noting_interrupts = threading.current_thread() is threading.main_thread()  # handlers: main thread only
_sigint_before_imports = (signal.signal(signal.SIGINT, lambda signum, _frame: _interrupts_while_importing
                                        .append(signum)) if _noting_interrupts else None)

import numpy as np
import torch
import yaml

from agents.atomic import replace_atomically
from agents.checkpoint import (
    CheckpointError,
    RunDirError,
    RunLock,
    load_run_checkpoint,
    load_weights,
    remove_stale_temporaries,
    restore_rng,
    restore_state,
    rng_state,
    save_checkpoint,
)
from agents.curriculum import DelayCurriculum
from agents.exploration import RepeatExploration
from agents.learner import Learner, NonFiniteError, learner_settings, make_optimizer
from agents.networks import ActorCritic
from agents.rollout import Actor, EpisodePlayer, StopRequested
from agents.run_logger import RunLogger
from agents.runtime_ray import check_ray_address, import_ray
from agents.runtimes import make_runtime
from agents.seeds import EVAL_SEED, training_seed, video_seed
from configs import (
    ConfigError,
    TrainConfig,
    field_docs,
    field_owners,
    key_values,
    load_config,
    load_run_config,
    presets,
    safe_yaml,
)
from cores import core_factory
from cores.memory import retain_freed_memory
from envs import Episode, env_delay, make_env, make_vector_env

if _noting_interrupts:  # None: a handler set outside Python; Python's own is the closest
    signal.signal(signal.SIGINT, signal.default_int_handler if _sigint_before_imports is None
                  else _sigint_before_imports)
if _interrupts_while_importing:
    raise KeyboardInterrupt  # the Ctrl-C of the imports: one line, through _one_line_interrupt


def resume_command() -> str:
    return COMMAND if prog() == COMMAND else f"python {prog()}"

EVAL_EPISODES = 10
# Fields a resumed run may change; everything else must match the run's config.yaml.
RESUMABLE_CHANGES = {"total_frames", "checkpoint_every_s", "log_every_s", "threads", "logdir",
                     "num_actors", "ray_address", "device", "stop_at"}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class TrainingError(Exception):
    """Training stopped on a fault of the run itself (a non-finite value): one line, exit status 1."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _number(kind):
    def parse(text: str):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if kind is int:
            if not value.is_integer():
                raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
            return int(value)
        return value

    return parse


def _int_list(text: str) -> list[int]:
    """``"15,60"`` -> ``[15, 60]``; ``""`` or ``"none"`` -> ``[]``."""
    if text.strip().lower() in ("", "none", "[]"):
        return []
    try:
        return [int(part) for part in text.strip("[] ").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _boolean(text: str) -> bool:
    try:
        value = safe_yaml(text, "the value") if text else None
    except ConfigError:
        value = None
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog(), description=__doc__.splitlines()[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", help=f"preset ({', '.join(presets())}) or a YAML file")
    parser.add_argument("--eval", action="store_true", help="evaluate the run in --logdir")
    parser.add_argument("--episodes", type=int, help="evaluation episodes (default 10)")
    parser.add_argument("--video", action="store_true", help="evaluation: write GIFs to DIR/videos/")
    parser.add_argument("--greedy", action="store_true", help="evaluation: argmax actions")
    parser.add_argument("--core-option", action="append", metavar="KEY=VALUE",
                        help="core option (repeatable), e.g. num_layers=2")
    parser.add_argument("--env-option", action="append", metavar="KEY=VALUE",
                        help="env constructor argument (repeatable), e.g. delay=100; with --eval, "
                             "replaces the run's (the agent on another delay)")
    docs = field_docs()
    parser.add_argument("--curriculum-env-option", action="append", metavar="KEY=VALUE",
                        help="(repeatable) " + docs["curriculum_env_options"].replace("%", "%%"))
    defaults = TrainConfig()
    for name, section in field_owners().items():
        default = getattr(getattr(defaults, section), name)
        if isinstance(default, dict):
            continue
        kind = type(default)
        parse = (_boolean if kind is bool else _number(kind) if kind in (int, float)
                 else _int_list if kind is list else str)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=parse,
                            default=argparse.SUPPRESS, help=docs.get(name, "").replace("%", "%%"))
    return parser


def parse_args(argv: list[str]):
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = unknown[0].split("=")[0]
        known = [a for action in parser._actions for a in action.option_strings]
        close = difflib.get_close_matches(flag, known, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else "; see --help"
        raise UsageError(f"unrecognized argument {flag!r}{hint}")
    if not args.eval:
        given = [flag for flag, value in (("--episodes", args.episodes is not None), ("--video", args.video),
                                          ("--greedy", args.greedy)) if value]
        if given:
            raise UsageError(f"{given[0]} is an evaluation flag: add --eval (and --logdir of the run)")
    elif args.curriculum_env_option:
        raise UsageError("--curriculum-env-option is a training flag; --env-option plays the run's agent on "
                         "another variant of its task")
    overrides = {k: v for k, v in vars(args).items() if k in field_owners()}
    return args, overrides


def resolve_config(args, overrides: dict) -> tuple[TrainConfig, bool]:
    """The run's config and whether it resumes a run found in its logdir.

    Precedence: defaults < ``--config`` preset < flags and ``--*-option``s. A run directory that
    already holds a checkpoint is resumed with its saved config; the request may repeat it (so the
    same command resumes) and may change only ``RESUMABLE_CHANGES``.
    """
    preset = load_config(args.config) if args.config else TrainConfig()
    requested = preset.with_overrides(overrides)
    core_options = key_values(args.core_option, "--core-option")
    env_options = key_values(args.env_option, "--env-option")
    stage_options = key_values(args.curriculum_env_option, "--curriculum-env-option")
    requested = requested.with_options(env=env_options, core=core_options, stages=stage_options)
    for name, what in (("recognition_cost", "trains the view-match scores"),
                       ("novelty_bonus", "counts the view-match elements")):
        if overrides.get(name, 0) > 0 and not requested.core.view_match:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} {overrides[name]:g} {what}: it needs --view-match true "
                              f"(or {flag} 0)")
    logdir = Path(requested.run.logdir)
    if not (logdir / "checkpoints" / "latest.pt").exists():
        return requested, False
    saved = load_run_config(logdir / "config.yaml")
    owners = field_owners()
    explicit = set(overrides) | ({"core_options"} if core_options else set()) | (
        {"env_options"} if env_options else set()) | ({"curriculum_env_options"} if stage_options else set())
    if args.config:
        explicit |= set(owners)  # a preset states every field
    changed = {k for k in explicit - RESUMABLE_CHANGES
               if getattr(getattr(saved, owners[k]), k) != getattr(getattr(requested, owners[k]), k)}
    if changed:
        raise ConfigError(
            f"{logdir} holds a run; resuming it can change only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))}, not {', '.join(sorted(changed))} "
            "(use another --logdir)"
        )
    keep = {k: v for k, v in overrides.items() if k in RESUMABLE_CHANGES}
    return saved.with_overrides(keep), True


def restore_model(model: ActorCritic, state: dict, source: Path) -> None:
    """Load a checkpoint's weights into ``model``; a policy made for another number of actions is
    named as such (one line) rather than as a list of tensor shapes."""
    saved = state.get("policy.bias")
    if saved is not None and saved.shape[0] != model.num_actions:
        why = (" (MiniGrid's Memory tasks have had three navigation actions by default since "
               "2026-12-03; runs saved earlier without an actions option had seven)"
               if saved.shape[0] == 7 and model.num_actions == 3 else "")
        raise CheckpointError(f"checkpoint {str(source)!r} holds a policy over {saved.shape[0]} actions, "
                              f"this run's env has {model.num_actions}{why}")
    saved_head, own_head = _head_size(state), _head_size(dict(model.named_parameters()))
    if saved_head != own_head:  # the default is 128 since 2026-12-05, 0 (linear heads) before
        raise CheckpointError(f"checkpoint {str(source)!r} holds a head layer of {saved_head} units "
                              f"(0: linear heads), this run's network {own_head}: add --head-size {saved_head}")
    restore_state(model, state, source, "model")


def _head_size(weights: dict) -> int:
    """Units of the hidden head layer in a model's weights (0: linear heads)."""
    return weights["head.0.weight"].shape[0] if "head.0.weight" in weights else 0


def warn_skipped(skipped: list[str], used: Path) -> None:
    """Say on stderr which newer checkpoints could not be used, and which one is."""
    for problem in skipped:
        print(f"{prog()}: warning: {problem}; using {used.name} instead", file=sys.stderr)


def build_model(config: TrainConfig, env) -> ActorCritic:
    space = env.single_action_space
    if not hasattr(space, "n"):
        raise ConfigError(f"env {config.env.env!r} has action space {space}; agents need Discrete")
    return _build_model(config, env.observation_description, int(space.n))


def _build_model(config: TrainConfig, description: dict, num_actions: int) -> ActorCritic:
    c = config.core
    factory = core_factory(c.core, c.hidden_size, c.core_options, refine_bias=c.refine_bias)
    return ActorCritic.build(description, num_actions, factory, **config.model_options())


def model_factory(config: TrainConfig, model: ActorCritic):
    """A picklable zero-argument callable that builds ``model``'s architecture (for Ray actors)."""
    return functools.partial(_build_model, config, model.torso_description, model.num_actions)


def env_factory(config: TrainConfig, options: dict | None = None):
    """A picklable ``seed -> VectorEnv`` (actor processes build their own env), with the run's env
    options or ``options`` (a curriculum stage's)."""
    return functools.partial(_make_env, config.env.env, config.env.num_envs, config.env.env_backend,
                             dict(config.env.env_options if options is None else options))


def _make_env(env_id, num_envs, backend, options, seed):
    return make_vector_env(env_id, num_envs, seed, backend=backend, **options)


class Progress:
    """Frame counter shared with the learning-rate schedule."""

    def __init__(self, total: int):
        self.frames, self.total = 0, total

    def lr_factor(self, _step: int) -> float:
        return max(0.0, 1.0 - self.frames / self.total)


def set_learning_rate(optimizer: torch.optim.Optimizer, scheduler, rate: float, progress: Progress) -> None:
    """Every parameter group at ``rate``: times the linear schedule's factor now where there is one,
    and as the schedule's base from here on."""
    for group in optimizer.param_groups:
        group["lr"] = rate * (progress.lr_factor(0) if scheduler is not None else 1.0)
        group["initial_lr"] = rate
    if scheduler is not None:
        scheduler.base_lrs = [rate] * len(optimizer.param_groups)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a CUDA device that is not there is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def core_gates(model: ActorCritic, batch) -> dict:
    """Gate activations of the core at the first step of a batch, from its stored state."""
    return model.gate_activations({k: v[0] for k, v in batch.obs.items()}, batch.last_action[0],
                                  batch.reward[0], batch.is_first[0], batch.initial_state)


def train(config: TrainConfig, resume: bool) -> int:
    """Validate, lock the run directory, then train (see ``_train``); the lock is dropped however
    training ends (and by the kernel when the process dies)."""
    run = config.run
    logdir = Path(run.logdir)
    torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)
    np.random.seed(run.seed)
    random.seed(run.seed)
    try:  # validate env and core (one-line errors) before anything is written
        probe = make_vector_env(config.env.env, 1, run.seed, backend=config.env.env_backend,
                                **config.env.env_options)
        if run.init_seed in (-1, run.seed):
            model = build_model(config, probe)
        else:  # the weights from init_seed; the RNG goes on as if they had not been drawn
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(run.init_seed)
                model = build_model(config, probe)
        curriculum = make_curriculum(config)
        try:
            if curriculum.delays and curriculum.stage_options:  # a bad stage option is one line now
                check_stage_env(config, curriculum, probe)
        finally:
            probe.close()
        if config.env.curriculum_env_options and not curriculum.delays:
            print("curriculum_env_options: no curriculum stage to apply them to; the task keeps its own "
                  "env options")
        if config.env.curriculum_task_learning_rate and not curriculum.delays:
            e = config.env
            print(f"curriculum_task_learning_rate: no curriculum stage before the task; it trains at "
                  f"learning_rate until it passes as a stage would (curriculum_success "
                  f"{e.curriculum_success:g} over {e.curriculum_hold} window{'s' * (e.curriculum_hold > 1)}), "
                  f"then at {e.curriculum_task_learning_rate:g}")
        if run.init_from and not resume:  # before anything is written: a misfit is one line
            weights, source, skipped = load_weights(run.init_from)
            warn_skipped(skipped, source)
            restore_model(model, weights, source)
            print(f"starting from the weights of {source}")
        device = resolve_device(run.device)
        if run.runtime == "ray":
            import_ray()
            check_ray_address(run.ray_address)
    except ImportError as error:
        raise ConfigError(str(error)) from None
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None
    with RunLock(logdir):
        if not resume and (logdir / "checkpoints" / "latest.pt").exists():
            raise ConfigError(f"{logdir} got a checkpoint from another run while this one started; "
                              "run the command again to resume it")
        return _train(config, resume, model, device, curriculum)


def check_stage_env(config: TrainConfig, curriculum: DelayCurriculum, task_env) -> None:
    """The env of each of the curriculum's stages (with ``curriculum_env_options``) can be made and
    has the task's observations and actions (one network serves them all); else ``ValueError``, one
    line naming the stage options."""
    e = config.env
    options = ", ".join(f"{k}={v}" for k, v in curriculum.stage_options.items())
    for delay in curriculum.delays:
        try:
            stage_env = make_vector_env(e.env, 1, config.run.seed, backend=e.env_backend,
                                        **curriculum.stage_options_at(delay, e.env_options))
        except ValueError as error:
            raise ValueError(f"curriculum_env_options {options}, at delay {delay}: {error}") from None
        same = (stage_env.single_observation_space == task_env.single_observation_space
                and stage_env.single_action_space == task_env.single_action_space)
        stage_env.close()
        if not same:
            raise ValueError(f"curriculum_env_options {options} change the env's observations or actions; "
                             "the stages must have the task's")


def make_curriculum(config: TrainConfig) -> DelayCurriculum:
    """The run's delay curriculum (no stages where ``delay_curriculum`` is empty or the env has no
    delay; the latter is said on stdout)."""
    e = config.env
    delay = env_delay(e.env, **e.env_options) if e.delay_curriculum else None
    if e.delay_curriculum and delay is None:
        print(f"delay curriculum: env {e.env!r} has no delay option; training on the task itself")
    return DelayCurriculum(e.delay_curriculum, delay, e.curriculum_success, window=RunLogger.WINDOW,
                           min_frames=e.curriculum_min_frames, unroll_lengths=e.curriculum_unroll_lengths,
                           stage_options=e.curriculum_env_options, hold=e.curriculum_hold,
                           task_learning_rate=e.curriculum_task_learning_rate)


def _train(config: TrainConfig, resume: bool, model: ActorCritic, device: torch.device,
           curriculum: DelayCurriculum) -> int:
    run, a = config.run, config.agent
    logdir = Path(run.logdir)
    model.to(device)
    optimizer = make_optimizer(a.optimizer, model.parameters(), a.learning_rate, a.adam_eps)
    progress = Progress(run.total_frames)
    scheduler = (torch.optim.lr_scheduler.LambdaLR(optimizer, progress.lr_factor)
                 if config.agent.lr_schedule == "linear" else None)

    def follow_curriculum_rate() -> float:
        """The optimiser at the curriculum's learning rate now (the task's, or the run's); returns it."""
        rate = curriculum.learning_rate(a.learning_rate)
        set_learning_rate(optimizer, scheduler, rate, progress)
        return rate

    latest = logdir / "checkpoints" / "latest.pt"
    remove_stale_temporaries(latest.parent)  # left by a kill inside a save; this run holds the lock
    checkpoint, source = None, latest
    if resume:
        checkpoint, source, skipped = load_run_checkpoint(latest.parent)
        warn_skipped(skipped, source)

    retain_freed_memory()
    learner = Learner(model, optimizer, scheduler, learner_settings(a))
    saved = {"updates": 0, "frames": 0, "written": False}  # what latest.pt holds
    if checkpoint is not None:
        restore_model(model, checkpoint["model"], source)
        restore_state(optimizer, checkpoint["optimizer"], source, "optimizer")
        if scheduler is not None and checkpoint["scheduler"]:
            restore_state(scheduler, checkpoint["scheduler"], source, "learning-rate schedule")
        progress.frames = int(checkpoint["frames"])
        learner.updates = int(checkpoint["updates"])
        curriculum.load_state_dict(checkpoint.get("curriculum", {"stage": len(curriculum.delays)}))
        restore_rng(checkpoint["rng"])
        saved = {"updates": learner.updates, "frames": progress.frames, "written": True}
        # the schedule follows the (maybe extended) budget; the rate and eps are the config's
        follow_curriculum_rate()
        if a.optimizer == "adam":
            for group in optimizer.param_groups:
                group["eps"] = a.adam_eps
    if run.runtime == "async":
        torch.set_num_threads(max(1, run.threads - run.num_actors))  # actors take a core each

    exploration = (RepeatExploration(float(a.repeat_exploration), a.repeat_exploration_length)
                   if a.repeat_exploration > 0 else None)
    if exploration:
        print(f"actors: at each step a {exploration.epsilon:g} chance of repeating a random action for "
              f"1 to {exploration.max_length} steps (--repeat-exploration)")

    def start_runtime():
        """Actors on the curriculum's current stage, with fresh episodes (after a resume too). A
        second signal while they start raises ``StopRequested`` (an actor or env that hangs in its
        start cannot keep a stopped run alive)."""
        stop["acting"] = True
        try:
            envs = env_factory(config, curriculum.env_options(config.env.env_options))
            started = make_runtime(run.runtime, envs, model, curriculum.unroll_length(a.unroll_length),
                                   a.batch_size, training_seed(run.seed, learner.updates),
                                   num_actors=run.num_actors, ray_address=run.ray_address,
                                   model_factory=model_factory(config, model),
                                   exploration=exploration)
        finally:
            stop["acting"] = False
        return started

    stop = {"signal": None, "acting": False}

    def request_stop(signum, _frame):
        again = stop["signal"] is not None
        stop["signal"] = signum
        if again and stop["acting"]:  # a second signal while an env step hangs: stop waiting for it
            raise StopRequested

    # Installed before the run directory gets its files and the actors start: a signal during
    # start-up (a suite's stop can send one) then stops the run with a checkpoint, where Python's
    # default SIGINT raised out of the set-up with none.
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    runtime = logger = None

    def save(milestone: bool = False) -> None:
        payload = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "frames": progress.frames, "updates": learner.updates, "rng": rng_state(),
            "curriculum": curriculum.state_dict(),
        }
        save_checkpoint(latest, payload)
        saved.update(updates=learner.updates, frames=progress.frames, written=True)
        if milestone:
            save_checkpoint(logdir / "checkpoints" / f"frames_{progress.frames:012d}.pt", payload)

    def diverged(error: NonFiniteError) -> TrainingError:
        kept = (f"{latest} keeps update {saved['updates']} ({saved['frames']:,} frames)"
                if saved["written"] else "no checkpoint was written")
        return TrainingError(f"{error.where} at update {error.update} (frames {progress.frames:,} to "
                             f"{progress.frames + runtime.frames_per_batch:,}); stopped without saving "
                             f"it: {kept}")

    try:
        logdir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (logdir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        if curriculum.delays:
            print(curriculum.describe() + f"; training at delay {curriculum.delay}")
        try:
            runtime = start_runtime()
        except StopRequested:  # stopped twice while the actors started: save the model as it is
            pass
        logger = RunLogger(logdir, run.total_frames,
                           resume_frames=progress.frames if checkpoint is not None else None)
        logger.new_task(stage=not curriculum.final)
        logger.config(config.to_dict())
        last_log = last_save = time.monotonic()
        next_milestone = (progress.frames // (run.total_frames // 4 or 1) + 1) * (run.total_frames // 4 or 1)
        stats: dict = {}
        solved = ""
        while progress.frames < run.total_frames and stop["signal"] is None:
            stop["acting"] = True
            try:
                batch = runtime.next_batch(lambda: stop["signal"] is not None)
            except StopRequested:  # the model is untouched: save it below
                break
            finally:
                stop["acting"] = False
            batch = batch.to(device)
            try:
                stats = learner.update(batch)
            except NonFiniteError as error:
                raise diverged(error) from None
            progress.frames += runtime.frames_per_batch
            runtime.publish(learner.updates)
            episodes = runtime.pop_episodes()
            logger.episodes(episodes, progress.frames)
            score, count = logger.window()
            if curriculum.final and count >= logger.WINDOW and score >= run.stop_at:
                solved = f"; stopped at {logger.window_name} {score:.2f} >= stop_at {run.stop_at:g}"
                break
            if curriculum.passed(score, count, progress.frames, len(episodes)):
                print(f"delay curriculum: {logger.window_name} {score:.2f} over the last "
                      f"{count} episodes at delay {curriculum.delay} "
                      f"({progress.frames:,} frames); ", end="")
                runtime.close()
                runtime = None
                curriculum.advance(progress.frames)
                logger.new_task(stage=not curriculum.final)
                try:
                    runtime = start_runtime()
                except StopRequested:  # stopped twice while the next stage's actors started
                    break
                rate = follow_curriculum_rate()
                print(f"now delay {curriculum.delay}, unrolls of {curriculum.unroll_length(a.unroll_length)}"
                      + (f", learning rate {rate:g}" if rate != a.learning_rate else ""), flush=True)
            elif curriculum.task_passed(score, count, progress.frames, len(episodes)):
                rate = follow_curriculum_rate()
                print(f"the task passed: {logger.window_name} {score:.2f} over the last {count} episodes "
                      f"({progress.frames:,} frames); learning rate {rate:g} from here on", flush=True)
            if curriculum.delays:
                stats["curriculum/delay"] = curriculum.delay
            now = time.monotonic()
            if now - last_log >= run.log_every_s:
                stats["perf/policy_lag"] = runtime.policy_lag()
                logger.scalars(stats, progress.frames)
                logger.gates(core_gates(model, batch), progress.frames)
                last_log = now
            if progress.frames >= next_milestone:
                save(milestone=True)
                next_milestone += run.total_frames // 4 or 1
                last_save = now
            elif now - last_save >= run.checkpoint_every_s:
                save()
                last_save = now
        if stats and runtime is not None:
            stats["perf/policy_lag"] = runtime.policy_lag()
            logger.scalars(stats, progress.frames)
        save()
    finally:
        if runtime is not None:
            runtime.close()
        if logger is not None:
            logger.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    mean, success = logger.mean_return(), logger.success_rate()
    status = f"stopped by signal {stop['signal']}" if stop["signal"] else "done" + solved
    if not curriculum.final:
        status += f" at delay {curriculum.delay}, a curriculum stage"
    print(f"{status}: {progress.frames:,} frames, mean return of the last "
          f"{len(logger.recent_returns)} episodes: {'-' if mean is None else f'{mean:.3f}'}"
          + ("" if success is None else f", success rate {success:.3f}"))
    print(f"curves: tensorboard --logdir {logdir}    resume: {resume_command()} --logdir {logdir}")
    return 128 + stop["signal"] if stop["signal"] else 0  # 130 for SIGINT, 143 for SIGTERM: not finished


def evaluate(args, overrides: dict) -> int:
    """Play ``--episodes`` episodes with the run's latest checkpoint; write ``eval.json``.

    Takes no lock on the run directory, by choice: evaluating a run while it trains is safe (the run
    replaces ``latest.pt`` atomically, so this reads one whole checkpoint) and useful, and what this
    writes (``eval.json``, atomically, and ``videos/``) is nothing a training run writes.
    """
    logdir = Path(overrides.get("logdir", TrainConfig().run.logdir))
    if not (logdir / "config.yaml").exists():
        raise ConfigError(f"no run in {str(logdir)!r}: config.yaml is missing")
    count = EVAL_EPISODES if args.episodes is None else args.episodes
    if count < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {count}")
    config = load_run_config(logdir / "config.yaml")
    # --env-option: the trained agent on a variant of its task (e.g. another delay)
    config = config.with_options(env=key_values(args.env_option, "--env-option"))
    checkpoint, source, skipped = load_run_checkpoint(logdir / "checkpoints", keys=("model",))
    warn_skipped(skipped, source)
    torch.set_num_threads(config.run.threads)
    try:
        env = make_vector_env(config.env.env, min(count, 8), EVAL_SEED,
                              backend=config.env.env_backend, **config.env.env_options)
        model = build_model(config, env)
        video_env = make_video_env(config) if args.video else None  # before the evaluation is spent
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None
    restore_model(model, checkpoint["model"], source)
    model.eval()
    episodes = play(model, env, count, args.greedy)
    env.close()
    returns = [episode.ret for episode in episodes]
    result = {"episodes": len(returns), "mean_return": float(np.mean(returns)), "returns": returns,
              "env_options": dict(config.env.env_options)}
    verdicts = [episode.success for episode in episodes if episode.success is not None]
    if verdicts:  # the task says whether each episode succeeded (envs.Episode)
        result["success_rate"] = float(np.mean(verdicts))
    success = f", success rate {result['success_rate']:.3f}" if verdicts else ""
    episodes = f"{len(returns)} episode{'s' * (len(returns) != 1)}"
    print(f"mean return over {episodes}: {result['mean_return']:.3f}{success}")
    try:
        replace_atomically(logdir / "eval.json", lambda tmp: tmp.write_text(json.dumps(result, indent=2)))
    except OSError as error:  # the result is printed above; say why it could not be kept
        raise ConfigError(f"cannot write {logdir / 'eval.json'}: {error.strerror or error}") from None
    print(f"written to {logdir / 'eval.json'}")
    if video_env is not None:
        for path in record_videos(model, config, video_env, logdir / "videos", min(count, 3), args.greedy):
            print(f"video: {path}")
    return 0


def play(model: ActorCritic, env, episodes: int, greedy: bool) -> list[Episode]:
    """Run until ``episodes`` episodes finished, carrying the core state of every env (the actor's
    own stepping; it resets the env with the seed it was made with, on every backend); returns
    their ``envs.Episode``s."""
    actor = Actor(env, model, EVAL_SEED)
    finished: list[Episode] = []
    while len(finished) < episodes:
        actor.step(greedy)
        finished += env.pop_episodes()
    return finished[:episodes]


def make_video_env(config: TrainConfig):
    """The single env that ``record_videos`` renders; a ``ConfigError`` where Pillow is missing or the
    env does not render RGB frames."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ConfigError("--video needs Pillow: pip install 'gated-rl[video]'") from None
    probe = make_env(config.env.env, **config.env.env_options)  # asked first: not every env takes the flag
    modes = list(probe.metadata.get("render_modes") or [])
    probe.close()
    if "rgb_array" not in modes:
        raise ConfigError(f"--video: env {config.env.env!r} does not render RGB frames (its render modes: "
                          f"{modes})")
    return make_env(config.env.env, render_mode="rgb_array", **config.env.env_options)


def record_videos(model, config, env, folder: Path, count: int, greedy: bool) -> list[Path]:
    """Up to ``count`` GIFs of episodes of ``env`` (from ``make_video_env``) in ``folder``."""
    from PIL import Image

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write videos to {str(folder)!r}: {error.strerror or error}") from None
    paths = []
    player = EpisodePlayer(model, env, greedy)
    for episode in range(count):
        frames = [env.render() for _ in player.steps(seed=video_seed(config.run.seed, episode))]
        frames.append(env.render())
        if frames[0] is None:
            raise ConfigError(f"env {config.env.env!r} cannot render rgb frames")
        images = [Image.fromarray(f) for f in frames]
        path = folder / f"episode_{episode}.gif"
        replace_atomically(path, functools.partial(save_gif, images))
        paths.append(path)
    env.close()
    return paths


def save_gif(images: list, path: Path) -> None:
    """The PIL ``images`` (an episode's frames) as one looping GIF at ``path``, whatever its suffix."""
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=120, loop=0)


def main(argv: list[str] | None = None) -> int:
    try:
        args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
        if args.eval:
            return evaluate(args, overrides)
        config, resume = resolve_config(args, overrides)
        return train(config, resume)
    except (UsageError, ConfigError, CheckpointError, RunDirError) as error:
        print(f"{prog()}: error: {_first_line(error)}", file=sys.stderr)
        return 2
    except TrainingError as error:
        print(f"{prog()}: error: {_first_line(error)}", file=sys.stderr)
        return 1


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
