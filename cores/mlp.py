"""A memoryless feed-forward core: the control of every memory comparison."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Core, State, check_sequence_inputs, check_sizes


class MLPCore(Core):
    """``num_layers`` of ``Linear + ReLU``; state ``()``. Sees only the current input, so any task it
    solves needs no memory. ``forward`` runs batched over ``T * B`` (resets change nothing)."""

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int = 1):
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers)
        self.input_size, self.output_size = input_size, hidden_size
        layers: list[nn.Module] = []
        for n_in in [input_size] + [hidden_size] * (num_layers - 1):
            layers += [nn.Linear(n_in, hidden_size), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return ()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, F] -> (y [B, H], ())``."""
        return self.net(x), ()

    def forward(
        self, x: Tensor, state: State = (), is_first: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x [T, B, F] -> (y [T, B, H], ())``."""
        check_sequence_inputs(self, x, is_first)
        return self.net(x), ()
