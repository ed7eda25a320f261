"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?") and their UR variants.

Every gate and the candidate depend on the block input ``v_t`` only, never on ``h``, so the recurrence
is linear in ``h`` and ``forward`` runs as a parallel scan (``cores/scan.py``). One layer, with
``P_k = W_k v + b_k`` (``v [B, H]`` is the LayerNorm-ed block input, ``h [B, H]``):

    min_gru:   f = sigmoid(P_f)                                retain gate, f = 1 - z of the paper
    min_lstm:  f = sigmoid(log sigmoid(P_f) - log sigmoid(P_i))  = sigma_f / (sigma_f + sigma_i)
    r = sigmoid(P_r - b_f)               refine gate (aux_gate="refine"; refine_bias="zero": no -b_f)
    g = f^2 + 2 r f (1 - f)              effective retain gate (gates.refine; g = f without refine)
    h~ = P_c                             candidate (candidate="identity"; "tanh" and "g" optional)
    h' = g * h + (1 - g) * h~

minGRU's update gate ``z`` is stored as its complement ``f = 1 - z`` (``P_f = -P_z``; the uniform
default init is symmetric, so the distribution is the paper's). minLSTM's normalised gates satisfy
``f' + i' = 1``, so minLSTM is tied by construction; its normalised ``f'`` is the retain gate that
``gate_init`` and the refine gate act on. The write side ``1 - g`` is computed as
``refine(1 - f, 1 - r)`` (the symmetry of CORES.md 6.3) from ``sigmoid(-P)``, so it keeps its
precision when ``g`` is close to 1.

Gate initialisation of the retain row (``gate_init``): ``standard`` (PyTorch's uniform
``1/sqrt(H)`` init plus ``forget_bias``, default 0), ``uniform`` (UGI, ``b_f = gates.ugi_bias``) or
``chrono`` (``b_f = gates.chrono_bias``). For minLSTM the input row then gets ``b_i = -b_f``, so that
at zero input ``f' = sigmoid(b_f)`` exactly, as in the minGRU.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from . import gates as G
from .base import check_sizes
from .cache import InferenceCache
from .scan import ScanCore, ScanLayer, linear_scan

GATE_INITS = ("standard", "chrono", "uniform")
CANDIDATES = ("identity", "tanh", "g")


class MinRNNState(NamedTuple):
    h: Tensor  # [B, num_layers, H]


def g_activation(x: Tensor) -> Tensor:
    """Feng et al.'s positive candidate activation: ``x + 1/2`` for ``x >= 0``, else ``sigmoid(x)``."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


_ACTIVATIONS = {"identity": lambda x: x, "tanh": torch.tanh, "g": g_activation}


class MinRNNLayer(ScanLayer):
    """One min-RNN recurrence: ``weight [G, H]``, ``bias [G]``, row blocks ``[f, i?, r?, c]`` of ``H``
    rows each (``i`` for minLSTM, ``r`` with the refine gate, ``c`` the candidate)."""

    state_names = ("h",)

    def __init__(
        self,
        hidden_size: int,
        *,
        normalized: bool,
        gate_init: str,
        aux_gate: str,
        t_max: float | None,
        forget_bias: float,
        refine_bias: str,
        candidate: str,
    ):
        super().__init__()
        self.hidden_size = self.state_size = hidden_size
        self.normalized, self.refine = normalized, aux_gate == "refine"
        self.gate_init, self.t_max, self.forget_bias = gate_init, t_max, forget_bias
        self.refine_bias, self.candidate = refine_bias, candidate
        names = ["f"] + ["i"] * normalized + ["r"] * self.refine + ["c"]
        self.slices = {name: slice(k * hidden_size, (k + 1) * hidden_size) for k, name in enumerate(names)}
        self.weight = nn.Parameter(torch.empty(len(names) * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(len(names) * hidden_size))
        self._bias_cache = InferenceCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight, self.bias):
            nn.init.uniform_(p, -bound, bound)
        sl = self.slices
        with torch.no_grad():
            if self.gate_init == "standard":
                self.bias[sl["f"]] += self.forget_bias
                return
            if self.gate_init == "uniform":
                value = G.ugi_bias(self.hidden_size)
            else:
                value = G.chrono_bias(self.hidden_size, self.t_max)
            self.bias[sl["f"]] = value
            if self.normalized:
                self.bias[sl["i"]] = -value

    def effective_bias(self) -> Tensor:
        """The bias added to the pre-activations ``[G]`` (the refine row tied to ``-b_f``)."""
        return self._bias_cache.get((self.bias,), self._build_bias)

    def _build_bias(self) -> Tensor:
        b = self.bias
        if self.refine and self.refine_bias == "neg_forget":
            sf, sr = self.slices["f"], self.slices["r"]
            b = torch.cat([b[: sr.start], b[sr] - b[sf], b[sr.stop :]])
        return b

    def _project(self, v: Tensor) -> Tensor:
        flat = v.reshape(-1, v.shape[-1])
        return torch.addmm(self.effective_bias(), flat, self.weight.t()).view(*v.shape[:-1], -1)

    def _activate(self, p: Tensor) -> dict[str, Tensor]:
        """Gates from pre-activations ``p [..., G]``: forget, refine?, effective?, retain g, write 1-g."""
        sl = self.slices
        s = p[..., sl["f"]]
        if self.normalized:
            s = F.logsigmoid(s) - F.logsigmoid(p[..., sl["i"]])
        f, f_bar = torch.sigmoid(s), torch.sigmoid(-s)
        out = {"forget": f, "retain": f, "write": f_bar}
        if self.refine:
            pr = p[..., sl["r"]]
            r = torch.sigmoid(pr)
            out["refine"] = r
            out["effective"] = out["retain"] = G.refine(f, r)
            out["write"] = G.refine(f_bar, torch.sigmoid(-pr))
        return out

    def _coefficients(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """``(a, b)`` of ``h' = a h + b`` from ``p [..., G]`` (one autograd node, ``_GateCoefficients``)."""
        spec = (self.hidden_size, self.normalized, self.refine, self.candidate)
        if torch.is_grad_enabled() and p.requires_grad:
            return _GateCoefficients.apply(p, spec)
        return _gate_forward(p, spec)[:2]

    def sequence(self, v, state, reset):
        a, b = self._coefficients(self._project(v))
        h = linear_scan(a, b, state[0], reset)
        return h, (h[-1],)

    def step(self, v, state):
        a, b = self._coefficients(self._project(v))
        h = torch.addcmul(b, a, state[0])
        return h, (h,)

    def gates(self, v, state):
        gates = self._activate(self._project(v))
        return {k: gates[k] for k in ("forget", "refine", "effective") if k in gates}


