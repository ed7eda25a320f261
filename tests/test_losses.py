"""Loss shapes and signs."""

from __future__ import annotations

import torch

from agents.losses import Transitions, a2c_loss, entropy, impala_loss

T, B, A = 5, 3, 4


def batch(advantage_sign: float = 1.0):
    torch.manual_seed(0)
    actions = torch.randint(A, (T, B))
    return Transitions(
        actions=actions,
        rewards=torch.full((T, B), advantage_sign),
        discounts=torch.zeros(T, B),  # one-step returns: the advantage is r - V
        mask=torch.ones(T, B, dtype=torch.bool),
        behaviour_logits=torch.zeros(T, B, A),
    )


def test_policy_gradient_raises_the_probability_of_good_actions():
    for loss_fn in (impala_loss, a2c_loss):
        for sign in (1.0, -1.0):
            b = batch(sign)
            logits = torch.zeros(T, B, A, requires_grad=True)
            values = torch.zeros(T, B, requires_grad=True)
            terms = loss_fn(logits, values, torch.zeros(B), b)
            assert terms.total.shape == () and terms.policy.shape == ()
            terms.policy.backward()
            taken = logits.grad.gather(-1, b.actions.unsqueeze(-1)).squeeze(-1)
            # gradient descent moves the taken action's logit by -grad: up if advantage > 0
            assert ((-taken) * sign > 0).all()


def test_baseline_moves_towards_the_target_and_entropy_is_negative():
    b = batch(1.0)
    values = torch.zeros(T, B, requires_grad=True)
    logits = torch.zeros(T, B, A)
    terms = impala_loss(logits, values, torch.zeros(B), b)
    terms.baseline.backward()
    assert (values.grad < 0).all()  # target 1 > 0: descent raises the value
    torch.testing.assert_close(terms.entropy, -entropy(logits).mean())
    assert terms.entropy < 0


def test_masked_transitions_do_not_contribute():
    b = batch(1.0)
    mask = b.mask.clone()
    mask[2] = False
    b = b._replace(mask=mask)
    logits = torch.zeros(T, B, A, requires_grad=True)
    values = torch.zeros(T, B, requires_grad=True)
    a2c_loss(logits, values, torch.zeros(B), b).total.backward()
    assert (logits.grad[2] == 0).all() and (values.grad[2] == 0).all()
    assert (logits.grad[1] != 0).any()
