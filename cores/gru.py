"""The GRU gating family: gru, u/r/ur/c/o-gru and every grid point of the paper's ablation.

Equations (one layer, torch's reset-after form; ``x [B, F]``, ``h [B, H]``):

    r = sigmoid(W_r x + b_ir + U_r h + b_hr)                  reset gate, always standard
    z = sigmoid(W_z x + b_iz + U_z h + b_hz)                  retain gate (cumax with "ordered")
    q = sigmoid(W_q x + b_iq + U_q h + b_hq - b_z)            refine gate of z (aux_gate="refine")
    g = z^2 + 2 q z (1 - z)                                   (g = z without refine)
    n = tanh(W_n x + b_in + r * (U_n h + b_hn))
    h' = g * h + (1 - g) * n

The refine gate acts on the retain gate z (CORES.md 2.4 reconstruction). state-spaces applies UR to
the write gate ``1 - z`` instead; that equals this family with the refine gate mirrored, ``q -> 1 - q``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import gates as G
from .base import check_sizes
from .cache import InferenceCache
from .fused import GRULayout, GRURecurrence, gru_pointwise
from .stacked import RecurrentLayer, StackedCore


class GRUState(NamedTuple):
    h: Tensor  # [B, num_layers, H]


class GRULayer(RecurrentLayer):
    """One GRU-family layer: ``weight_ih [G, F]``, ``weight_hh [G, H]``, ``bias_ih``, ``bias_hh [G]``
    with row blocks ``[r, z, q?, n]`` (torch's order, the refine block inserted before ``n``)."""

    state_names = ("h",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        gate_init: str,
        aux_gate: str,
        t_max: float | None,
        forget_bias: float,
        refine_bias: str,
        freeze_gate_bias: bool,
        fused: bool,
    ):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gate_init, self.t_max, self.forget_bias = gate_init, t_max, forget_bias
        self.refine_bias = refine_bias
        self.layout = GRULayout(hidden_size, refine=aux_gate == "refine")
        rows = self.layout.size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.register_buffer("frozen_gate_bias", torch.zeros(rows) if freeze_gate_bias else None)
        self.use_fused = fused and gate_init != "ordered"
        self._bias_cache = InferenceCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = G.uniform_weight_bound(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)
        sz = self.layout.slices["z"]
        with torch.no_grad():
            if self.gate_init == "standard":
                self.bias_ih[sz] += self.forget_bias
                return
            self.bias_hh[sz] = 0.0  # the retain-gate value lives in one vector only
            if self.gate_init == "ordered":
                self.bias_ih[sz] = 0.0
                return
            if self.gate_init == "uniform":
                value = G.ugi_bias(self.hidden_size)
            else:
                value = G.chrono_bias(self.hidden_size, self.t_max)
            if self.frozen_gate_bias is not None:
                self.frozen_gate_bias[sz] = value
                self.bias_ih[sz] = 0.0
            else:
                self.bias_ih[sz] = value

    def effective_bias(self) -> Tensor:
        """The input-side bias actually used ``[G]`` (frozen offset, refine tie ``-b_z``)."""
        return self._bias_cache.get((self.bias_ih, self.bias_hh), self._build_bias)

    def _build_bias(self) -> Tensor:
        b = self.bias_ih
        if self.frozen_gate_bias is not None:
            b = b + self.frozen_gate_bias
        if self.layout.refine and self.refine_bias == "neg_forget":
            sz, sq = self.layout.slices["z"], self.layout.slices["q"]
            b_z = b[sz] + self.bias_hh[sz]
            b = torch.cat([b[: sq.start], b[sq] - b_z, b[sq.stop :]])
        return b

    def project(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out = torch.addmm(self.effective_bias(), flat, self.weight_ih.t())
        return out.view(*x.shape[:-1], -1)

    def _activate(self, xp: Tensor, h: Tensor) -> dict[str, Tensor]:
        L, sl = self.layout, self.layout.slices
        nsig = L.num_sigmoid * self.hidden_size
        hp = torch.addmm(self.bias_hh, h, self.weight_hh.t())
        pre = xp[:, :nsig] + hp[:, :nsig]
        s = torch.sigmoid(pre)
        r = s[:, sl["r"]]
        z = G.cumax(pre[:, sl["z"]]) if self.gate_init == "ordered" else s[:, sl["z"]]
        out = {"reset": r, "forget": z}
        g = z
        if L.refine:
            out["refine"] = s[:, sl["q"]]
            g = out["effective"] = G.refine(z, out["refine"])
        out["g"] = g
        out["n"] = torch.tanh(torch.addcmul(xp[:, nsig:], r, hp[:, nsig:]))
        return out

    def cell(self, xp: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        (h,) = state
        if self.use_fused:
            hp = torch.addmm(self.bias_hh, h, self.weight_hh.t())
            h = gru_pointwise(xp, hp, h, self.layout)
            return h, (h,)
        a = self._activate(xp, h)
        h = torch.addcmul(a["n"], a["g"], h - a["n"])
        return h, (h,)

    def gates(self, xp: Tensor, state: tuple[Tensor, ...]) -> dict[str, Tensor]:
        a = self._activate(xp, state[0])
        return {k: a[k] for k in ("forget", "refine", "effective") if k in a}

    def unroll(self, x, state, reset_mask, reset_steps):
        if not self.use_fused:
            return super().unroll(x, state, reset_mask, reset_steps)
        (h0,) = state
        hs = GRURecurrence.apply(
            self.project(x), self.weight_hh, self.bias_hh, h0, reset_mask, reset_steps, self.layout
        )
        return hs, (hs[-1],)

    @torch.no_grad()
    def load_torch_weights(self, gru: nn.GRU, layer: int = 0) -> None:
        """Copy layer ``layer`` of a ``torch.nn.GRU`` (same row order r, z, n)."""
        if self.layout.refine:
            raise ValueError("load_torch_weights needs a GRU layer without the refine gate")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self, name).copy_(getattr(gru, f"{name}_l{layer}"))
        if self.frozen_gate_bias is not None:
            self.frozen_gate_bias.zero_()


class GRUCore(StackedCore):
    """GRU-family core; state ``GRUState(h)`` of shape ``[B, num_layers, H]``.

    Options: ``gate_init`` (standard | chrono | ordered | uniform), ``aux_gate`` (none | refine; the
    master gate needs separate input and forget streams and has no GRU form), ``t_max`` (chrono),
    ``forget_bias`` (constant added to the retain-gate bias with standard init, default 0.0 =
    PyTorch's init), ``refine_bias`` (neg_forget | zero, as for the LSTM family, **[UNVERIFIED]**),
    ``freeze_gate_bias``, ``num_layers``, ``fused``.
    """

    state_type = GRUState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        gate_init: str = "standard",
        aux_gate: str = "none",
        t_max: float | None = None,
        forget_bias: float | None = None,
        refine_bias: str = "neg_forget",
        freeze_gate_bias: bool = False,
        fused: bool = True,
    ):
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers)
        G.check_gate_options(gate_init, aux_gate, ("none", "refine"), refine_bias, t_max, forget_bias)
        self.gate_init, self.aux_gate = gate_init, aux_gate
        options = dict(
            gate_init=gate_init, aux_gate=aux_gate, t_max=t_max,
            forget_bias=0.0 if forget_bias is None else forget_bias, refine_bias=refine_bias,
            freeze_gate_bias=freeze_gate_bias, fused=fused,
        )
        sizes = [input_size] + [hidden_size] * num_layers
        self._init_stack([GRULayer(n, hidden_size, **options) for n in sizes[:-1]])

    def load_torch_weights(self, gru: nn.GRU) -> None:
        """Copy all layers of a ``torch.nn.GRU`` (same sizes, ``batch_first=False``)."""
        if (gru.input_size, gru.hidden_size, gru.num_layers) != (
            self.input_size, self.hidden_size, self.num_layers
        ) or gru.bidirectional or not gru.bias:
            raise ValueError("load_torch_weights needs an nn.GRU of the same sizes, no extras")
        for index, layer in enumerate(self.layers):
            layer.load_torch_weights(gru, index)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gate_init={self.gate_init!r}, aux_gate={self.aux_gate!r}"