def _gate_forward(p: Tensor, spec: tuple) -> tuple[Tensor, ...]:
    """``(a, b, sig, sig_bar, write)``: ``a = g``, ``b = (1 - g) h~`` and what the backward reuses.

    ``sig = sigmoid(pre)``, ``sig_bar = sigmoid(-pre)`` with ``pre = [s, P_r?]`` (``s = P_f``, minLSTM's
    ``log sigmoid(P_f) - log sigmoid(P_i)``); ``write = 1 - g``, computed from the complements."""
    H, normalized, refine, candidate = spec
    if normalized:
        pre = p.new_empty(p.shape[:-1] + ((1 + refine) * H,))
        torch.sub(F.logsigmoid(p[..., :H]), F.logsigmoid(p[..., H : 2 * H]), out=pre[..., :H])
        if refine:
            pre[..., H:] = p[..., 2 * H : 3 * H]
    else:
        pre = p[..., : (1 + refine) * H]
    sig, sig_bar = torch.sigmoid(pre), torch.neg(pre).sigmoid_()
    f, f_bar = sig[..., :H], sig_bar[..., :H]
    if refine:  # g = f (f + 2 r (1 - f)),  1 - g = (1 - f) ((1 - f) + 2 (1 - r) f): no cancellation
        r, r_bar = sig[..., H:], sig_bar[..., H:]
        a = torch.addcmul(f, r, f_bar, value=2.0).mul_(f)
        write = torch.addcmul(f_bar, r_bar, f, value=2.0).mul_(f_bar)
    else:
        a, write = f.contiguous(), f_bar
    c = _ACTIVATIONS[candidate](p[..., -H:])
    return a, write * c, sig, sig_bar, write


