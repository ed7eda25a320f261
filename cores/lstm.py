"""The LSTM gating family of Gu et al. (ICML 2020): lstm, u/r/ur/c/o-lstm, on-lstm and every grid point.

Equations (one layer, ``x [B, F]``, ``h, c [B, H]``; pre-activations ``P_k = W_k x + U_k h + b_k``):

    f = sigmoid(P_f)                 (cumax(P_f) with gate_init="ordered")
    r = sigmoid(P_r - b_f)           (aux_gate="refine"; refine_bias="zero" drops the -b_f)
    g = f^2 + 2 r f (1 - f)          (g = f without the refine gate)
    i = 1 - g                        (tied_input; else i = sigmoid(P_i))
    [g, i] <- master gates of ON-LSTM (aux_gate="master"; see ``gates.apply_master``)
    u = tanh(P_u), o = sigmoid(P_o)
    c' = g * c + i * u,  h' = o * tanh(c')
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import gates as G
from .base import check_sizes
from .cache import InferenceCache
from .fused import LSTMLayout, LSTMRecurrence, lstm_pointwise
from .stacked import RecurrentLayer, StackedCore


class LSTMState(NamedTuple):
    h: Tensor  # [B, num_layers, H]
    c: Tensor  # [B, num_layers, H]


class LSTMLayer(RecurrentLayer):
    """One LSTM-family layer. Parameters: ``weight_ih [G, F]``, ``weight_hh [G, H]``, ``bias [G]``.

    Row blocks (``G``): the sigmoid gates ``[i?, f, r?, o]``, the candidate ``u``, then the two
    chunk-level master-gate blocks ``[mf, mi]`` (``H / chunk_size`` rows each) with ``aux_gate="master"``.
    Use ``load_torch_weights`` to copy a ``torch.nn.LSTM`` layer (rows i, f, g, o).
    """

    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        gate_init: str,
        aux_gate: str,
        tied_input: bool,
        t_max: float | None,
        forget_bias: float,
        refine_bias: str,
        freeze_gate_bias: bool,
        chunk_size: int,
        fused: bool,
    ):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gate_init, self.aux_gate = gate_init, aux_gate
        self.tied_input, self.t_max, self.forget_bias = tied_input, t_max, forget_bias
        self.refine_bias, self.freeze_gate_bias = refine_bias, freeze_gate_bias
        self.chunk_size = chunk_size
        self.layout = LSTMLayout(hidden_size, tied_input, refine=aux_gate == "refine")
        self.master_size = hidden_size // chunk_size if aux_gate == "master" else 0
        rows = self.layout.size + 2 * self.master_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias = nn.Parameter(torch.empty(rows))
        offset = torch.zeros(rows) if freeze_gate_bias else None
        self.register_buffer("frozen_gate_bias", offset)
        self.use_fused = fused and gate_init != "ordered" and aux_gate != "master"
        self._bias_cache = InferenceCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = G.uniform_weight_bound(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            nn.init.uniform_(p, -bound, bound)
        sl = self.layout.slices
        with torch.no_grad():
            if self.gate_init == "standard":
                self.bias[sl["f"]] += self.forget_bias
                return
            if self.gate_init == "ordered":
                self.bias[sl["f"]] = 0.0  # cumax(0) = j / H: evenly spaced timescales
                return
            if self.gate_init == "uniform":
                value = G.ugi_bias(self.hidden_size)
            else:
                value = G.chrono_bias(self.hidden_size, self.t_max)
                if not self.tied_input:
                    self.bias[sl["i"]] = -value
            if self.frozen_gate_bias is not None:
                self.frozen_gate_bias[sl["f"]] = value
                self.bias[sl["f"]] = 0.0
            else:
                self.bias[sl["f"]] = value

    def effective_bias(self) -> Tensor:
        """The bias actually added to the pre-activations ``[G]`` (frozen offset, refine tie)."""
        return self._bias_cache.get((self.bias,), self._build_bias)

    def _build_bias(self) -> Tensor:
        b = self.bias
        if self.frozen_gate_bias is not None:
            b = b + self.frozen_gate_bias
        if self.layout.refine and self.refine_bias == "neg_forget":
            sf, sr = self.layout.slices["f"], self.layout.slices["r"]
            b = torch.cat([b[: sr.start], b[sr] - b[sf], b[sr.stop :]])
        return b

    def project(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out = torch.addmm(self.effective_bias(), flat, self.weight_ih.t())
        return out.view(*x.shape[:-1], -1)

    def _activate(self, pre: Tensor) -> dict[str, Tensor]:
        """All gate values of one step from the full pre-activation ``pre [B, G]``."""
        L, sl = self.layout, self.layout.slices
        s = torch.sigmoid(pre[:, : L.num_sigmoid * self.hidden_size])
        out = {"o": s[:, sl["o"]], "u": torch.tanh(pre[:, sl["u"]])}
        f = G.cumax(pre[:, sl["f"]]) if self.gate_init == "ordered" else s[:, sl["f"]]
        out["forget"] = f
        g = f
        if L.refine:
            out["refine"] = s[:, sl["r"]]
            g = G.refine(f, out["refine"])
        i = None if self.tied_input else s[:, sl["i"]]
        if self.master_size:
            m0 = L.size
            mf_pre = pre[:, m0 : m0 + self.master_size]
            mi_pre = pre[:, m0 + self.master_size :]
            m_f, m_i = G.master_gates(mf_pre, mi_pre, self.chunk_size)
            g, i_hat = G.apply_master(g, 1.0 - g if i is None else i, m_f, m_i)
            i = None if self.tied_input else i_hat
            out["master_forget"], out["master_input"] = m_f, m_i
        if L.refine or self.master_size:
            out["effective"] = g
        out["g"], out["i"] = g, i
        return out

    def _preactivation(self, xp: Tensor, h: Tensor) -> Tensor:
        return torch.addmm(xp, h, self.weight_hh.t())

    def cell(self, xp: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        h, c = state
        if self.use_fused:
            h, c = lstm_pointwise(self._preactivation(xp, h), c, self.layout)
            return h, (h, c)
        a = self._activate(self._preactivation(xp, h))
        g, i, u = a["g"], a["i"], a["u"]
        c = torch.addcmul(u, g, c - u) if i is None else g * c + i * u
        h = a["o"] * torch.tanh(c)
        return h, (h, c)

    def gates(self, xp: Tensor, state: tuple[Tensor, ...]) -> dict[str, Tensor]:
        a = self._activate(self._preactivation(xp, state[0]))
        return {k: a[k] for k in ("forget", "refine", "effective") if k in a}

    def unroll(self, x, state, reset_mask, reset_steps):
        if not self.use_fused:
            return super().unroll(x, state, reset_mask, reset_steps)
        h0, c0 = state
        hs, c_last = LSTMRecurrence.apply(
            self.project(x), self.weight_hh, h0, c0, reset_mask, reset_steps, self.layout
        )
        return hs, (hs[-1], c_last)

    @torch.no_grad()
    def load_torch_weights(self, lstm: nn.LSTM, layer: int = 0) -> None:
        """Copy layer ``layer`` of a ``torch.nn.LSTM`` (untied, no aux gate); ``b = b_ih + b_hh``."""
        if not (self.aux_gate == "none" and not self.tied_input and self.gate_init != "ordered"):
            raise ValueError("load_torch_weights needs an untied LSTM layer without auxiliary gates")
        H = self.hidden_size
        torch_rows = {"i": 0, "f": 1, "u": 2, "o": 3}
        sources = {
            "weight_ih": getattr(lstm, f"weight_ih_l{layer}"),
            "weight_hh": getattr(lstm, f"weight_hh_l{layer}"),
            "bias": getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"),
        }
        for name, src in sources.items():
            dst = getattr(self, name)
            for block, k in torch_rows.items():
                dst[self.layout.slices[block]] = src[k * H : (k + 1) * H]
        if self.frozen_gate_bias is not None:
            self.frozen_gate_bias.zero_()


class LSTMCore(StackedCore):
    """LSTM-family core; state ``LSTMState(h, c)``, each ``[B, num_layers, H]``.

    Options (the two axes of the paper's ablation, plus details):

    - ``gate_init``: ``standard`` | ``chrono`` | ``ordered`` | ``uniform`` (UGI).
    - ``aux_gate``: ``none`` | ``refine`` | ``master`` (ON-LSTM master gates).
    - ``tied_input``: input gate ``i = 1 - g`` (the paper's variants). Default: tied, except plain
      ``standard``/``none`` and ``master`` cells, which default to the untied originals (LSTM,
      ON-LSTM). With ``master`` the tied form ``i' = 1 - f'`` is **[UNVERIFIED]** in CORES.md.
    - ``t_max``: horizon of chrono initialisation (required with ``gate_init="chrono"``).
    - ``forget_bias``: constant added to the forget-gate bias of ``standard`` init (default 1.0, the
      usual practice, Jozefowicz et al. 2015; use 0.0 for PyTorch's default).
    - ``refine_bias``: ``neg_forget`` (default; ``r = sigmoid(P_r - b_f)``, r0mainK's reading of the
      paper's pseudo-code, **[UNVERIFIED]**) | ``zero`` (state-spaces' form, no ``-b_f``).
    - ``freeze_gate_bias``: keep the UGI/chrono value as a fixed offset (state-spaces' choice) on top
      of a trainable bias starting at zero; default False (one trainable bias, r0mainK's choice).
    - ``chunk_size``: master-gate resolution (``H`` must be divisible by it; default 1).
    - ``num_layers``: stacked layers; ``fused``: use the fused recurrence where the cell allows it
      (sigmoid forget gate, no master gate); False forces the reference step loop.
    """

    state_type = LSTMState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        gate_init: str = "standard",
        aux_gate: str = "none",
        tied_input: bool | None = None,
        t_max: float | None = None,
        forget_bias: float | None = None,
        refine_bias: str = "neg_forget",
        freeze_gate_bias: bool = False,
        chunk_size: int = 1,
        fused: bool = True,
    ):
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers)
        G.check_gate_options(gate_init, aux_gate, G.AUX_GATES, refine_bias, t_max, forget_bias)
        if aux_gate == "master" and (chunk_size < 1 or hidden_size % chunk_size):
            raise ValueError(
                f"chunk_size={chunk_size} must be a positive divisor of hidden_size={hidden_size}"
            )
        if tied_input is None:
            plain = gate_init == "standard" and aux_gate == "none"
            tied_input = not (plain or aux_gate == "master")
        self.gate_init, self.aux_gate, self.tied_input = gate_init, aux_gate, tied_input
        options = dict(
            gate_init=gate_init, aux_gate=aux_gate, tied_input=tied_input, t_max=t_max,
            forget_bias=1.0 if forget_bias is None else forget_bias, refine_bias=refine_bias,
            freeze_gate_bias=freeze_gate_bias, chunk_size=chunk_size, fused=fused,
        )
        sizes = [input_size] + [hidden_size] * num_layers
        self._init_stack([LSTMLayer(n, hidden_size, **options) for n in sizes[:-1]])

    def load_torch_weights(self, lstm: nn.LSTM) -> None:
        """Copy all layers of a ``torch.nn.LSTM`` (same sizes, ``batch_first=False``)."""
        if (lstm.input_size, lstm.hidden_size, lstm.num_layers) != (
            self.input_size, self.hidden_size, self.num_layers
        ) or lstm.proj_size or lstm.bidirectional or not lstm.bias:
            raise ValueError("load_torch_weights needs an nn.LSTM of the same sizes, no extras")
        for index, layer in enumerate(self.layers):
            layer.load_torch_weights(lstm, index)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, gate_init={self.gate_init!r}, aux_gate={self.aux_gate!r}, "
            f"tied_input={self.tied_input}"
        )

