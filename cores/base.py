"""The core contract every recurrent memory of gated-rl follows.

A core maps a time-major input sequence ``x [T, B, F]`` to outputs ``y [T, B, H]`` while carrying a
state (a tuple or NamedTuple of tensors, every leaf batch-first ``[B, ...]``). Episode boundaries arrive
as ``is_first [T, B]`` (bool): where it is set, the state is replaced by ``initial_state`` *before* the
core consumes ``x[t]``. Agents only ever talk to this interface.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


def select_state(mask: Tensor, if_true: State, if_false: State) -> State:
    """Per batch row, take ``if_true`` where ``mask [B]`` is set, else ``if_false``.

    Uses ``torch.where`` rather than multiplication by a not-done mask, so a non-finite value in a
    discarded state can never leak into the new episode, and gradients to it are exactly zero.
    """
    out = []
    for a, b in zip(if_true, if_false, strict=True):
        row_mask = mask.reshape(mask.shape + (1,) * (b.dim() - 1))
        out.append(torch.where(row_mask, a.to(b.dtype), b))
    return rebuild_state(if_false, out)


def rebuild_state(like: State, leaves: list[Tensor]) -> State:
    """A state of the same type (tuple or NamedTuple) as ``like`` holding ``leaves``."""
    if isinstance(like, tuple) and hasattr(like, "_fields"):
        return type(like)(*leaves)
    return tuple(leaves)


def map_state(fn, state: State) -> State:
    """Apply ``fn`` to every leaf, keeping the state's type (e.g. ``.to(device)``, ``.detach()``)."""
    return rebuild_state(state, [fn(leaf) for leaf in state])


def check_sequence_inputs(core: Core, x: Tensor, is_first: Tensor | None) -> Tensor:
    """Validate ``x [T, B, F]`` and ``is_first [T, B]`` with one-line errors; returns ``is_first``."""
    if x.dim() != 3 or x.shape[-1] != core.input_size:
        raise ValueError(
            f"{type(core).__name__}.forward expects x of shape [T, B, {core.input_size}], "
            f"got {list(x.shape)}"
        )
    if is_first is None:
        return torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    if is_first.shape != x.shape[:2]:
        raise ValueError(
            f"is_first must have shape [T, B] = {list(x.shape[:2])}, got {list(is_first.shape)}"
        )
    return is_first.to(device=x.device, dtype=torch.bool)


def check_sizes(input_size: int, hidden_size: int, num_layers: int = 1) -> None:
    """One-line ``ValueError`` for non-positive sizes."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class Core(nn.Module):
    """Base class of every recurrent core.

    Subclasses set ``input_size`` and ``output_size`` and implement ``initial_state`` and ``step``.
    The default ``forward`` loops ``step`` and applies episode resets; a subclass may override it with
    a fused path provided it stays equal to that loop (the registry-wide tests check this).

    A user core is a subclass whose constructor takes ``(input_size, hidden_size, **options)``; it
    can then be built by ``cores.make_core("package.module:ClassName", ...)``.
    """

    input_size: int
    output_size: int

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The state at an episode start: a tuple/NamedTuple of ``[B, ...]`` tensors, ``()`` if none."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step without reset logic: ``x [B, F]`` -> ``(y [B, H], new_state)``."""
        raise NotImplementedError

    def forward(
        self, x: Tensor, state: State, is_first: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Unroll over ``x [T, B, F]`` from ``state`` -> ``(y [T, B, H], final_state)``.

        ``is_first [T, B]`` (bool, optional) marks observations that start an episode; there the state
        is swapped for ``initial_state`` before ``x[t]`` is consumed.
        """
        is_first = check_sequence_inputs(self, x, is_first)
        T, B = x.shape[:2]
        initial = self.initial_state(B, device=x.device)
        # One host sync to find the steps that contain a reset, instead of one per step.
        reset_steps = set(torch.nonzero(is_first.any(dim=1)).flatten().tolist())
        outputs = []
        for t in range(T):
            if t in reset_steps:
                state = select_state(is_first[t], initial, state)
            y, state = self.step(x[t], state)
            outputs.append(y)
        return torch.stack(outputs), state

    def gate_activations(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """Gate values ``{name: [B, H]}`` for one step; ``{}`` for cores without gates."""
        return {}

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}"