class _GateCoefficients(torch.autograd.Function):
    """``(a, b)`` from the pre-activations ``p [..., G]`` with a hand-written backward that writes one
    gradient tensor for ``p`` (autograd through the slices would zero-fill one ``[..., G]`` tensor per
    gate and add them).

    With ``e = da - db h~``: ``ds = e f (1 - f)`` (no refine) or ``2 e f (1 - f) ((1 - r) f + r (1 - f))``,
    ``dP_r = 2 e f (1 - f) r (1 - r)``, ``dh~ = db (1 - g)``; minLSTM: ``dP_f = ds sigmoid(-P_f)``,
    ``dP_i = -ds sigmoid(-P_i)``."""

    @staticmethod
    def forward(ctx, p, spec):
        a, b, sig, sig_bar, write = _gate_forward(p, spec)
        ctx.spec = spec
        ctx.save_for_backward(p, sig, sig_bar, write)
        return a, b

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_a, grad_b):
        p, sig, sig_bar, write = ctx.saved_tensors
        H, normalized, refine, candidate = ctx.spec
        pc = p[..., -H:]
        c = _ACTIVATIONS[candidate](pc)
        grad_p = torch.empty_like(p)
        grad_s = grad_p[..., :H] if not normalized else torch.empty_like(grad_b)
        e = torch.addcmul(grad_a, grad_b, c, value=-1.0, out=None if refine else grad_s)
        e.mul_(sig[..., :H]).mul_(sig_bar[..., :H])
        if refine:
            f, f_bar, r, r_bar = sig[..., :H], sig_bar[..., :H], sig[..., H:], sig_bar[..., H:]
            r_slice = slice(2 * H, 3 * H) if normalized else slice(H, 2 * H)
            zero = e.new_zeros(())  # addcmul(zero, x, y, value=2) = 2 x y in one pass
            torch.mul(e, torch.addcmul(zero, r, r_bar, value=2.0), out=grad_p[..., r_slice])
            torch.mul(e, torch.addcmul(zero, r_bar, f, value=2.0).addcmul_(r, f_bar, value=2.0), out=grad_s)
        if normalized:
            torch.mul(grad_s, torch.neg(p[..., :H]).sigmoid_(), out=grad_p[..., :H])
            torch.mul(grad_s, torch.sigmoid(-p[..., H : 2 * H]), out=grad_p[..., H : 2 * H]).neg_()
        grad_c = torch.mul(grad_b, write, out=grad_p[..., -H:])
        if candidate == "tanh":
            grad_c.mul_(1.0 - c * c)
        elif candidate == "g":
            grad_c.mul_(torch.where(pc >= 0, 1.0, torch.sigmoid(pc) * torch.sigmoid(-pc)))
        return grad_p, None


class MinRNNCore(ScanCore):
    """Shared constructor of ``MinGRUCore`` and ``MinLSTMCore``; state ``MinRNNState(h [B, L, H])``.

    Options:

    - ``num_layers``: residual blocks (see ``cores/scan.py``: input projection ``Linear(F, H)``, then
      per block ``u += minRNN(LN(u))``, ``u += MLP(LN(u))``); ``mlp_expansion``: MLP width / ``H``
      (default 2, which matches the parameters of an LSTM of the same size; 0: no MLP).
    - ``gate_init``: ``standard`` | ``chrono`` (needs ``t_max``) | ``uniform`` (UGI) for the retain gate.
    - ``aux_gate``: ``none`` | ``refine`` (the refine gate, from ``v`` only).
    - ``forget_bias``: added to the retain-gate bias with ``standard`` init (default 0.0).
    - ``refine_bias``: ``neg_forget`` (``r = sigmoid(P_r - b_f)``, default) | ``zero``.
    - ``candidate``: ``identity`` (the paper's ``h~ = W_h v``, default) | ``tanh`` | ``g``.

    ``gate_activations`` gives ``forget`` (the retain gate before refinement; minLSTM's normalised
    ``f'``), and with the refine gate ``refine`` and ``effective``, each ``[B, num_layers * H]``.
    """

    state_type = MinRNNState
    normalized: bool

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
        candidate: str = "identity",
        mlp_expansion: int = 2,
    ):
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers)
        G.check_choice("gate_init", gate_init, GATE_INITS)
        G.check_gate_options(gate_init, aux_gate, ("none", "refine"), refine_bias, t_max, forget_bias)
        G.check_choice("candidate", candidate, CANDIDATES)
        self.gate_init, self.aux_gate, self.candidate = gate_init, aux_gate, candidate
        options = dict(
            normalized=self.normalized, gate_init=gate_init, aux_gate=aux_gate, t_max=t_max,
            forget_bias=0.0 if forget_bias is None else forget_bias, refine_bias=refine_bias,
            candidate=candidate,
        )
        layers = [MinRNNLayer(hidden_size, **options) for _ in range(num_layers)]
        self._init_blocks(input_size, hidden_size, layers, mlp_expansion)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, gate_init={self.gate_init!r}, aux_gate={self.aux_gate!r}, "
            f"candidate={self.candidate!r}"
        )


class MinGRUCore(MinRNNCore):
    """minGRU: ``h' = f h + (1 - f) h~`` with ``f = sigmoid(W_f v + b_f)`` (``= 1 - z``)."""

    normalized = False


class MinLSTMCore(MinRNNCore):
    """minLSTM: ``h' = f' h + i' h~`` with ``f' = f / (f + i)``, ``i' = i / (f + i) = 1 - f'``."""

    normalized = True
