"""Scan-trainable cores: a parallel scan of ``h_t = a_t * h_{t-1} + b_t`` and their residual-block stack.

``linear_scan`` evaluates the diagonal linear recurrence over a whole sequence without a loop over
time steps. Time is cut into chunks of ``CHUNK_SIZE`` steps:

1. inside every chunk (all chunks at once) a Hillis-Steele scan of ``log2(chunk)`` levels combines
   ``(a, b)`` pairs, ``(a2, b2) o (a1, b1) = (a2 a1, a2 b1 + b2)``, giving the chunk-local state (zero
   carry-in) and the cumulative gate product from the chunk start;
2. the states at the chunk ends form the same recurrence over ``T / chunk`` steps, solved by the same
   function (recursively; one level for ``T <= chunk**2``);
3. each chunk adds ``cumulative gate product * state carried in``.

No value is ever divided by a gate product: every intermediate is a product of gates with ``|a| <= 1``
or a sum of such products times ``b``, so nothing can overflow, and an underflow to zero only happens
where the exact value is below the smallest float. Episode resets set ``a_t = 0`` (the state before
step ``t`` becomes the zero initial state); the carried-in state is taken through ``torch.where``, so a
non-finite state of a finished episode never reaches the next one and gets exactly zero gradient.

``ScanCore`` is the stack the scan cores share (``cores/min_rnn.py``, ``cores/lru.py``): an input
projection to ``hidden_size``, then ``num_layers`` pre-norm residual blocks, each

    u = u + recurrence(LayerNorm(u));   u = u + MLP(LayerNorm(u))

with ``MLP = Linear(H, e H) -> GELU -> Linear(e H, H)`` (``e = mlp_expansion``). The output is the last
block's ``u`` (no final norm).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Core, State, check_sequence_inputs

#: Steps per chunk of ``linear_scan`` (read at call time, so tests may lower it).
CHUNK_SIZE = 64


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor, reset: Tensor | None = None, chunk_size: int | None = None
) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` with ``h_{-1} = h0``; returns ``h [T, B, ...]``.

    ``b [T, B, ...]`` (real or complex), ``a`` broadcastable to ``b``, ``h0 [B, ...]``. Where
    ``reset [T, B]`` (bool) is set, ``h_{t-1}`` is replaced by zero before step ``t``, i.e. ``h_t = b_t``.
    ``b`` must be finite; ``h0`` may hold non-finite values in rows that are reset before use.
    """
    T = b.shape[0]
    if T == 0:
        return b
    a = a.expand_as(b)
    trailing = (1,) * (b.dim() - 2)
    if reset is not None:
        a = torch.where(reset.view(reset.shape + trailing), a.new_zeros(()), a)
    chunk = min(max(2, chunk_size or CHUNK_SIZE), T)
    num_chunks = -(-T // chunk)
    pad = num_chunks * chunk - T
    if pad:
        a = torch.cat([a, a.new_zeros((pad,) + a.shape[1:])])
        b = torch.cat([b, b.new_zeros((pad,) + b.shape[1:])])
    a = a.reshape((num_chunks, chunk) + b.shape[1:])
    b = b.reshape((num_chunks, chunk) + b.shape[1:])
    a_cum, h_local = _scan_within_chunks(a, b)

    alive = None  # [N, C, B, 1...]: no reset since the chunk start, so the carried-in state counts
    chunk_reset = None
    if reset is not None:
        if pad:
            reset = torch.cat([reset, reset.new_zeros((pad,) + reset.shape[1:])])
        hit = reset.reshape(num_chunks, chunk, -1).cumsum(dim=1) > 0
        alive = (~hit).view(hit.shape + trailing)
        chunk_reset = hit[:, -1]
    if num_chunks == 1:
        carry = h0.unsqueeze(0)
    else:
        ends = linear_scan(a_cum[:, -1], h_local[:, -1], h0, chunk_reset, chunk_size)
        carry = torch.cat([h0.unsqueeze(0), ends[:-1]])
    carry = carry.unsqueeze(1)  # [N, 1, B, ...]
    if alive is not None:
        carry = torch.where(alive, carry, carry.new_zeros(()))
    h = h_local + a_cum * carry
    return h.reshape((num_chunks * chunk,) + h.shape[2:])[:T]


def _scan_within_chunks(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive scan along dim 1 of ``a, b [N, C, ...]`` -> (gate products, states from zero)."""
    length = a.shape[1]
    d = 1
    while d < length:
        b = torch.cat([b[:, :d], b[:, d:] + a[:, d:] * b[:, :-d]], dim=1)
        a = torch.cat([a[:, :d], a[:, d:] * a[:, :-d]], dim=1)
        d *= 2
    return a, b


class ScanLayer(nn.Module):
    """The recurrence of one block; its state is a tuple of ``[B, state_size]`` leaves (``state_names``)."""

    state_names: tuple[str, ...]
    state_size: int

    def sequence(
        self, v: Tensor, state: tuple[Tensor, ...], reset: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``v [T, B, H]`` -> ``(y [T, B, H], final_state)``; ``reset [T, B]`` as in ``linear_scan``."""
        raise NotImplementedError

    def step(self, v: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``v [B, H]`` -> ``(y [B, H], new_state)``, no reset logic."""
        raise NotImplementedError

    def gates(self, v: Tensor, state: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Gate values ``{name: [B, state_size]}`` of one step."""
        raise NotImplementedError


class ResidualBlock(nn.Module):
    """``u + recurrence(LN(u))``, then ``+ MLP(LN(.))``; shapes ``[..., H]``."""

    def __init__(self, layer: ScanLayer, hidden_size: int, mlp_expansion: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.layer = layer
        self.norm2 = nn.LayerNorm(hidden_size)
        inner = mlp_expansion * hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden_size, inner), nn.GELU(), nn.Linear(inner, hidden_size))

    def _feed_forward(self, u: Tensor) -> Tensor:
        return u + self.mlp(self.norm2(u))

    def sequence(self, u, state, reset):
        y, state = self.layer.sequence(self.norm1(u), state, reset)
        return self._feed_forward(u + y), state

    def step(self, u, state):
        y, state = self.layer.step(self.norm1(u), state)
        return self._feed_forward(u + y), state


class ScanCore(Core):
    """Input projection + ``num_layers`` residual blocks of scan layers; leaves ``[B, num_layers, S]``.

    Subclasses call ``_init_blocks`` and set ``state_type`` (a NamedTuple with one field per entry of
    the layers' ``state_names``).
    """

    state_type: type
    blocks: nn.ModuleList

    def _init_blocks(self, input_size: int, hidden_size: int, layers: list[ScanLayer],
                     mlp_expansion: int) -> None:
        if not isinstance(mlp_expansion, int) or isinstance(mlp_expansion, bool) or mlp_expansion < 1:
            raise ValueError(f"mlp_expansion must be a positive integer, got {mlp_expansion!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.num_layers, self.state_size = len(layers), layers[0].state_size
        self.mlp_expansion = mlp_expansion
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(ResidualBlock(layer, hidden_size, mlp_expansion) for layer in layers)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros: every leaf ``[B, num_layers, state_size]``."""
        param = self.input_proj.weight
        shape = (batch_size, self.num_layers, self.state_size)
        leaf = torch.zeros(shape, dtype=param.dtype, device=device or param.device)
        return self.state_type(*(leaf.clone() for _ in self.state_type._fields))

    def _check_state(self, state: State, batch_size: int) -> None:
        expected = (batch_size, self.num_layers, self.state_size)
        fields = self.state_type._fields
        if len(state) != len(fields) or any(tuple(s.shape) != expected for s in state):
            shapes = [list(s.shape) for s in state]
            raise ValueError(
                f"{type(self).__name__} state must be {len(fields)} tensor(s) ({', '.join(fields)}) "
                f"of shape {list(expected)}, got {shapes}"
            )

    def _pack(self, per_layer: list[tuple[Tensor, ...]]) -> State:
        return self.state_type(*(torch.stack(parts, dim=1) for parts in zip(*per_layer, strict=True)))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, F]``, leaves ``[B, L, S]`` -> ``(y [B, H], new_state)``."""
        self._check_state(state, x.shape[0])
        u = self.input_proj(x)
        new_states = []
        for index, block in enumerate(self.blocks):
            u, layer_state = block.step(u, tuple(leaf[:, index] for leaf in state))
            new_states.append(layer_state)
        return u, self._pack(new_states)

    def forward(
        self, x: Tensor, state: State, is_first: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x [T, B, F]``, leaves ``[B, L, S]``, ``is_first [T, B]`` -> ``(y [T, B, H], state)``."""
        is_first = check_sequence_inputs(self, x, is_first)
        self._check_state(state, x.shape[1])
        reset = is_first if bool(is_first.any()) else None
        u = self.input_proj(x)
        new_states = []
        for index, block in enumerate(self.blocks):
            u, layer_state = block.sequence(u, tuple(leaf[:, index] for leaf in state), reset)
            new_states.append(layer_state)
        return u, self._pack(new_states)

    def gate_activations(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """Gates of one step, ``{name: [B, num_layers * S]}`` (layers side by side on the unit axis)."""
        self._check_state(state, x.shape[0])
        u = self.input_proj(x)
        per_layer: dict[str, list[Tensor]] = {}
        for index, block in enumerate(self.blocks):
            layer_state = tuple(leaf[:, index] for leaf in state)
            for name, value in block.layer.gates(block.norm1(u), layer_state).items():
                per_layer.setdefault(name, []).append(value)
            u, _ = block.step(u, layer_state)
        return {name: torch.cat(values, dim=-1) for name, values in per_layer.items()}

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}, mlp_expansion={self.mlp_expansion}"
        )
