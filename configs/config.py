"""The training configuration: validated dataclasses, YAML presets, command-line overrides.

A preset in ``configs/*.yaml`` fills ``TrainConfig``; flags override single fields by name (every
field name is unique across the sections, so ``--learning-rate 1e-3`` needs no section prefix).
Validation happens in ``__post_init__`` and raises ``ConfigError`` with one line naming the bad value.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).resolve().parent
# The allowed values of the choice fields. configs imports nothing of ours, so the packages that
# implement each choice keep their own list, and tests/test_configs.py checks the two agree.
BACKENDS = ("auto", "gymnasium", "envpool")  # envs.vector.BACKENDS
AGENTS = ("impala", "a2c")  # agents.learner.AGENTS
OPTIMIZERS = ("adam", "rmsprop")  # agents.learner.OPTIMIZERS
LR_SCHEDULES = ("constant", "linear")
RUNTIMES = ("sync", "async", "ray")  # agents.runtimes.RUNTIMES
REFINE_BIASES = ("neg_forget", "zero")  # cores.gates.REFINE_BIASES
MAX_SEED = 2**31 - 1  # numpy takes seeds below 2**32; env seeds are hashed from it (agents/seeds.py)
MAX_CONFIG_BYTES = 1 << 20


class ConfigError(ValueError):
    """A bad configuration value, key or file; the message is one line."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def safe_yaml(text: str, what: str) -> Any:
    """``yaml.safe_load`` for configs and flag values, refusing anchors and aliases: a config expands to
    no more than its own text (an alias "bomb" of a few lines would otherwise expand to gigabytes when
    the config is copied or printed). Raises ``ConfigError`` naming ``what``."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ConfigError(f"{what}: YAML aliases (*name) are not allowed in a config")
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"{what} is not valid YAML: {first}") from None


def key_values(pairs: list[str] | None, flag: str) -> dict:
    """``["delay=30", "fixed_pads=false"]`` -> ``{"delay": 30, "fixed_pads": False}``, each value read as
    YAML (``safe_yaml``), for ``--env-option``/``--core-option`` style flags. Raises ``ConfigError``."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        _check(bool(sep and key), f"{flag} expects key=value, got {pair!r}")
        out[key] = safe_yaml(value, f"{flag} {key}")
    return out


#: Field annotation -> (accepted Python types, how the error names them)
_FIELD_TYPES = {"int": ((int,), "an integer"), "float": ((int, float), "a number"),
                "str": ((str,), "a string"), "bool": ((bool,), "true or false"), "dict": ((dict,), "a mapping"),
                "list": ((list,), "a list")}


def _check_field_type(cls, key: str, value: Any) -> None:
    """A value read from YAML or a flag has the type of its field (``discount: "0.9"`` is refused
    here with one line instead of failing in a comparison)."""
    annotation = _annotations(cls)[key]
    if annotation not in _FIELD_TYPES:
        return
    types, kind = _FIELD_TYPES[annotation]
    valid = isinstance(value, types) and (annotation == "bool" or not isinstance(value, bool))
    _check(valid, f"{key} must be {kind}, got {_short(value)}")


