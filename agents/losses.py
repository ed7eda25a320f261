"""Actor-critic losses as pure functions of time-major tensors.

Every loss averages over the valid transitions (``mask [T, B]``), so the learning rate does not depend
on the batch size. ``impala_loss`` uses V-trace targets (off-policy correction for the actors' policy
lag); ``a2c_loss`` uses on-policy GAE(lambda) targets. Both return the same ``LossTerms``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from .vtrace import gae, vtrace


class LossTerms(NamedTuple):
    total: Tensor  # scalar, what the optimiser minimises
    policy: Tensor  # scalar policy-gradient loss
    baseline: Tensor  # scalar 0.5 * squared error of the value
    entropy: Tensor  # scalar negative mean entropy (minimising it raises entropy)
    action_value: Tensor | None = None  # scalar 0.5 * squared error of Q(x_t, a_t), with a Q head
    recognition: Tensor | None = None  # scalar recognition loss (agents.recognition), with its cost > 0


class Transitions(NamedTuple):
    """What a learner needs per transition ``t`` (``x_t -> x_{t+1}``), all ``[T, B]``."""

    actions: Tensor  # a_t, int64
    rewards: Tensor  # r_t, received on arriving at x_{t+1}
    discounts: Tensor  # gamma * (1 - terminated at x_{t+1})
    mask: Tensor  # bool: False where a_t was ignored (x_{t+1} starts an episode)
    behaviour_logits: Tensor  # [T, B, A] logits of the acting policy
    policy_mask: Tensor | None = None  # bool: where a_t trains the policy (None: mask); False where a_t
    # was a repeat of exploration's (agents.exploration), which the value targets still follow


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def action_log_probs(logits: Tensor, actions: Tensor) -> Tensor:
    """``log pi(a|x)``: ``logits [T, B, A]``, ``actions [T, B]`` -> ``[T, B]``."""
    return torch.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def entropy(logits: Tensor) -> Tensor:
    """Entropy of the categorical policy: ``[T, B, A] -> [T, B]``."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def scaled_advantages(advantages: Tensor, mask: Tensor) -> Tensor:
    """``advantages [T, B]`` divided by their standard deviation over the valid transitions (not
    centred, as PPO's are: the value baseline already centres them). The policy gradient's size then
    no longer depends on the reward's scale, so one entropy cost fits returns of 1 and per-step
    rewards of 1/415 (POPGym) alike. A batch whose advantages are all zero stays zero."""
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    return advantages / (std + 1e-8)


def _combine(logits, values, targets, batch, baseline_cost, entropy_cost, action_values,
             action_value_cost, advantage_norm) -> LossTerms:
    actions, mask = batch.actions, batch.mask
    advantages = targets.pg_advantages
    own = mask if batch.policy_mask is None else batch.policy_mask
    if advantage_norm:
        advantages = scaled_advantages(advantages, own)
    policy = -masked_mean(action_log_probs(logits, actions) * advantages, own)
    baseline = 0.5 * masked_mean(F.mse_loss(values, targets.vs, reduction="none"), mask)
    negentropy = -masked_mean(entropy(logits), mask)
    total = policy + baseline_cost * baseline + entropy_cost * negentropy
    q_loss = None
    if action_values is not None:
        # the value of the action taken, regressed on r_t + gamma v_{t+1}: every transition labels
        # one action without the noise of a sampled policy gradient, a dense signal for the shared
        # torso and core (docs/AGENTS.md measures what it does for a shuffled recall)
        taken = action_values.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        q_loss = 0.5 * masked_mean(F.mse_loss(taken, targets.q, reduction="none"), mask)
        total = total + action_value_cost * q_loss
    return LossTerms(total, policy, baseline, negentropy, q_loss)


def impala_loss(
    logits: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    batch: Transitions,
    baseline_cost: float = 0.5,
    entropy_cost: float = 0.01,
    clip_rho_threshold: float = 1.0,
    clip_pg_rho_threshold: float = 1.0,
    clip_c_threshold: float = 1.0,
    td_lambda: float = 1.0,
    action_values: Tensor | None = None,
    action_value_cost: float = 0.0,
    advantage_norm: bool = False,
) -> LossTerms:
    """IMPALA loss: ``logits [T, B, A]`` and ``values [T, B]`` of the learner's policy at ``x_t``,
    ``bootstrap_value [B]`` at ``x_T``; ``td_lambda`` is V-trace's ``lambda`` (1 in the paper's
    main experiments; below 1 trades bias for variance like GAE). ``action_values [T, B, A]`` (a Q
    head's output at ``x_t``) add ``action_value_cost`` times their regression loss on
    ``r_t + gamma v_{t+1}`` (the value targets)."""
    log_rhos = action_log_probs(logits.detach(), batch.actions) - action_log_probs(
        batch.behaviour_logits, batch.actions
    )
    targets = vtrace(log_rhos, batch.discounts, batch.rewards, values.detach(),
                     bootstrap_value.detach(), batch.mask, clip_rho_threshold,
                     clip_pg_rho_threshold, clip_c_threshold, td_lambda)
    return _combine(logits, values, targets, batch, baseline_cost, entropy_cost, action_values,
                    action_value_cost, advantage_norm)


def a2c_loss(
    logits: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    batch: Transitions,
    baseline_cost: float = 0.5,
    entropy_cost: float = 0.01,
    td_lambda: float = 0.95,
    action_values: Tensor | None = None,
    action_value_cost: float = 0.0,
    advantage_norm: bool = False,
) -> LossTerms:
    """A2C loss with GAE(lambda) targets; shapes and ``action_values`` as ``impala_loss`` (behaviour
    logits unused)."""
    targets = gae(batch.discounts, batch.rewards, values.detach(), bootstrap_value.detach(),
                  td_lambda, batch.mask)
    return _combine(logits, values, targets, batch, baseline_cost, entropy_cost, action_values,
                    action_value_cost, advantage_norm)
