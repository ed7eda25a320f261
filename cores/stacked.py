"""Stacking of single-layer recurrent cells into a ``Core`` with a ``[B, num_layers, H]`` state.

The LSTM and GRU families share this: a layer implements ``cell`` (one step from a precomputed input
projection), ``project`` (the input projection of ``[T, B, F]`` in one matmul) and may override
``unroll`` with a fused path. The stack handles the state layout, resets and gate reporting.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Core, State, check_sequence_inputs


class RecurrentLayer(nn.Module):
    """One layer; its state is a tuple of ``[B, H]`` tensors (as many as ``state_names``)."""

    input_size: int
    hidden_size: int
    state_names: tuple[str, ...]

    def project(self, x: Tensor) -> Tensor:
        """Input projection with biases: ``x [..., F] -> [..., G]``."""
        raise NotImplementedError

    def cell(self, xp: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step from a projected input ``xp [B, G]``: ``-> (y [B, H], new_state)``."""
        raise NotImplementedError

    def gates(self, xp: Tensor, state: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Gate activations ``{name: [B, H]}`` of one step from ``xp [B, G]``."""
        raise NotImplementedError

    def unroll(
        self,
        x: Tensor,
        state: tuple[Tensor, ...],
        reset_mask: Tensor | None,
        reset_steps: frozenset[int],
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``x [T, B, F] -> (y [T, B, H], final_state)``; rows of ``reset_mask [T, B, 1]`` restart
        from the zero state at the steps in ``reset_steps``. Reference loop over ``cell``."""
        xproj = self.project(x)
        outputs = []
        for t in range(x.shape[0]):
            if t in reset_steps:
                state = tuple(s.masked_fill(reset_mask[t], 0.0) for s in state)
            y, state = self.cell(xproj[t], state)
            outputs.append(y)
        return torch.stack(outputs), state


class LayeredStateCore(Core):
    """The state layout shared by the multi-layer cores (``StackedCore``, ``cores.scan.ScanCore``):
    a NamedTuple (``state_type``) whose every leaf is ``[B, num_layers, state_size]``, zeros at an
    episode start. Subclasses set ``state_type``, ``num_layers`` and ``state_size``, and implement
    ``_state_param`` (a parameter whose dtype and device the state takes)."""

    state_type: type
    num_layers: int
    state_size: int

    def _state_param(self) -> Tensor:
        raise NotImplementedError

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros: every leaf ``[B, num_layers, state_size]``."""
        param = self._state_param()
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

    def _layer_state(self, state: State, index: int) -> tuple[Tensor, ...]:
        return tuple(leaf[:, index] for leaf in state)

    def _pack(self, per_layer: list[tuple[Tensor, ...]]) -> State:
        if len(per_layer) == 1:
            return self.state_type(*(s.unsqueeze(1) for s in per_layer[0]))
        return self.state_type(
            *(torch.stack(parts, dim=1) for parts in zip(*per_layer, strict=True))
        )


class StackedCore(LayeredStateCore):
    """A stack of ``RecurrentLayer``s; every state leaf is ``[B, num_layers, H]``.

    Subclasses build ``self.layers`` and set ``state_type`` (a NamedTuple class with one field per
    entry of the layers' ``state_names``).
    """

    layers: nn.ModuleList

    def _init_stack(self, layers: list[RecurrentLayer]) -> None:
        self.layers = nn.ModuleList(layers)
        self.input_size = layers[0].input_size
        self.hidden_size = layers[-1].hidden_size
        self.output_size = self.state_size = self.hidden_size
        self.num_layers = len(layers)

    def _state_param(self) -> Tensor:
        return self.layers[0].weight_hh

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, F]``, state leaves ``[B, L, H]`` -> ``(y [B, H], new_state)``."""
        self._check_state(state, x.shape[0])
        new_states = []
        for index, layer in enumerate(self.layers):
            x, layer_state = layer.cell(layer.project(x), self._layer_state(state, index))
            new_states.append(layer_state)
        return x, self._pack(new_states)

    def forward(
        self, x: Tensor, state: State, is_first: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x [T, B, F]``, state leaves ``[B, L, H]``, ``is_first [T, B]`` -> ``(y [T, B, H], state)``."""
        is_first = check_sequence_inputs(self, x, is_first)
        self._check_state(state, x.shape[1])
        reset_steps = frozenset(torch.nonzero(is_first.any(dim=1)).flatten().tolist())
        reset_mask = is_first.unsqueeze(-1) if reset_steps else None
        new_states = []
        for index, layer in enumerate(self.layers):
            x, layer_state = layer.unroll(
                x, self._layer_state(state, index), reset_mask, reset_steps
            )
            new_states.append(layer_state)
        return x, self._pack(new_states)

    def gate_activations(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """Gates of one step, ``{name: [B, num_layers * H]}`` (layers side by side on the unit axis)."""
        self._check_state(state, x.shape[0])
        per_layer: dict[str, list[Tensor]] = {}
        for index, layer in enumerate(self.layers):
            layer_state = self._layer_state(state, index)
            xp = layer.project(x)
            for name, value in layer.gates(xp, layer_state).items():
                per_layer.setdefault(name, []).append(value)
            x, _ = layer.cell(xp, layer_state)
        return {name: torch.cat(values, dim=-1) for name, values in per_layer.items()}

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}"
        )
