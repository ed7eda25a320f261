"""Gate mechanics of Gu et al. (ICML 2020), shared by the LSTM and GRU families.

The two axes of the paper's ablation grid:

* ``gate_init`` (how the main retain gate ``f`` is initialised / activated):
  ``standard`` (framework default plus an optional constant bias), ``chrono`` (Tallec & Ollivier,
  needs ``t_max``), ``ordered`` (cumax activation of ON-LSTM), ``uniform`` (UGI).
* ``aux_gate``: ``none``, ``refine`` (the refine gate ``r``), ``master`` (ON-LSTM master gates, LSTM
  only).

Shapes: every function here works on ``[..., H]`` tensors, the unit axis last.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

GATE_INITS = ("standard", "chrono", "ordered", "uniform")
AUX_GATES = ("none", "refine", "master")
REFINE_BIASES = ("neg_forget", "zero")


def check_choice(option: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise a one-line ``ValueError`` if ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {option} {value!r}; expected one of {', '.join(allowed)}")


def check_gate_options(gate_init: str, aux_gate: str, aux_allowed: tuple[str, ...],
                       refine_bias: str, t_max: float | None, forget_bias: float | None) -> None:
    """The checks both families make at construction, each a one-line ``ValueError``."""
    check_choice("gate_init", gate_init, GATE_INITS)
    check_choice("aux_gate", aux_gate, aux_allowed)
    check_choice("refine_bias", refine_bias, REFINE_BIASES)
    if gate_init == "chrono" and t_max is None:
        raise ValueError("gate_init='chrono' needs t_max (the longest dependency, in steps)")
    if forget_bias is not None and gate_init != "standard":
        raise ValueError(f"forget_bias applies to gate_init='standard' only, not {gate_init!r}")


def ugi_bias(hidden_size: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform gate initialisation: ``b = logit(u)``, ``u ~ U[1/d, 1 - 1/d]``; returns ``[H]``.

    With zero weights and inputs the gate then starts at ``sigmoid(b) = u``, so its timescale
    ``1 / (1 - f)`` spreads over ``[d / (d - 1), d]`` with density proportional to ``1 / T^2``.
    """
    d = hidden_size
    low, high = (1.0 / d, 1.0 - 1.0 / d) if d > 2 else (0.25, 0.75)
    u = torch.rand(d, generator=generator, dtype=torch.float64) * (high - low) + low
    return torch.logit(u).to(torch.get_default_dtype())


def chrono_bias(
    hidden_size: int, t_max: float, generator: torch.Generator | None = None
) -> Tensor:
    """Chrono initialisation: ``b = log(tau)``, ``tau ~ U[1, t_max - 1]``; returns ``[H]``.

    ``sigmoid(b)`` then lies in ``[1/2, 1 - 1/t_max]`` and the timescale ``1 + tau`` is uniform on
    ``[2, t_max]``. The value goes into one bias vector only (see CORES.md on the 2x bias bug).
    """
    if not t_max or t_max <= 2:
        raise ValueError(f"chrono gate_init needs t_max > 2, got t_max={t_max!r}")
    tau = torch.rand(hidden_size, generator=generator, dtype=torch.float64) * (t_max - 2) + 1
    return torch.log(tau).to(torch.get_default_dtype())


def cumax(x: Tensor, dim: int = -1) -> Tensor:
    """Cumulative softmax (ON-LSTM): monotone non-decreasing along ``dim``, last entry 1. Clamped at 1,
    which the rounding of the sum can pass (1 + 2e-16 in float64), so a gate never leaves [0, 1]."""
    return torch.cumsum(torch.softmax(x, dim=dim), dim=dim).clamp(max=1.0)


def refine(f: Tensor, r: Tensor) -> Tensor:
    """Effective gate of the refine mechanism: ``g = f^2 + 2 r f (1 - f)``.

    ``r`` interpolates between the lower bound ``f^2`` (r = 0) and the upper bound ``1 - (1 - f)^2``
    (r = 1); ``r = 1/2`` gives ``g = f`` exactly.
    """
    return f * (f + 2.0 * r * (1.0 - f))


def master_gates(mf_pre: Tensor, mi_pre: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """ON-LSTM master gates from chunk-level pre-activations ``[..., H / chunk_size]``.

    Returns ``(m_f, m_i)`` of shape ``[..., H]``: ``m_f = cumax(mf_pre)``, ``m_i = 1 - cumax(mi_pre)``,
    each chunk value repeated ``chunk_size`` times.
    """
    m_f = cumax(mf_pre)
    m_i = 1.0 - cumax(mi_pre)
    if chunk_size > 1:
        m_f = m_f.repeat_interleave(chunk_size, dim=-1)
        m_i = m_i.repeat_interleave(chunk_size, dim=-1)
    return m_f, m_i


def apply_master(f: Tensor, i: Tensor, m_f: Tensor, m_i: Tensor) -> tuple[Tensor, Tensor]:
    """Combine gates with master gates: ``f' = f w + (m_f - w)``, ``i' = i w + (m_i - w)``, ``w = m_f m_i``."""
    w = m_f * m_i
    return f * w + (m_f - w), i * w + (m_i - w)


def uniform_weight_bound(hidden_size: int) -> float:
    """PyTorch's default RNN weight bound ``1 / sqrt(H)``."""
    return 1.0 / math.sqrt(hidden_size)
