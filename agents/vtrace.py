"""V-trace off-policy targets (Espeholt et al., 2018, "IMPALA", section 4.1), as pure functions.

Notation (time-major, ``T`` transitions of ``B`` sequences): transition ``t`` goes from observation
``x_t`` with action ``a_t`` to ``x_{t+1}`` with reward ``r_t`` and discount ``gamma_t`` (0 where the
episode terminated at ``x_{t+1}``). With ``rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t))`` and
``c_t = lambda * min(c_bar, pi / mu)``:

    delta_t = rho_t (r_t + gamma_t V(x_{t+1}) - V(x_t))
    v_t = V(x_t) + delta_t + gamma_t c_t (v_{t+1} - V(x_{t+1})),      v_T = V(x_T)
    A_t = min(rho_bar_pg, pi / mu) (r_t + gamma_t v_{t+1} - V(x_t))     (policy-gradient advantage)

``mask [T, B]`` (optional) marks valid transitions; at an invalid one (an action the env ignored,
e.g. the step into an autoreset) ``delta_t = 0`` and ``c_t = 0``, so ``v_t = V(x_t)``: the value of a
truncated episode's last observation is bootstrapped, not pulled towards zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class VTraceReturns(NamedTuple):
    vs: Tensor  # [T, B] value targets v_t
    pg_advantages: Tensor  # [T, B] A_t
    q: Tensor  # [T, B] one-step action-value targets r_t + gamma_t v_{t+1} (v_T: the bootstrap value)


def _one_step_targets(rewards: Tensor, discounts: Tensor, values: Tensor, bootstrap_value: Tensor) -> Tensor:
    """``r_t + gamma_t x_{t+1}`` ``[T, B]`` for a ``[T, B]`` series ``x`` (here ``values``) whose
    ``x_T`` is ``bootstrap_value`` ``[B]``."""
    return rewards + discounts * torch.cat([values[1:], bootstrap_value.unsqueeze(0)])


@torch.no_grad()
def vtrace(
    log_rhos: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    mask: Tensor | None = None,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets.

    Args:
        log_rhos: ``[T, B]`` ``log pi(a_t|x_t) - log mu(a_t|x_t)`` (0 on-policy).
        discounts: ``[T, B]`` ``gamma_t``.
        rewards: ``[T, B]`` ``r_t``.
        values: ``[T, B]`` ``V(x_t)``.
        bootstrap_value: ``[B]`` ``V(x_T)``.
        mask: ``[T, B]`` bool or float, 1 for valid transitions (default: all valid).
        clip_*_threshold: ``rho_bar``, ``rho_bar_pg``, ``c_bar``; ``None`` disables a clip.
        lambda_: the trace-cutting ``lambda`` of the paper's remark 2.
    """
    rhos = torch.exp(log_rhos)
    clipped_rhos = rhos.clamp(max=clip_rho_threshold) if clip_rho_threshold is not None else rhos
    cs = lambda_ * (rhos.clamp(max=clip_c_threshold) if clip_c_threshold is not None else rhos)
    deltas = clipped_rhos * (_one_step_targets(rewards, discounts, values, bootstrap_value) - values)
    if mask is not None:
        mask = mask.to(values.dtype)
        deltas = deltas * mask
        cs = cs * mask
    corrections = torch.zeros_like(bootstrap_value)  # v_{t+1} - V(x_{t+1})
    vs_minus_v = torch.empty_like(values)
    for t in range(values.shape[0] - 1, -1, -1):
        corrections = deltas[t] + discounts[t] * cs[t] * corrections
        vs_minus_v[t] = corrections
    vs = values + vs_minus_v
    q = _one_step_targets(rewards, discounts, vs, bootstrap_value)
    pg_rhos = rhos.clamp(max=clip_pg_rho_threshold) if clip_pg_rho_threshold is not None else rhos
    return VTraceReturns(vs, pg_rhos * (q - values), q)


@torch.no_grad()
def gae(
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    lambda_: float,
    mask: Tensor | None = None,
) -> VTraceReturns:
    """Generalised advantage estimation (Schulman et al., 2016), shapes as ``vtrace``.

    ``A_t = sum_k (gamma lambda)^k delta_{t+k}`` with ``delta_t = r_t + gamma_t V(x_{t+1}) - V(x_t)``;
    returns ``vs = A + V`` (the lambda-returns), ``pg_advantages = A`` and ``q = r + gamma vs_{t+1}``.
    Equals on-policy V-trace (``rho = c = 1``) when ``lambda_ = 1``. Invalid transitions (``mask`` 0)
    get ``A_t = 0``.
    """
    deltas = _one_step_targets(rewards, discounts, values, bootstrap_value) - values
    weights = discounts * lambda_
    if mask is not None:
        mask = mask.to(values.dtype)
        deltas = deltas * mask
        weights = weights * mask
    advantages = torch.empty_like(values)
    running = torch.zeros_like(bootstrap_value)
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + weights[t] * running
        advantages[t] = running
    vs = advantages + values
    q = _one_step_targets(rewards, discounts, vs, bootstrap_value)
    return VTraceReturns(vs, advantages, q)