@functools.cache
def _annotations(cls) -> dict[str, str]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (int, float, str, bool)) or value is None else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _choice(name: str, value: Any, allowed: tuple) -> None:
    _check(value in allowed, f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


@dataclass
class EnvConfig:
    env: str = "MiniGrid-MemoryS7-v0"
    """Environment id (see envs.available_envs(); any gymnasium id or module:EnvName-vN)."""
    num_envs: int = 16
    """Environments stepped as one batch per actor."""
    env_backend: str = "auto"
    """auto | gymnasium | envpool."""
    env_options: dict = field(default_factory=dict)
    """Keyword arguments for the env constructor (e.g. delay for the visual match tasks)."""
    delay_curriculum: list = field(default_factory=list)
    """Shorter delays to learn first, e.g. 15,60 (envs with a delay option: visual match, cue
    recall): training starts at the first that is shorter than the task's own delay and moves on
    once curriculum_success is reached, ending on the task itself (agents/curriculum.py). Empty:
    the task from the start. Envs without a delay train on the task (a printed note says so)."""
    curriculum_success: float = 0.9
    """delay_curriculum: the success rate (or, for tasks without a verdict, mean return) of the
    last 100 episodes at a stage's delay that moves training on to the next."""
    curriculum_hold: int = 3
    """delay_curriculum: a stage passes once its window has stayed at or above curriculum_success
    while this many windows of episodes ended (1: the first window at it). Since 2026-12-05 (before,
    1): where an update ends more episodes than a window holds, each window is one update's, and
    one-sided Active Visual Match agents at 0.65 passed delay 15 on a single window of 0.91-0.92,
    three times (docs/AGENTS.md)."""
    curriculum_min_frames: int = 0
    """delay_curriculum: frames each stage trains at least before it may move on (0: it moves on as
    soon as it succeeds; a memory carried from a shorter delay often passes the next at once)."""
    curriculum_unroll_lengths: list = field(default_factory=list)
    """delay_curriculum: the unroll length of the stages before the task, one per listed delay, or
    one for all (empty: unroll_length). A short delay needs no long unroll, and learns in fewer
    frames with a shorter one (docs/AGENTS.md)."""
    curriculum_task_learning_rate: float = 0.0
    """The learning rate of the task itself once training reaches it through the stages of
    delay_curriculum, or, where no stage comes before it, once the task passes as a stage would
    (curriculum_success held over curriculum_hold windows, after curriculum_min_frames); until then
    learning_rate (0: learning_rate throughout). Turned-round Active Visual Match agents fell back
    from 0.9 within 2M frames at delay 60 at 1e-3 and held it for 2.4M-3.5M frames at 3e-4, 4 of 4
    seeds (docs/AGENTS.md, "Holding the turn at delay 60")."""
    curriculum_env_options: dict = field(default_factory=dict)
    """delay_curriculum: env options of the stages before the task, on top of env_options (the task
    keeps its own), e.g. cue_steps=20 for Active Visual Match: a longer cue phase to learn to look
    both ways in. Not delay or min_delay, which the stages set; the stages' observations and
    actions must be the task's."""

    def __post_init__(self):
        _check(isinstance(self.env, str) and bool(self.env), f"env must be an id, got {self.env!r}")
        _check(isinstance(self.num_envs, int) and self.num_envs >= 1,
               f"num_envs must be a positive integer, got {self.num_envs!r}")
        _choice("env_backend", self.env_backend, BACKENDS)
        _check(isinstance(self.env_options, dict), f"env_options must be a mapping, got {self.env_options!r}")
        delays = self.delay_curriculum
        _check(isinstance(delays, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                for d in delays),
               f"delay_curriculum must be a list of positive integers, got {str(delays)[:60]}")
        _check(all(a < b for a, b in zip(delays, delays[1:], strict=False)),
               f"delay_curriculum must increase, got {delays}")
        success = self.curriculum_success
        _check(isinstance(success, (int, float)) and not isinstance(success, bool) and 0.0 < success <= 1.0,
               f"curriculum_success must be in (0, 1], got {success!r}")
        _check(isinstance(self.curriculum_hold, int) and not isinstance(self.curriculum_hold, bool)
               and self.curriculum_hold >= 1,
               f"curriculum_hold must be an integer >= 1, got {self.curriculum_hold!r}")
        _check(isinstance(self.curriculum_min_frames, int) and self.curriculum_min_frames >= 0,
               f"curriculum_min_frames must be an integer >= 0, got {self.curriculum_min_frames!r}")
        unrolls = self.curriculum_unroll_lengths
        _check(isinstance(unrolls, list) and all(isinstance(u, int) and not isinstance(u, bool) and u >= 1
                                                 for u in unrolls),
               f"curriculum_unroll_lengths must be a list of positive integers, got {str(unrolls)[:60]}")
        _check(not delays or len(unrolls) in (0, 1, len(delays)),  # without stages they go unused
               f"curriculum_unroll_lengths must give one length, or one per delay of delay_curriculum "
               f"({len(delays)}), got {len(unrolls)}")
        rate = self.curriculum_task_learning_rate
        _check(isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate)
               and rate >= 0,
               f"curriculum_task_learning_rate must be a finite number >= 0 (0: learning_rate), got {rate!r}")
        staged = self.curriculum_env_options
        _check(isinstance(staged, dict), f"curriculum_env_options must be a mapping, got {staged!r}")
        _check(not {"delay", "min_delay"} & set(staged),
               f"curriculum_env_options cannot set {', '.join(sorted({'delay', 'min_delay'} & set(staged)))}: "
               "the stages set the delay (delay_curriculum)")


