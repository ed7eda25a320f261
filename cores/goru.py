"""Gated Orthogonal Recurrent Unit (GORU, Jing et al., Neural Computation 2019).

Equations (``x [B, F]``, ``h [B, H]``, ``Q`` orthogonal ``[H, H]``):

    r = sigmoid(W_xr x + W_hr h + b_r)          reset gate, b_r = 2.0 at init
    z = sigmoid(W_xz x + W_hz h + b_z)          retain (update) gate
    c = modReLU(r * (Q h) + W_xc x, b_c)        reset applied after the orthogonal map
    h' = z * h + (1 - z) * c

Following the official TensorFlow code (jingli9111/GORU-tensorflow): weights ``U(-0.01, 0.01)``,
``b_z ~ U(+-sqrt(3/H))`` (TF1 glorot on a vector), ``b_c = 0.01`` (another public copy uses 2.0:
option ``modrelu_bias_init``). ``Q`` is built once per unroll, and reused while autograd is off.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from .base import Core, State, check_sequence_inputs, check_sizes
from .cache import InferenceCache
from .gates import check_choice

ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder", "givens")


def modrelu(a: Tensor, bias: Tensor) -> Tensor:
    """Real modReLU: ``sign(a) * relu(|a| + bias)``; odd in ``a``, a dead zone of width ``|bias|``
    for ``bias < 0``, and ``a + bias * sign(a)`` for ``bias > 0``."""
    return torch.sign(a) * torch.relu(a.abs() + bias)


def givens_matrix(angles: Tensor, hidden_size: int) -> Tensor:
    """Orthogonal ``[H, H]`` product of ``L`` layers of disjoint 2x2 rotations (EUNN "tunable").

    ``angles [L, H/2]``; even layers rotate the pairs (0,1), (2,3), ...; odd layers (1,2), (3,4), ...
    (using the first ``H/2 - 1`` angles). ``H`` must be even.
    """
    H = hidden_size
    m = torch.eye(H, dtype=angles.dtype, device=angles.device)
    for k in range(angles.shape[0]):
        start = k % 2
        a_idx = torch.arange(start, H - 1, 2, device=angles.device)
        theta = angles[k, : a_idx.numel()]
        cos, sin = theta.cos().unsqueeze(1), theta.sin().unsqueeze(1)
        a, b = m[a_idx], m[a_idx + 1]
        m = m.index_copy(0, a_idx, cos * a - sin * b).index_copy(0, a_idx + 1, sin * a + cos * b)
    return m


class GORUState(NamedTuple):
    h: Tensor  # [B, H]


class GORUCore(Core):
    """GORU core; state ``GORUState(h [B, H])``.

    Options:
    - ``orthogonal_map``: ``matrix_exp`` (default; ``Q = base @ exp(A - A^T)`` via
      ``torch.nn.utils.parametrizations.orthogonal``, covers SO(H)), ``cayley``, ``householder``
      (reaches all of O(H), the journal's best variant), or ``givens`` (the official EUNN "tunable"
      style with ``capacity`` layers; needs an even ``hidden_size``).
    - ``capacity``: number of Givens layers (``givens`` only; default 2).
    - ``modrelu_bias_init`` (0.01), ``reset_bias_init`` (2.0), ``weight_init_range`` (0.01).
    """

    state_type = GORUState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        orthogonal_map: str = "matrix_exp",
        capacity: int = 2,
        modrelu_bias_init: float = 0.01,
        reset_bias_init: float = 2.0,
        weight_init_range: float = 0.01,
    ):
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_choice("orthogonal_map", orthogonal_map, ORTHOGONAL_MAPS)
        H = hidden_size
        if orthogonal_map == "givens" and (H % 2 or capacity < 1):
            raise ValueError(
                f"orthogonal_map='givens' needs an even hidden_size and capacity >= 1, "
                f"got hidden_size={H}, capacity={capacity}"
            )
        self.input_size, self.hidden_size, self.output_size = input_size, H, H
        self.orthogonal_map = orthogonal_map
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))  # rows r, z, c
        self.weight_hh = nn.Parameter(torch.empty(2 * H, H))  # rows r, z
        self.bias = nn.Parameter(torch.empty(2 * H))  # b_r, b_z
        self.modrelu_bias = nn.Parameter(torch.full((H,), float(modrelu_bias_init)))
        if orthogonal_map == "givens":
            self.givens_angles = nn.Parameter(torch.empty(capacity, H // 2).uniform_(-math.pi, math.pi))
        else:
            self.orthogonal = nn.Linear(H, H, bias=False)
            parametrizations.orthogonal(self.orthogonal, orthogonal_map=orthogonal_map)
            with torch.no_grad():
                self.orthogonal.weight = torch.linalg.qr(torch.randn(H, H))[0]
        with torch.no_grad():
            nn.init.uniform_(self.weight_ih, -weight_init_range, weight_init_range)
            nn.init.uniform_(self.weight_hh, -weight_init_range, weight_init_range)
            self.bias[:H] = reset_bias_init
            bound = math.sqrt(3.0 / H)
            self.bias[H:].uniform_(-bound, bound)
        self._weight_cache = InferenceCache()

    def recurrent_matrix(self) -> Tensor:
        """The orthogonal ``Q [H, H]``."""
        if self.orthogonal_map == "givens":
            return givens_matrix(self.givens_angles, self.hidden_size)
        return self.orthogonal.weight

    def _recurrent_weight(self) -> Tensor:
        """``[W_hr; W_hz; Q]`` as one ``[3H, H]`` matrix: one recurrent matmul per step."""
        sources = [p for p in self.parameters() if p is not self.weight_ih]
        return self._weight_cache.get(
            sources, lambda: torch.cat([self.weight_hh, self.recurrent_matrix()])
        )

    def _project(self, x: Tensor) -> Tensor:
        bias = torch.cat([self.bias, self.bias.new_zeros(self.hidden_size)])
        flat = torch.addmm(bias, x.reshape(-1, x.shape[-1]), self.weight_ih.t())
        return flat.view(*x.shape[:-1], -1)

    def _cell(self, xp: Tensor, h: Tensor, w_t: Tensor) -> Tensor:
        H = self.hidden_size
        hp = h @ w_t
        s = torch.sigmoid(xp[:, : 2 * H] + hp[:, : 2 * H])
        r, z = s[:, :H], s[:, H:]
        c = modrelu(torch.addcmul(xp[:, 2 * H :], r, hp[:, 2 * H :]), self.modrelu_bias)
        return torch.addcmul(c, z, h - c)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        p = self.weight_ih
        return GORUState(torch.zeros(batch_size, self.hidden_size, dtype=p.dtype,
                                     device=device or p.device))

    def _check_state(self, state: State, batch_size: int) -> None:
        if len(state) != 1 or tuple(state[0].shape) != (batch_size, self.hidden_size):
            raise ValueError(
                f"GORUCore state must be (h,) with h of shape [{batch_size}, {self.hidden_size}], "
                f"got {[list(s.shape) for s in state]}"
            )

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [B, F]``, ``state.h [B, H]`` -> ``(y [B, H], GORUState)``."""
        self._check_state(state, x.shape[0])
        h = self._cell(self._project(x), state[0], self._recurrent_weight().t())
        return h, GORUState(h)

    def forward(
        self, x: Tensor, state: State, is_first: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x [T, B, F]``, ``is_first [T, B]`` -> ``(y [T, B, H], GORUState)``; Q built once."""
        is_first = check_sequence_inputs(self, x, is_first)
        self._check_state(state, x.shape[1])
        reset_steps = set(torch.nonzero(is_first.any(dim=1)).flatten().tolist())
        w_t = self._recurrent_weight().t()
        xproj = self._project(x)
        h, outputs = state[0], []
        for t in range(x.shape[0]):
            if t in reset_steps:
                h = h.masked_fill(is_first[t].unsqueeze(-1), 0.0)
            h = self._cell(xproj[t], h, w_t)
            outputs.append(h)
        return torch.stack(outputs), GORUState(h)

    def gate_activations(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """``{"forget": z [B, H], "reset": r [B, H]}`` of one step."""
        self._check_state(state, x.shape[0])
        H = self.hidden_size
        pre = self._project(x)[:, : 2 * H] + state[0] @ self.weight_hh.t()
        s = torch.sigmoid(pre)
        return {"forget": s[:, H:], "reset": s[:, :H]}
