"""Scan-trainable cores: a chunked scan of ``h_t = a_t * h_{t-1} + b_t`` and their residual-block stack.

``linear_scan`` evaluates the diagonal linear recurrence over a whole sequence with about
``2 C + T / C`` kernel launches instead of ``T``. Time is cut into ``N`` chunks of ``C = CHUNK_SIZE``
steps (a remainder of ``T mod C`` steps runs as one more, shorter pass):

1. all chunks at once, one step of every chunk per launch: each chunk's end state from a zero
   carry-in, and (one ``prod``) its gate product;
2. the chunk ends form the same recurrence over ``N`` steps, solved by the same function
   (recursively; one level for ``T <= C**2``), giving the state carried into every chunk;
3. all chunks at once again, now from their carried-in state, writing every ``h_t`` in place.

The work is three reads of ``a``, two of ``b`` and one write of ``h``, every step one fused
``addcmul`` on a ``[N, B, ...]`` slice; on a CPU that costs about what a plain loop over ``T`` costs
(measured at ``T = 1024``, ``B = 16``, 128 units), on an accelerator it needs ``O(C + N)`` launches.
No value is ever divided by a gate product (every intermediate is a product of gates or
a sum of such products times ``b``), so nothing overflows for ``|a| <= 1``. Episode resets zero the
carried state before the step (``torch.masked_fill``, at the steps that hold one), so a non-finite
state of a finished episode never reaches the next one and gets exactly zero gradient.

The gradient is the same scan run backwards (a ``torch.autograd.Function``; autograd records no
per-step graph): with ``g_t`` the incoming gradient of ``h_t``,

    gh_t = g_t + conj(a_{t+1}) gh_{t+1}   (the term dropped where step t+1 is a reset),
    db_t = gh_t,   da_t = gh_t conj(h_{t-1}) (0 at a reset),   dh0 = conj(a_0) gh_0 (0 at a reset),

saving only ``a, h0, h`` and the reset mask.

``ScanCore`` is the stack the scan cores share (``cores/min_rnn.py``, ``cores/lru.py``): an input
projection to ``hidden_size``, then ``num_layers`` pre-norm residual blocks, each

    u = u + recurrence(LayerNorm(u));   u = u + MLP(LayerNorm(u))

with ``MLP = Linear(H, e H) -> GELU -> Linear(e H, H)`` (``e = mlp_expansion``; ``e = 0`` drops the
MLP and its LayerNorm). The output is the last block's ``u`` (no final norm). Per block and step the
recurrence's projection costs ``G H`` multiply-adds (``G = 3 H`` for ``ur_min_gru``), the MLP
``2 e H^2``: with the default ``e = 2`` the MLP is the larger part of the block (see
``benchmarks/scan_speed.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .base import State, check_sequence_inputs
from .stacked import LayeredStateCore

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
    if b.shape[0] == 0:
        return b
    chunk = max(2, chunk_size or CHUNK_SIZE)
    h0 = h0.expand(b.shape[1:])
    if reset is not None:
        reset = reset.to(device=b.device, dtype=torch.bool)
    return _LinearScan.apply(a, b, h0, reset, chunk)


class _LinearScan(torch.autograd.Function):
    """``linear_scan`` with the reverse scan as its backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, a, b, h0, reset, chunk):
        dtype = torch.promote_types(torch.result_type(a, b), h0.dtype)
        h = _recur(a.to(dtype).expand(b.shape), b.to(dtype), h0.to(dtype), reset, chunk, reverse=False)
        ctx.chunk, ctx.dtypes = chunk, (a.dtype, b.dtype, h0.dtype)
        ctx.save_for_backward(a, h0, h, reset)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, h0, h, reset = ctx.saved_tensors
        T, complex_ = h.shape[0], h.is_complex()
        a_h = a.to(h.dtype)
        a_h = (a_h.conj().resolve_conj() if complex_ else a_h).expand(h.shape)  # resolved once, not per step
        h0 = h0.to(h.dtype)
        gh = torch.empty_like(h)
        gh[T - 1] = g[T - 1]
        if T > 1:  # gh_t = g_t + conj(a_{t+1}) R_{t+1}(gh_{t+1}), from the last step back
            _recur(a_h[1:], g[:-1].to(h.dtype), gh[T - 1], None if reset is None else reset[1:],
                   ctx.chunk, reverse=True, out=gh[:-1])
        grad_a = grad_b = grad_h0 = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.empty_like(h)
            h_prev = h.conj().resolve_conj() if complex_ else h
            torch.mul(gh[0], h0.conj() if complex_ else h0, out=grad_a[0])
            torch.mul(gh[1:], h_prev[:-1], out=grad_a[1:])
            if reset is not None:
                grad_a.masked_fill_(_rows(reset, h.dim()), 0)
            if grad_a.shape != a.shape:
                grad_a = grad_a.sum_to_size(a.shape)
            grad_a = _cast_grad(grad_a, ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            grad_b = _cast_grad(gh, ctx.dtypes[1])
        if ctx.needs_input_grad[2]:
            grad_h0 = a_h[0] * gh[0]
            if reset is not None:
                grad_h0.masked_fill_(_rows(reset[0], grad_h0.dim()), 0)
            grad_h0 = _cast_grad(grad_h0, ctx.dtypes[2])
        return grad_a, grad_b, grad_h0, None, None


def _cast_grad(grad: Tensor, dtype: torch.dtype) -> Tensor:
    if grad.is_complex() and not dtype.is_complex:
        grad = grad.real
    return grad.to(dtype)


def _rows(mask: Tensor, dim: int) -> Tensor:
    """``mask [..., B]`` viewed to broadcast over the trailing feature dimensions of a ``dim``-d tensor."""
    return mask.view(mask.shape + (1,) * (dim - mask.dim()))


def _steps_with_reset(reset: Tensor) -> set[int]:
    """Indices along dim 1 of ``reset [N, C, B]`` where any entry is set (one host sync)."""
    return set(reset.any(dim=2).any(dim=0).nonzero().flatten().tolist())


def _recur(a: Tensor, b: Tensor, h0: Tensor, reset: Tensor | None, chunk: int, reverse: bool,
           out: Tensor | None = None) -> Tensor:
    """``out[t] = a[t] * R_t(prev) + b[t]`` for all ``t``, where ``prev`` is the state of the step before
    in processing order (``t - 1``, or ``t + 1`` if ``reverse``), ``h0`` before the first, and ``R_t``
    zeroes the rows where ``reset[t]`` is set. ``a, b, out [T, B, ...]`` (``a`` may be an expanded view),
    ``h0 [B, ...]``; no autograd."""
    T = b.shape[0]
    if out is None:
        out = torch.empty_like(b)
    num_chunks, rest = divmod(T, chunk)
    if num_chunks <= 1:
        _chunk_pass(a.unsqueeze(0), b.unsqueeze(0), h0.unsqueeze(0),
                    None if reset is None else reset.unsqueeze(0), reverse, out.unsqueeze(0))
        return out
    main = slice(rest, T) if reverse else slice(0, T - rest)
    shape = (num_chunks, chunk) + b.shape[1:]
    a_main, b_main = a[main].reshape(shape), b[main].reshape(shape)
    r_main = None if reset is None else reset[main].reshape((num_chunks, chunk) + reset.shape[1:])
    # 1. every chunk's end state from a zero carry-in, and its gate product
    ends = _chunk_pass(a_main, b_main, None, r_main, reverse, None)
    products = a_main.prod(dim=1)
    # 2. the state carried into every chunk: the same recurrence over the chunk ends
    chunk_reset = None if r_main is None else r_main.any(dim=1)
    ends = _recur(products, ends, h0, chunk_reset, chunk, reverse)
    first = h0.unsqueeze(0)
    carry = torch.cat([ends[1:], first]) if reverse else torch.cat([first, ends[:-1]])
    # 3. every chunk again from its carried-in state, into ``out``
    _chunk_pass(a_main, b_main, carry, r_main, reverse, out[main].view(shape))
    if rest:
        tail = slice(0, rest) if reverse else slice(T - rest, T)
        _recur(a[tail], b[tail], out[rest] if reverse else out[T - rest - 1],
               None if reset is None else reset[tail], chunk, reverse, out[tail])
    return out


def _chunk_pass(a: Tensor, b: Tensor, carry: Tensor | None, reset: Tensor | None, reverse: bool,
                out: Tensor | None) -> Tensor:
    """One step of all chunks ``[N, C, B, ...]`` per launch, from ``carry [N, B, ...]`` (``None``: zero).
    Writes every state into ``out`` if given; returns the last state of every chunk."""
    length = b.shape[1]
    steps = range(length - 1, -1, -1) if reverse else range(length)
    with_reset = _steps_with_reset(reset) if reset is not None else ()
    state = carry
    for c in steps:
        if state is None:
            state = b[:, c] if out is None else out[:, c].copy_(b[:, c])
            continue
        if c in with_reset:
            state = state.masked_fill(_rows(reset[:, c], state.dim()), 0)
        state = torch.addcmul(b[:, c], a[:, c], state, out=None if out is None else out[:, c])
    return state


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
    """``u + recurrence(LN(u))``, then ``+ MLP(LN(.))`` (skipped for ``mlp_expansion == 0``); ``[..., H]``."""

    def __init__(self, layer: ScanLayer, hidden_size: int, mlp_expansion: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.layer = layer
        self.norm2 = self.mlp = None
        if mlp_expansion:
            inner = mlp_expansion * hidden_size
            self.norm2 = nn.LayerNorm(hidden_size)
            self.mlp = nn.Sequential(nn.Linear(hidden_size, inner), nn.GELU(), nn.Linear(inner, hidden_size))

    # Functional calls of the submodules' parameters: a step is ~20 small ops, where the module-call
    # overhead of LayerNorm / Sequential / Linear is a visible part of the inference latency.
    def _norm(self, norm: nn.LayerNorm, u: Tensor) -> Tensor:
        return F.layer_norm(u, norm.normalized_shape, norm.weight, norm.bias, norm.eps)

    def _feed_forward(self, u: Tensor) -> Tensor:
        if self.mlp is None:
            return u
        first, _, second = self.mlp
        inner = F.gelu(F.linear(self._norm(self.norm2, u), first.weight, first.bias))
        return u + F.linear(inner, second.weight, second.bias)

    def sequence(self, u, state, reset):
        y, state = self.layer.sequence(self._norm(self.norm1, u), state, reset)
        return self._feed_forward(u + y), state

    def step(self, u, state):
        y, state = self.layer.step(self._norm(self.norm1, u), state)
        return self._feed_forward(u + y), state


class ScanCore(LayeredStateCore):
    """Input projection + ``num_layers`` residual blocks of scan layers; leaves ``[B, num_layers, S]``.

    Subclasses call ``_init_blocks`` and set ``state_type`` (a NamedTuple with one field per entry of
    the layers' ``state_names``).
    """

    blocks: nn.ModuleList

    def _init_blocks(self, input_size: int, hidden_size: int, layers: list[ScanLayer],
                     mlp_expansion: int) -> None:
        if not isinstance(mlp_expansion, int) or isinstance(mlp_expansion, bool) or mlp_expansion < 0:
            raise ValueError(f"mlp_expansion must be a non-negative integer, got {mlp_expansion!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.num_layers, self.state_size = len(layers), layers[0].state_size
        self.mlp_expansion = mlp_expansion
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(ResidualBlock(layer, hidden_size, mlp_expansion) for layer in layers)

    def _state_param(self) -> Tensor:
        return self.input_proj.weight

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, F]``, leaves ``[B, L, S]`` -> ``(y [B, H], new_state)``."""
        self._check_state(state, x.shape[0])
        u = F.linear(x, self.input_proj.weight, self.input_proj.bias)
        new_states = []
        for index, block in enumerate(self.blocks):
            u, layer_state = block.step(u, self._layer_state(state, index))
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
            u, layer_state = block.sequence(u, self._layer_state(state, index), reset)
            new_states.append(layer_state)
        return u, self._pack(new_states)

    def gate_activations(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """Gates of one step, ``{name: [B, num_layers * S]}`` (layers side by side on the unit axis)."""
        self._check_state(state, x.shape[0])
        u = self.input_proj(x)
        per_layer: dict[str, list[Tensor]] = {}
        for index, block in enumerate(self.blocks):
            layer_state = self._layer_state(state, index)
            for name, value in block.layer.gates(block.norm1(u), layer_state).items():
                per_layer.setdefault(name, []).append(value)
            u, _ = block.step(u, layer_state)
        return {name: torch.cat(values, dim=-1) for name, values in per_layer.items()}

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}, mlp_expansion={self.mlp_expansion}"
        )
