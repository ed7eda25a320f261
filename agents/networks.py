"""The agent network: a torso chosen from the observation description, a recurrent core, two heads.

Torso and heads run batched over ``T * B``; only the core loops over time. The core's input is the
torso features, the previous action (one-hot) and the previous reward, both zero at an episode start.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from cores.base import Core, State, select_state
from cores.cache import InferenceCache

from .view_match import ViewMatch


class MiniGridImageEncoder(nn.Module):
    """Symbolic ``[N, W, H, 3]`` grid -> ``[N, out_size]`` features. Each cell is embedded as the sum of
    learned embeddings of its object, colour and state, the cells are flattened, and a linear layer
    mixes them, then ReLU. (A 3x3 convolution stack measured ~1 ms per 16 frames on the reference
    CPU, 8x this.)

    Computed as one ``embedding_bag``: the linear layer applied to a cell's embedding depends only on
    the cell's position and value, so a table ``[W * H * V, out_size]`` of those products (rebuilt from
    the parameters, cached while autograd is off) is summed over the ``3 W H`` (position, value)
    pairs of a frame. Same function and parameters as embedding, flattening and ``nn.Linear``, but
    ~2.5x faster for the actor's 16 frames and ~3x for a learner batch of 1280 frames (forward and
    backward) on the reference CPU.
    """

    def __init__(self, shape, num_values, out_size: int, embed_size: int = 16):
        super().__init__()
        width, height, _ = shape
        self.num_cells, self.num_values = width * height, int(sum(num_values))
        self.offsets = nn.Buffer(torch.tensor([0, *num_values[:-1]]).cumsum(0), persistent=False)
        self.cell_base = nn.Buffer(torch.arange(self.num_cells).view(1, -1, 1) * self.num_values,
                                   persistent=False)
        # the largest valid value of each channel (object, colour, state), to refuse the rest
        self.limits = nn.Buffer(torch.tensor(num_values) - 1, persistent=False)
        self.embed = nn.Embedding(self.num_values, embed_size)
        # a Sequential for the parameter names of existing checkpoints (out.0.*); forward adds the ReLU
        self.out = nn.Sequential(nn.Linear(self.num_cells * embed_size, out_size))
        self._table = InferenceCache()

    def table(self) -> Tensor:
        """``[W * H * V, out_size]``: row ``p * V + v`` is the linear layer's response to value ``v``
        (object, colour and state ids offset into one vocabulary) at cell ``p``."""
        linear = self.out[0]
        return self._table.get((linear.weight, self.embed.weight), lambda: torch.einsum(
            "ope,ve->pvo", linear.weight.view(linear.out_features, self.num_cells, -1),
            self.embed.weight).reshape(self.num_cells * self.num_values, linear.out_features))

    def forward(self, image: Tensor) -> Tensor:
        """``image [N, W, H, 3]``: each cell's object, colour and state ids, each below its channel's
        ``num_values`` (a larger one would silently read the next cell's rows: refused, by the
        learner's forward; see below)."""
        n = image.shape[0]
        image = image.long()
        # Checked where gradients are taken (the learner, which sees every frame the actors saw), not
        # on the actor's per-step path, where the host sync would cost more than the lookup itself.
        if torch.is_grad_enabled() and bool(((image < 0) | (image > self.limits)).any()):
            bad = image[(image < 0) | (image > self.limits)][0].item()
            raise ValueError(f"MiniGrid image value {bad} is out of range: each channel (object, colour, "
                             f"state) takes 0 to {self.limits.tolist()}")
        index = image.reshape(n, self.num_cells, -1) + self.offsets + self.cell_base
        mixed = _RowSum.apply(index.reshape(n, -1), self.table())
        return torch.relu(mixed + self.out[0].bias)


class _RowSum(torch.autograd.Function):
    """``(index [N, K], table [R, O]) -> [N, O]``: the sum of the ``K`` table rows each row of
    ``index`` names, which must be distinct within a row. Forward is ``embedding_bag``; backward is
    one matmul with the 0/1 matrix of named rows, 2x faster on the CPU than ``embedding_bag``'s
    sort-based backward for a learner batch."""

    @staticmethod
    def forward(ctx, index: Tensor, table: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.num_rows = table.shape[0]
        return nn.functional.embedding_bag(index, table, mode="sum")

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        named = grad.new_zeros(index.shape[0], ctx.num_rows).scatter_(1, index, 1.0)
        return None, named.t() @ grad


class Torso(nn.Module):
    """One encoder per observation key (see ``envs.observations`` for the description format),
    concatenated and mixed by a linear layer: ``{key: [N, ...]} -> [N, out_size]``."""

    def __init__(self, description: dict[str, dict], out_size: int):
        super().__init__()
        self.encoders = nn.ModuleDict()
        self.kinds = {}
        total = 0
        for key, desc in sorted(description.items()):
            kind = desc["kind"]
            name = key.replace(".", "__")
            if kind == "minigrid_image":
                self.encoders[name] = MiniGridImageEncoder(desc["shape"], desc["num_values"], 128)
                total += 128
            elif kind == "discrete":
                self.encoders[name] = nn.Embedding(desc["n"], 16)
                total += 16
            elif kind == "multi_discrete":
                self.encoders[name] = _MultiDiscrete(desc["nvec"])
                total += 16 * len(desc["nvec"])
            elif kind == "tokens":
                self.encoders[name] = nn.EmbeddingBag(desc["vocab_size"], 32, mode="mean",
                                                      padding_idx=0)
                total += 32
            elif kind == "box":
                size = math.prod(desc["shape"])
                self.encoders[name] = nn.Sequential(nn.Flatten(), nn.Linear(size, 64), nn.ReLU())
                total += 64
            else:
                raise ValueError(f"observation {key!r} has unknown kind {kind!r}")
            self.kinds[name] = (key, kind)
        self.mix = nn.Sequential(nn.Linear(total, out_size), nn.ReLU())

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        parts = []
        for name, encoder in self.encoders.items():
            key, kind = self.kinds[name]
            value = obs[key]
            parts.append(encoder(value.long() if kind in ("discrete", "tokens") else value.float()))
        return self.mix(torch.cat(parts, dim=-1))


class _MultiDiscrete(nn.Module):
    def __init__(self, nvec):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(int(n), 16) for n in nvec)

    def forward(self, x: Tensor) -> Tensor:
        x = x.long()
        return torch.cat([table(x[..., i]) for i, table in enumerate(self.tables)], dim=-1)


class AgentOutput(NamedTuple):
    logits: Tensor  # [T, B, A] or [B, A]
    values: Tensor  # [T, B] or [B]
    action_values: Tensor | None = None  # [T, B, A] or [B, A], with an action-value head
    # [T, B, K] or [B, K]: the view-match scores the recognition loss trains, with view_match
    match_scores: Tensor | None = None


class ActorCritic(nn.Module):
    """Torso + core + policy and baseline heads.

    With ``head_size > 0`` the heads share one hidden ReLU layer of that size on what they read;
    with 0 they are linear in it. ``observation_gate`` multiplies the core's output by ``1 + W f``
    (``f`` this step's torso features) before the heads; ``input_norm`` puts a LayerNorm on the core's
    input; ``view_match`` has the heads also read one score per element in view (image cell,
    multi-discrete slot, discrete key of a shared vocabulary) for how well it matches a query from
    the core's output (``agents.view_match``; nothing where the observation has no such elements);
    ``policy_query`` adds a second such score per element, from a query the recognition loss does
    not train.

    ``unroll`` runs ``[T, B]`` sequences (the learner); ``step`` runs one ``[B]`` step (the actors).
    Both take ``is_first`` and start those rows from the core's initial state, and both take the
    previous action and reward, which the caller zeroes where ``is_first`` is set.
    """

    def __init__(self, description: dict[str, dict], num_actions: int, core: Core,
                 torso_size: int = 128, previous_inputs: bool = True, head_size: int = 0,
                 observation_gate: bool = False, input_norm: bool = False,
                 action_value_head: bool = False, view_match: bool = False, policy_query: bool = False,
                 uniform_policy_start: bool = False):
        super().__init__()
        self.num_actions = num_actions
        self.previous_inputs = previous_inputs
        self.torso_description = description
        self.torso = Torso(description, torso_size)
        self.torso_size = torso_size
        expected = self.core_input_size(torso_size, num_actions, previous_inputs)
        if core.input_size != expected:
            extra = f" + {num_actions} one-hot actions + 1 reward" if previous_inputs else ""
            raise ValueError(
                f"core input_size is {core.input_size}; this agent feeds it {expected} "
                f"(torso {torso_size}{extra})"
            )
        self.core = core
        # LayerNorm of the core input (torso features, one-hot action, reward); measured to cut the
        # episodes a shuffled recall needs (benchmarks/recall_supervised.py, docs/AGENTS.md)
        self.input_norm = nn.LayerNorm(expected) if input_norm else None
        # y * (1 + W x): zero weights start as the plain read-out; the product makes "does what is in
        # view match what is remembered" linear in the features (a multiplicative interaction)
        self.observation_gate = nn.Linear(torso_size, core.output_size) if observation_gate else None
        if self.observation_gate is not None:
            nn.init.zeros_(self.observation_gate.weight)
            nn.init.zeros_(self.observation_gate.bias)
        if policy_query and not view_match:
            raise ValueError("policy_query needs view_match (it adds a second view-match query)")
        match = ViewMatch(description, core.output_size, policy_query) if view_match else None
        self.view_match = match if match is not None and match.num_elements > 0 else None
        read_size = core.output_size + (self.view_match.num_scores if self.view_match is not None else 0)
        if head_size > 0:
            self.head = nn.Sequential(nn.Linear(read_size, head_size), nn.ReLU())
        else:
            self.head = nn.Identity()  # no parameters: checkpoints of linear heads are unchanged
        self.policy = nn.Linear(head_size or read_size, num_actions)
        if uniform_policy_start:  # every seed starts from the uniform policy, whatever its features
            nn.init.zeros_(self.policy.weight)
            nn.init.zeros_(self.policy.bias)
        self.baseline = nn.Linear(head_size or read_size, 1)
        # Q(x, a) beside the policy: trained by regression (agents.losses), unused for acting
        self.action_value = nn.Linear(head_size or read_size, num_actions) if action_value_head else None

    @staticmethod
    def core_input_size(torso_size: int, num_actions: int, previous_inputs: bool = True) -> int:
        return torso_size + (num_actions + 1 if previous_inputs else 0)

    @classmethod
    def build(cls, description: dict[str, dict], num_actions: int, core_factory, *,
              torso_size: int = 128, previous_inputs: bool = True,
              head_size: int = 0, observation_gate: bool = False,
              input_norm: bool = False, action_value_head: bool = False,
              view_match: bool = False, policy_query: bool = False,
              uniform_policy_start: bool = False) -> ActorCritic:
        """The agent with the core ``core_factory(input_size)`` sized for what it will be fed
        (agents never import a concrete core, so the caller passes e.g. a partial of ``make_core``).
        The keyword options are a run's ``configs.TrainConfig.model_options()``: the core section's
        ``network_options()`` and ``action_value_head`` (an agent with ``action_value_cost > 0``)."""
        core = core_factory(cls.core_input_size(torso_size, num_actions, previous_inputs))
        return cls(description, num_actions, core, torso_size, previous_inputs, head_size,
                   observation_gate, input_norm, action_value_head, view_match, policy_query,
                   uniform_policy_start)

    def initial_state(self, batch_size: int) -> State:
        return self.core.initial_state(batch_size, device=self.policy.weight.device)

    def core_inputs(self, obs, last_action, last_reward) -> Tensor:
        """Torso features, one-hot previous action and previous reward (unless ``previous_inputs``
        is off): ``[N, core.input_size]``."""
        features = self.torso(obs)
        if self.previous_inputs:
            one_hot = nn.functional.one_hot(last_action.long(), self.num_actions).to(features.dtype)
            features = torch.cat([features, one_hot, last_reward.unsqueeze(-1).to(features.dtype)], dim=-1)
        return self.input_norm(features) if self.input_norm is not None else features

    def unroll(self, obs: dict[str, Tensor], last_action: Tensor, last_reward: Tensor,
               is_first: Tensor, state: State) -> tuple[AgentOutput, State]:
        """``obs {key: [T, B, ...]}``, ``last_action``, ``last_reward``, ``is_first [T, B]``."""
        T, B = is_first.shape
        flat = {k: v.reshape(T * B, *v.shape[2:]) for k, v in obs.items()}
        x = self.core_inputs(flat, last_action.reshape(T * B), last_reward.reshape(T * B))
        y, state = self.core(x.view(T, B, -1), state, is_first)
        scores = self._match(flat, y.reshape(T * B, -1), (T, B))
        out = self._heads(y, x.view(T, B, -1), scores, with_action_values=True)
        return self._with_scores(out, scores), state

    def step(self, obs: dict[str, Tensor], last_action: Tensor, last_reward: Tensor,
             is_first: Tensor, state: State) -> tuple[AgentOutput, State]:
        """One step of ``B`` envs: ``obs {key: [B, ...]}``, the rest ``[B]``."""
        if bool(is_first.any()):
            state = select_state(is_first, self.initial_state(is_first.shape[0]), state)
        x = self.core_inputs(obs, last_action, last_reward)
        y, state = self.core.step(x, state)
        scores = self._match(obs, y, (y.shape[0],))
        return self._with_scores(self._heads(y, x, scores), scores), state

    def element_values(self, obs: dict[str, Tensor]) -> Tensor:
        """``obs {key: [T, B, ...]}`` -> ``[T, B, K]`` value ids of the view-match elements, in the order
        of ``match_scores`` (``agents.view_match.ViewMatch.element_values``); needs ``view_match``."""
        T, B = next(iter(obs.values())).shape[:2]
        flat = {k: v.reshape(T * B, *v.shape[2:]) for k, v in obs.items()}
        return self.view_match.element_values(flat).view(T, B, -1)

    def _match(self, obs: dict[str, Tensor], y: Tensor, shape: tuple[int, ...]) -> Tensor | None:
        """View-match scores ``[*shape, num_scores]`` from ``obs {key: [N, ...]}`` and the core
        output ``y [N, core.output_size]`` (N = prod(shape)); None without the option."""
        if self.view_match is None:
            return None
        return self.view_match(obs, y).view(*shape, -1)

    def _with_scores(self, out: AgentOutput, scores: Tensor | None) -> AgentOutput:
        """``out`` with ``match_scores``: the first query's share of ``scores [..., num_scores]``, the
        scores the recognition loss trains (all of them without ``policy_query``)."""
        if scores is None:
            return out
        return out._replace(match_scores=scores[..., : self.view_match.num_elements])

    def _heads(self, y: Tensor, x: Tensor, scores: Tensor | None = None,
               with_action_values: bool = False) -> AgentOutput:
        """Core output ``y [..., core.output_size]``, core input ``x [..., core.input_size]`` (its
        first ``torso_size`` features are the torso's) and view-match ``scores [..., num_scores]``
        (or None) -> logits ``[..., A]``, values ``[...]`` and, ``with_action_values`` (the learner's
        unroll; actors do not use them), action values ``[..., A]`` (None without that head)."""
        if self.observation_gate is not None:
            y = y * (1.0 + self.observation_gate(x[..., : self.torso_size]))
        if scores is not None:
            y = torch.cat([y, scores], dim=-1)
        z = self.head(y)
        q = self.action_value(z) if with_action_values and self.action_value is not None else None
        return AgentOutput(self.policy(z), self.baseline(z).squeeze(-1), q)

    @torch.no_grad()
    def gate_activations(self, obs: dict[str, Tensor], last_action: Tensor, last_reward: Tensor,
                         is_first: Tensor, state: State) -> dict[str, Tensor]:
        """The core's gate values ``{name: [B, H]}`` at one step (``{}`` for gateless cores)."""
        if bool(is_first.any()):
            state = select_state(is_first, self.initial_state(is_first.shape[0]), state)
        return self.core.gate_activations(self.core_inputs(obs, last_action, last_reward), state)