@dataclass
class CoreConfig:
    core: str = "ur_lstm"
    """Core name (cores.available_cores()) or package.module:ClassName."""
    hidden_size: int = 128
    """Core output size."""
    core_options: dict = field(default_factory=dict)
    """Options of the core (e.g. num_layers, gate_init, t_max)."""
    refine_bias: str = "zero"
    """How the refine gate of the UR cores starts: zero (state-spaces' form: r near 1/2, the effective
    gate near UGI's f; the default since 2026-12-02, it learns a delayed comparison 2-3x faster,
    docs/AGENTS.md) | neg_forget (r = sigmoid(P_r - b_f), r0mainK's reading of the paper's pseudo-code
    and what the cores do when made without the option; the effective gate then starts near
    2f - 3f^2 + 2f^3, about half of each UGI timescale). Given to every core that takes a refine_bias
    option (``cores.with_defaults``); a --core-option refine_bias wins."""
    torso_size: int = 128
    """Features the torso hands to the core (plus one-hot last action and last reward)."""
    head_size: int = 128
    """Hidden ReLU layer shared by the heads (policy, baseline, action value) on what they read (the
    core's output and the view-match scores); 0: linear heads. 128 since 2026-12-05 (0 before): with
    it MiniGrid-MemoryS13Random is learned by a seed whose linear heads never learned it (docs/AGENTS.md)."""
    observation_gate: bool = True
    """Multiply the core's output elementwise by (1 + a linear map of the torso features, zero at the
    start) before the heads, so comparing what is in view with what is remembered is linear in the
    features."""
    input_norm: bool = True
    """LayerNorm of the core's input (torso features, one-hot last action, last reward); the
    observation gate then reads the normalised torso features."""
    previous_inputs: bool = True
    """Feed the previous action (one-hot) and reward to the core; false makes the mlp core a control
    without any memory (with them it can tell one step back)."""
    view_match: bool = True
    """The heads also read, for each element in view (a MiniGrid image cell, a multi-discrete slot, a
    key of a shared vocabulary), the dot product of its embedding (weights shared over positions)
    with a query from the core's output: 'this cell shows what I remember' (agents/view_match.py).
    No effect on observations without such elements. A default since 2026-12-03 (false before)."""
    policy_query: bool = False
    """With view_match, a second score per element from a second query that the RL losses train and
    the recognition loss does not (it trains the first to say 'seen again', which is not always what
    the task asks: MiniGrid-Memory's two end objects can both be seen again at the junction)."""
    uniform_policy_start: bool = False
    """Zero the policy layer's weights and bias at initialisation, so every seed starts from the
    uniform policy (by default a seed's initial policy leans a few points towards some action)."""

    def __post_init__(self):
        _check(isinstance(self.core, str) and bool(self.core), f"core must be a name, got {self.core!r}")
        for name in ("hidden_size", "torso_size"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _check(isinstance(self.head_size, int) and not isinstance(self.head_size, bool)
               and self.head_size >= 0, f"head_size must be an integer >= 0, got {self.head_size!r}")
        _check(isinstance(self.core_options, dict),
               f"core_options must be a mapping, got {self.core_options!r}")
        _choice("refine_bias", self.refine_bias, REFINE_BIASES)
        _check(isinstance(self.observation_gate, bool),
               f"observation_gate must be true or false, got {self.observation_gate!r}")
        _check(isinstance(self.input_norm, bool),
               f"input_norm must be true or false, got {self.input_norm!r}")
        _check(isinstance(self.previous_inputs, bool),
               f"previous_inputs must be true or false, got {self.previous_inputs!r}")
        _check(isinstance(self.view_match, bool), f"view_match must be true or false, got {self.view_match!r}")
        _check(isinstance(self.policy_query, bool),
               f"policy_query must be true or false, got {self.policy_query!r}")
        _check(isinstance(self.uniform_policy_start, bool),
               f"uniform_policy_start must be true or false, got {self.uniform_policy_start!r}")
        _check(self.view_match or not self.policy_query,
               "policy_query true needs view_match true (it is a second view-match query)")

    def network_options(self) -> dict:
        """The fields that shape the network around the core: keyword arguments of
        ``agents.networks.ActorCritic.build`` (the rest, core/hidden_size/core_options/refine_bias, make
        the core)."""
        return {"torso_size": self.torso_size, "previous_inputs": self.previous_inputs,
                "head_size": self.head_size, "observation_gate": self.observation_gate,
                "input_norm": self.input_norm, "view_match": self.view_match,
                "policy_query": self.policy_query, "uniform_policy_start": self.uniform_policy_start}


@dataclass
class AgentConfig:
    agent: str = "impala"
    """impala (V-trace) | a2c (on-policy GAE)."""
    unroll_length: int = 80
    """Transitions per unroll (T); each unroll stores T + 1 steps. Gradients do not cross unroll
    boundaries, so a cue and its recall must fall in one unroll to be linked: make it longer than the
    delay to bridge."""
    batch_size: int = 1
    """Unrolls per learner update (of num_envs sequences each)."""
    epochs: int = 0
    """Optimiser steps on each batch (sample reuse, as PPO's epochs); 0: 3 for impala, 1 for a2c.
    More than 1 needs impala: V-trace corrects for the policy having moved since the batch was
    acted; a2c assumes on-policy data."""
    action_value_cost: float = 8.0
    """Weight of an action-value loss: with > 0 the network gets a Q(x, a) head beside the policy,
    regressed on r_t + gamma v_{t+1} for the action taken. It does not act; it gives the shared core
    a dense signal where the policy gradient has one sampled action (see docs/AGENTS.md)."""
    recognition_cost: float = 1.0
    """Weight of a recognition loss on the view-match scores: each is trained, as a logit, to say
    whether its element's value is seen again (in view earlier in the episode, then out of view, now
    back), so the core learns to keep what it saw before the reward teaches it why
    (agents/recognition.py). 0: off. No effect without view-match scores (view_match false, or an
    observation without elements); given as a flag with view_match false it is refused. A default
    since 2026-12-03 (0 before)."""
    novelty_bonus: float = 0.0
    """Intrinsic reward, added to the learner's rewards only, for each view-match element value (an
    object and colour; a symbol) that comes into view for the first time in the episode
    (agents/novelty.py): a nearer reason to go and look for a cue than the recall's reward. 0: off.
    Needs view-match elements, as recognition_cost does."""
    view_novelty_bonus: float = 0.0
    """Intrinsic reward, added to the learner's rewards only, for each step whose whole observation
    has not been seen before in the episode (agents/novelty.py): where the element bonus pays only
    once a cue is found, this one pays for walking into a part of a room not yet seen, cue or not.
    0: off. Needs no view match."""
    repeat_exploration: float = 0.0
    """Probability at each acting step that an env starts repeating one random action for 1 to
    repeat_exploration_length steps (agents/exploration.py, after ez-greedy): runs of moves that a
    confident policy never samples, e.g. walking back the way it came. The value targets follow the
    repeats; the policy gradient leaves them out. Training actors only. 0: off."""
    repeat_exploration_length: int = 10
    """The longest repeat of repeat_exploration (lengths drawn uniformly from 1 to this)."""
    advantage_norm: bool = False
    """Divide each batch's policy-gradient advantages by their standard deviation, so the entropy
    cost weighs the same against rewards of any scale (POPGym's per-step rewards are 1/T). Off by
    default: once a policy is right it blows the advantages' noise up to unit size and can pull the
    policy back off (docs/AGENTS.md)."""
    discount: float = 0.99
    """Per-step discount gamma."""
    baseline_cost: float = 0.5
    """Weight of the value loss."""
    entropy_cost: float = 0.01
    """Weight of the entropy bonus."""
    td_lambda: float = 0.95
    """lambda of the multi-step targets: GAE(lambda) for a2c, V-trace's trace cutting for impala."""
    clip_rho: float = 1.0
    """impala: V-trace rho-bar (value targets)."""
    clip_pg_rho: float = 1.0
    """impala: V-trace rho-bar of the policy gradient."""
    clip_c: float = 1.0
    """impala: V-trace c-bar (trace cutting)."""
    optimizer: str = "adam"
    """adam | rmsprop."""
    adam_eps: float = 1e-8
    """adam: epsilon added to the root of the second moment (torch's 1e-8); rmsprop keeps IMPALA's 0.01."""
    learning_rate: float = 1e-3
    """Initial learning rate."""
    lr_schedule: str = "constant"
    """constant | linear (decays to zero at total_frames)."""
    max_grad_norm: float = 40.0
    """Gradient-norm clipping."""

    def __post_init__(self):
        for f in dataclasses.fields(self):  # inf passes "> 0" and spoils every weight at the first update
            value = getattr(self, f.name)
            _check(not isinstance(value, float) or math.isfinite(value),
                   f"{f.name} must be a finite number, got {value!r}")
        _choice("agent", self.agent, AGENTS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("unroll_length", "batch_size"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _check(isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs >= 0,
               f"epochs must be an integer >= 0 (0: the agent's default), got {self.epochs!r}")
        _check(self.epochs <= 1 or self.agent == "impala",
               f"epochs={self.epochs} needs agent impala (V-trace corrects for reused batches); "
               f"agent {self.agent} learns from each batch once")
        _check(0.0 <= self.discount <= 1.0, f"discount must be in [0, 1], got {self.discount!r}")
        _check(0.0 <= self.td_lambda <= 1.0, f"td_lambda must be in [0, 1], got {self.td_lambda!r}")
        repeat = self.repeat_exploration
        _check(isinstance(repeat, (int, float)) and not isinstance(repeat, bool) and 0.0 <= repeat < 1.0,
               f"repeat_exploration must be in [0, 1) (at 1 every step is a repeat's and the policy never "
               f"trains), got {self.repeat_exploration!r}")
        length = self.repeat_exploration_length
        _check(isinstance(length, int) and not isinstance(length, bool) and length >= 1,
               f"repeat_exploration_length must be a positive integer, got {self.repeat_exploration_length!r}")
        _check(self.optimizer == "adam" or self.adam_eps == 1e-8,
               f"adam_eps={self.adam_eps!r} applies to optimizer adam, not {self.optimizer}")
        for name in ("learning_rate", "adam_eps", "max_grad_norm", "clip_rho", "clip_pg_rho", "clip_c"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and value > 0, f"{name} must be positive, got {value!r}")
        for name in ("baseline_cost", "entropy_cost", "action_value_cost", "recognition_cost",
                     "novelty_bonus", "view_novelty_bonus"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and value >= 0, f"{name} must be >= 0, got {value!r}")


@dataclass
class RunConfig:
    seed: int = 0
    """Seeds torch, numpy and the envs."""
    init_seed: int = -1
    """The torch seed the network's initial weights are drawn with; -1: ``seed``. Everything else
    (env seeds, action sampling) still follows ``seed``, so two runs can tell a seed's initial network
    from its episodes (docs/AGENTS.md, MiniGrid section). A resumed run ignores it."""
    total_frames: int = 2_000_000
    """Environment steps to train for (all envs together)."""
    logdir: str = "runs/default"
    """Run directory: config.yaml, TensorBoard events, checkpoints/, metrics.jsonl."""
    runtime: str = "sync"
    """sync (one process, acting and learning in turn) | async (actor processes + learner) | ray (Ray
    actors + learner; needs the ray extra)."""
    num_actors: int = 1
    """async, ray: actors (each with num_envs envs and a CPU copy of the policy)."""
    ray_address: str = ""
    """ray: the cluster to join (ray start --head prints it); empty starts a local Ray instance."""
    device: str = "auto"
    """Learner device: auto (cuda when available) | cpu | cuda | cuda:N. Actors act on the CPU."""
    checkpoint_every_s: float = 120.0
    """Seconds between checkpoints (plus one at the end and on SIGINT/SIGTERM)."""
    log_every_s: float = 5.0
    """Seconds between scalar logs."""
    threads: int = 1
    """torch intra-op threads of the learner (async: minus one per actor, at least 1; actors and
    evaluation use 1). More than 1 measured no faster for the default model on 2 cores, and two runs
    side by side with 2 each slowed the sync one to 2% of its solo speed (docs/PERFORMANCE.md)."""
    stop_at: float = math.inf
    """Stop (saved, exit 0) once the run's own task, past any delay curriculum's stages, scores at
    least this over its last 100 episodes: the success rate where the task gives verdicts, else the
    mean return (what ``charts/success_rate_100`` or ``charts/mean_return_100`` logs). inf: train to
    total_frames. A resumed run starts a fresh window, so it trains 100 episodes more before it can
    stop again."""
    init_from: str = ""
    """A new run starts from the network weights of this run directory (its newest readable
    checkpoint) or checkpoint file; optimiser, schedule and frame count start fresh. The network must
    be the same (core, sizes, the env's observations and actions). A resumed run ignores it."""

    def __post_init__(self):
        _check(isinstance(self.init_from, str), f"init_from must be a path, got {self.init_from!r}")
        _check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= MAX_SEED,
               f"seed must be an integer from 0 to {MAX_SEED}, got {self.seed!r}")
        _check(isinstance(self.init_seed, int) and not isinstance(self.init_seed, bool)
               and -1 <= self.init_seed <= MAX_SEED,
               f"init_seed must be -1 (the run's seed) or an integer from 0 to {MAX_SEED}, "
               f"got {self.init_seed!r}")
        _check(isinstance(self.total_frames, int) and self.total_frames > 0,
               f"total_frames must be a positive integer, got {self.total_frames!r}")
        _choice("runtime", self.runtime, RUNTIMES)
        _check(isinstance(self.ray_address, str), f"ray_address must be a string, got {self.ray_address!r}")
        _check(isinstance(self.device, str) and (self.device in ("auto", "cpu", "cuda")
                                                 or self.device.startswith("cuda:")),
               f"device must be one of auto, cpu, cuda, cuda:N, got {self.device!r}")
        _check(isinstance(self.num_actors, int) and self.num_actors >= 1,
               f"num_actors must be a positive integer, got {self.num_actors!r}")
        _check(self.checkpoint_every_s > 0 and self.log_every_s > 0,
               "checkpoint_every_s and log_every_s must be positive")
        _check(isinstance(self.threads, int) and self.threads >= 1,
               f"threads must be a positive integer, got {self.threads!r}")
        _check(not math.isnan(self.stop_at), "stop_at must be a number (inf: never stop early), got nan")


SECTIONS = {"env": EnvConfig, "core": CoreConfig, "agent": AgentConfig, "run": RunConfig}


@dataclass
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    core: CoreConfig = field(default_factory=CoreConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_options(self) -> dict:
        """Keyword arguments of ``agents.networks.ActorCritic.build`` for this run: the core section's
        ``network_options()`` and the action-value head that the agent's loss trains (so every place that
        builds a run's network, the trainer and the benchmarks that load its checkpoints, builds the same)."""
        return {**self.core.network_options(), "action_value_head": self.agent.action_value_cost > 0}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from ``{section: {field: value}}``; unknown sections or keys are ``ConfigError``s."""
        _check(isinstance(data, dict), f"a config must be a mapping of sections, got {type(data).__name__}")
        sections = {}
        for name, values in data.items():
            _check(name in SECTIONS, f"unknown config section {name!r}; expected {', '.join(SECTIONS)}")
            values = values or {}
            _check(isinstance(values, dict), f"config section {name!r} must be a mapping")
            known = {f.name for f in dataclasses.fields(SECTIONS[name])}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"unknown config key {name}.{key}{_hint(key, known)}")
                _check_field_type(SECTIONS[name], key, value)
            sections[name] = SECTIONS[name](**values)
        return cls(**sections)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with fields replaced by name (``{"learning_rate": 1e-3}``), validated."""
        data = self.to_dict()
        owners = field_owners()
        for key, value in overrides.items():
            if key not in owners:
                raise ConfigError(f"unknown config key {key!r}{_hint(key, owners)}")
            data[owners[key]][key] = value
        return TrainConfig.from_dict(data)

    def with_options(self, *, env: dict | None = None, core: dict | None = None,
                     stages: dict | None = None) -> TrainConfig:
        """A copy whose ``env_options`` / ``core_options`` / ``curriculum_env_options`` gain ``env`` /
        ``core`` / ``stages`` (a given key replaces the config's), validated: what ``--env-option``,
        ``--core-option`` and ``--curriculum-env-option`` do."""
        overrides = {}
        if env:
            overrides["env_options"] = {**self.env.env_options, **env}
        if core:
            overrides["core_options"] = {**self.core.core_options, **core}
        if stages:
            overrides["curriculum_env_options"] = {**self.env.curriculum_env_options, **stages}
        return self.with_overrides(overrides) if overrides else self


def field_owners() -> dict[str, str]:
    """Field name -> section name, for every field of every section."""
    return {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


#: The mapping fields and the repeatable ``KEY=VALUE`` flag of ``train_agent.py`` that sets each.
OPTION_FLAGS = {"env_options": "--env-option", "core_options": "--core-option",
                "curriculum_env_options": "--curriculum-env-option"}


def as_flags(fields: dict[str, Any]) -> list[str]:
    """The ``train_agent.py`` flags that set ``fields``: ``{"input_norm": False, "env_options":
    {"delay": 15}}`` -> ``["--input-norm", "False", "--env-option", "delay=15"]``."""
    flags = []
    for key, value in fields.items():
        if key in OPTION_FLAGS:
            for k, v in value.items():
                flags += [OPTION_FLAGS[key], f"{k}={v}"]
        elif isinstance(value, list):
            flags += [f"--{key.replace('_', '-')}", ",".join(map(str, value))]
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def field_docs() -> dict[str, str]:
    """Field name -> its docstring (the string literal after the field), for --help."""
    import ast
    import inspect

    docs = {}
    for cls in SECTIONS.values():
        body = ast.parse(inspect.getsource(cls)).body[0].body
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = nxt.value.value
    return docs


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=2)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _config_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """A preset name (``default``) or a YAML file path (relative to ``relative_to``, the directory of
    the file that names it as its ``base``, when there is one)."""
    path = Path(name)
    if relative_to is not None and not path.is_absolute() and (relative_to / path).exists():
        return relative_to / path
    if not path.suffix and not path.exists():
        return PRESET_DIR / f"{path}.yaml"
    return path


def _read_sections(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """The ``{section: {field: value}}`` of a config file with its ``base`` (a preset name or a file)
    read first and each section's fields updated by this file's, so a preset states only what differs
    from the one it names (a field is replaced whole: a mapping field such as ``env_options`` too).
    ``chain``: the files that named this one, to refuse a cycle."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {str(path)!r} is larger than {MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        known = (f"; presets: {', '.join(presets())}"
                 if isinstance(error, FileNotFoundError) and path.parent == PRESET_DIR else "")
        raise ConfigError(f"cannot read config file {str(path)!r}: {error.strerror}{known}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not a UTF-8 text file") from None
    data = safe_yaml(text, f"config file {str(path)!r}") or {}
    _check(isinstance(data, dict), f"a config must be a mapping of sections, got {type(data).__name__}")
    if "base" not in data:
        return data
    data = dict(data)
    base = data.pop("base")
    _check(isinstance(base, str) and base != "",
           f"base in config file {str(path)!r} must be a preset name or a file path, got {_short(base)}")
    base_path = _config_path(base, path.parent)
    chain = (*chain, path.resolve())
    _check(base_path.resolve() not in chain,
           f"config file {str(path)!r} names {base!r} as its base, which leads back to itself")
    merged = _read_sections(base_path, chain)
    for name, values in data.items():
        values = {} if values is None else values  # an empty section in YAML reads as None
        if isinstance(values, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **values}
        else:
            merged[name] = values
    return merged


def load_config(path: str | Path) -> TrainConfig:
    """A preset name (``default``) or a YAML file path -> validated ``TrainConfig``. A file may name
    another config as its ``base`` (top-level key, a preset name or a path relative to the file): its
    sections then start from that config's."""
    return TrainConfig.from_dict(_read_sections(_config_path(path)))


#: Fields added to the config after runs were first saved, with the value every run saved without them
#: trained with (the program's defaults until 2026-12-01: one optimiser step per batch, no observation
#: gate, input LayerNorm or action-value head; and the refine gate's -b_f start, which the cores had by
#: themselves before refine_bias became a field on 2026-12-02). All five defaults changed on
#: 2026-12-02: filling them with today's would build another network (and
#: optimiser) than the run's checkpoint holds. ``head_size`` (a field since 748954c, 0 until its default
#: became 128 on 2026-12-05) is here for runs saved before 748954c.
ADDED_FIELDS = {"observation_gate": False, "input_norm": False, "epochs": 1, "action_value_cost": 0.0,
                "refine_bias": "neg_forget", "view_match": False, "recognition_cost": 0.0,
                "policy_query": False, "uniform_policy_start": False, "head_size": 0,
                "curriculum_hold": 1}


def load_run_config(path: str | Path) -> TrainConfig:
    """A run directory's saved ``config.yaml`` -> ``TrainConfig``; a field the file lacks takes its
    ``ADDED_FIELDS`` value (what the run used) rather than today's default."""
    data = _read_sections(Path(path))
    owners = field_owners()
    for key, value in ADDED_FIELDS.items():
        section = data.get(owners[key])
        if isinstance(section, dict):
            section.setdefault(key, value)
    return TrainConfig.from_dict(data)


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
