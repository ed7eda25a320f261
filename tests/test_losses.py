"""Loss shapes and signs."""

from __future__ import annotations

import torch

from agents.losses import Transitions, a2c_loss, entropy, impala_loss, scaled_advantages

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


def test_repeated_steps_train_the_value_but_not_the_policy():
    """``policy_mask`` False (an exploration repeat's action): no policy gradient there, while the
    value still moves towards its target and the other steps' policy terms are as without it."""
    for loss_fn in (impala_loss, a2c_loss):
        b = batch(1.0)
        own = b.mask.clone()
        own[2] = False
        grads = []
        for transitions in (b, b._replace(policy_mask=own)):
            logits = torch.zeros(T, B, A, requires_grad=True)
            values = torch.zeros(T, B, requires_grad=True)
            terms = loss_fn(logits, values, torch.zeros(B), transitions)
            (terms.policy + terms.baseline).backward()
            grads.append((logits.grad, values.grad))
        (plain_logits, plain_values), (own_logits, own_values) = grads
        assert (own_logits[2] == 0).all() and (plain_logits[2] != 0).any()
        torch.testing.assert_close(own_values, plain_values)
        assert (own_values[2] < 0).all()
        # the policy loss is a mean over fewer steps: the rest keep their direction, scaled by 5/4
        torch.testing.assert_close(own_logits[[0, 1, 3, 4]], plain_logits[[0, 1, 3, 4]] * T / (T - 1))


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


def test_the_action_value_term_regresses_only_the_taken_action_on_the_one_step_target():
    """Q(x_t, a_t) moves towards r_t + gamma v_{t+1} (here r_t: one-step returns); the other actions'
    values and the total without a Q head are untouched."""
    b = batch(1.0)
    logits, values = torch.zeros(T, B, A), torch.zeros(T, B)
    q = torch.zeros(T, B, A, requires_grad=True)
    for loss_fn in (impala_loss, a2c_loss):
        q.grad = None
        terms = loss_fn(logits, values, torch.zeros(B), b, action_values=q, action_value_cost=2.0)
        torch.testing.assert_close(terms.action_value, torch.tensor(0.5))  # 0.5 * (0 - 1)^2
        plain = loss_fn(logits, values, torch.zeros(B), b)
        assert plain.action_value is None
        torch.testing.assert_close(terms.total, plain.total + 2.0 * terms.action_value)
        terms.total.backward()
        taken = torch.nn.functional.one_hot(b.actions, A).bool()
        assert (q.grad[taken] < 0).all() and (q.grad[~taken] == 0).all()  # descent raises Q(x, a_t)


def test_the_action_value_target_bootstraps_from_the_next_value_target():
    """With discounts, the target of the last transition is r + gamma * bootstrap value."""
    b = batch(0.0)._replace(discounts=torch.full((T, B), 0.5))
    q = torch.zeros(T, B, A, requires_grad=True)
    terms = a2c_loss(torch.zeros(T, B, A), torch.full((T, B), 2.0), torch.full((B,), 2.0), b,
                     td_lambda=0.0, action_values=q, action_value_cost=1.0)
    terms.action_value.backward()
    last = q.grad[-1].gather(-1, b.actions[-1].unsqueeze(-1))
    # d/dQ of 0.5 * mean((Q - 1)^2) over T*B transitions, target 0 + 0.5 * 2
    torch.testing.assert_close(last, torch.full((B, 1), -1.0 / (T * B)))


def test_advantage_norm_makes_the_policy_gradient_independent_of_the_reward_scale():
    """With ``advantage_norm`` rewards of 1 and of 1/415 give the same policy gradient (the entropy
    cost then weighs the same against both); masked transitions neither count in the standard
    deviation nor get a gradient."""
    torch.manual_seed(1)
    rewards = torch.randn(T, B)
    mask = torch.ones(T, B, dtype=torch.bool)
    mask[0, 0] = False
    grads = []
    for scale in (1.0, 1.0 / 415):
        b = batch(1.0)._replace(rewards=rewards * scale, mask=mask)
        for loss_fn in (impala_loss, a2c_loss):
            logits = torch.zeros(T, B, A, requires_grad=True)
            loss_fn(logits, torch.zeros(T, B), torch.zeros(B), b, advantage_norm=True).policy.backward()
            grads.append(logits.grad)
    torch.testing.assert_close(grads[0], grads[2])
    torch.testing.assert_close(grads[1], grads[3])
    assert (grads[0][0, 0] == 0).all()
    # without it the gradient shrinks with the rewards
    b = batch(1.0)._replace(rewards=rewards / 415, mask=mask)
    logits = torch.zeros(T, B, A, requires_grad=True)
    a2c_loss(logits, torch.zeros(T, B), torch.zeros(B), b).policy.backward()
    assert logits.grad.abs().max() < grads[1].abs().max() / 50


def test_scaled_advantages_have_unit_spread_over_the_valid_transitions():
    advantages = torch.tensor([[3.0, 1.0], [5.0, 100.0]])
    mask = torch.tensor([[True, True], [True, False]])
    scaled = scaled_advantages(advantages, mask)
    valid = scaled[mask]
    torch.testing.assert_close(((valid - valid.mean()) ** 2).mean(), torch.tensor(1.0))
    torch.testing.assert_close(scaled / advantages, torch.full((2, 2), float(scaled[0, 0] / 3.0)))
    assert (scaled_advantages(torch.zeros(2, 2), mask) == 0).all()  # no division by zero
