"""Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences").

One layer, ``v [B, H]`` the LayerNorm-ed block input, state ``x [B, N]`` complex (``N = state_size``):

    lambda = exp(-exp(nu_log) + i exp(theta_log))            diagonal, |lambda| < 1 for any parameters
    x' = lambda * x + gamma * (B v),   gamma = exp(gamma_log)  B = B_re + i B_im  [N, H]
    y = Re(C x') + D * v                                      C = C_re + i C_im  [H, N], D [H]

Initialisation (the paper's): ``lambda`` uniform on the ring ``r_min <= |lambda| <= r_max`` (uniform in
area, i.e. ``|lambda|^2 ~ U[r_min^2, r_max^2]``) with phase ``~ U[0, max_phase]``; ``gamma_log =
log sqrt(1 - |lambda|^2)`` (trainable); ``B_re, B_im ~ N(0, 1 / (2 H))``; ``C_re, C_im ~ N(0, 1 / N)``;
``D ~ N(0, 1)``. The state is kept as two real leaves (real and imaginary parts).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .base import check_sizes
from .cache import InferenceCache
from .scan import ScanCore, ScanLayer, linear_scan


class LRUState(NamedTuple):
    re: Tensor  # [B, num_layers, N]
    im: Tensor  # [B, num_layers, N]


class LRULayer(ScanLayer):
    """One LRU recurrence; parameters ``nu_log, theta_log, gamma_log [N]``, ``B_re, B_im [N, H]``,
    ``C_re, C_im [H, N]``, ``D [H]``."""

    state_names = ("re", "im")

    def __init__(self, hidden_size: int, state_size: int, *, r_min: float, r_max: float,
                 max_phase: float):
        super().__init__()
        self.hidden_size, self.state_size = hidden_size, state_size
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        N, H = state_size, hidden_size
        self.nu_log = nn.Parameter(torch.empty(N))
        self.theta_log = nn.Parameter(torch.empty(N))
        self.gamma_log = nn.Parameter(torch.empty(N))
        self.B_re = nn.Parameter(torch.empty(N, H))
        self.B_im = nn.Parameter(torch.empty(N, H))
        self.C_re = nn.Parameter(torch.empty(H, N))
        self.C_im = nn.Parameter(torch.empty(H, N))
        self.D = nn.Parameter(torch.empty(H))
        # lambda and the two interleaved weights, rebuilt per call only while autograd records
        self._caches = {name: InferenceCache() for name in ("lambda", "drive", "readout")}
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        N, H = self.state_size, self.hidden_size
        # 1 - rand lies in (0, 1]: no log(0) below.
        u1 = 1.0 - torch.rand(N, dtype=torch.float64)
        u2 = 1.0 - torch.rand(N, dtype=torch.float64)
        radius_sq = u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2
        nu_log = torch.log(-0.5 * torch.log(radius_sq))
        self.nu_log.copy_(nu_log)
        self.theta_log.copy_(torch.log(self.max_phase * u2))
        self.gamma_log.copy_(0.5 * torch.log1p(-radius_sq))
        nn.init.normal_(self.B_re, std=1.0 / math.sqrt(2 * H))
        nn.init.normal_(self.B_im, std=1.0 / math.sqrt(2 * H))
        nn.init.normal_(self.C_re, std=1.0 / math.sqrt(N))
        nn.init.normal_(self.C_im, std=1.0 / math.sqrt(N))
        nn.init.normal_(self.D)

    def magnitude(self) -> Tensor:
        """``|lambda| [N]``."""
        return torch.exp(-torch.exp(self.nu_log))

    def _lambda(self) -> Tensor:
        return self._caches["lambda"].get((self.nu_log, self.theta_log), self._build_lambda)

    def _build_lambda(self) -> Tensor:
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def _drive(self, v: Tensor) -> Tensor:
        """``gamma * (B v)``, complex ``[..., N]``: one real matmul with ``[2N, H]`` rows ``(re, im)``
        interleaved, so the output is already laid out as complex numbers."""
        weight = self._caches["drive"].get((self.B_re, self.B_im, self.gamma_log), self._build_drive)
        return torch.view_as_complex((v @ weight.t()).unflatten(-1, (self.state_size, 2)))

    def _build_drive(self) -> Tensor:
        gamma = torch.exp(self.gamma_log).unsqueeze(-1)
        return torch.stack([self.B_re * gamma, self.B_im * gamma], dim=1).flatten(0, 1)

    def _readout(self, x: Tensor, v: Tensor) -> Tensor:
        """``Re(C x) + D v`` as one real matmul of ``x`` viewed as ``[..., 2N]`` reals."""
        weight = self._caches["readout"].get((self.C_re, self.C_im), self._build_readout)
        return torch.addcmul(torch.view_as_real(x).flatten(-2) @ weight.t(), self.D, v)

    def _build_readout(self) -> Tensor:
        return torch.stack([self.C_re, -self.C_im], dim=2).flatten(1, 2)

    def sequence(self, v, state, reset):
        x = linear_scan(self._lambda(), self._drive(v), torch.complex(*state), reset)
        return self._readout(x, v), (x[-1].real, x[-1].imag)

    def step(self, v, state):
        x = self._lambda() * torch.complex(*state) + self._drive(v)
        return self._readout(x, v), (x.real, x.imag)

    def gates(self, v, state):
        return {"forget": self.magnitude().expand(v.shape[0], -1)}


class LRUCore(ScanCore):
    """LRU core; state ``LRUState(re, im)``, each ``[B, num_layers, state_size]``.

    Options: ``num_layers`` residual blocks (see ``cores/scan.py``: ``Linear(F, H)``, then per block
    ``u += LRU(LN(u))``, ``u += MLP(LN(u))``), ``mlp_expansion`` (0: no MLP), ``state_size`` (``N``, default
    ``hidden_size``), ``r_min``/``r_max`` (ring of ``|lambda|`` at init, default 0.9/0.999),
    ``max_phase`` (default ``2 pi``).

    ``gate_activations`` reports ``{"forget": |lambda|}`` broadcast to ``[B, num_layers * N]``: the
    per-unit retention, which depends on neither the input nor the state.
    """

    state_type = LRUState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        state_size: int | None = None,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        mlp_expansion: int = 2,
    ):
        super().__init__()
        state_size = hidden_size if state_size is None else state_size
        check_sizes(input_size, hidden_size, num_layers)
        if not isinstance(state_size, int) or isinstance(state_size, bool) or state_size < 1:
            raise ValueError(f"state_size must be a positive integer, got {state_size!r}")
        if not 0.0 <= r_min <= r_max < 1.0 or r_max <= 0.0:
            raise ValueError(f"LRU needs 0 <= r_min <= r_max < 1 and r_max > 0, got r_min={r_min}, "
                             f"r_max={r_max}")
        if not max_phase > 0.0:
            raise ValueError(f"max_phase must be positive, got {max_phase}")
        layers = [LRULayer(hidden_size, state_size, r_min=r_min, r_max=r_max, max_phase=max_phase)
                  for _ in range(num_layers)]
        self._init_blocks(input_size, hidden_size, layers, mlp_expansion)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, state_size={self.state_size}"
