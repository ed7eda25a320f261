"""V-trace and GAE against slow NumPy references written term by term from the papers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.vtrace import gae, vtrace


def reference_vtrace(log_rhos, discounts, rewards, values, bootstrap, rho_bar, pg_rho_bar, c_bar,
                     mask=None):
    """IMPALA eq. (1) summed explicitly: v_s = V(x_s) + sum_t (prod_{i<t} gamma_i c_i) delta_t."""
    T, B = values.shape
    rhos = np.exp(log_rhos)
    mask = np.ones((T, B)) if mask is None else mask
    rho_c = np.minimum(rho_bar, rhos)
    cs = np.minimum(c_bar, rhos) * mask
    values_tp1 = np.concatenate([values[1:], bootstrap[None]])
    deltas = rho_c * (rewards + discounts * values_tp1 - values) * mask
    vs = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total = values[s, b]
            for t in range(s, T):
                weight = 1.0
                for i in range(s, t):
                    weight *= discounts[i, b] * cs[i, b]
                total += weight * deltas[t, b]
            vs[s, b] = total
    vs_tp1 = np.concatenate([vs[1:], bootstrap[None]])
    pg = np.minimum(pg_rho_bar, rhos) * (rewards + discounts * vs_tp1 - values)
    return vs, pg


def random_inputs(T, B, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    log_rhos = rng.normal(0, scale, (T, B))  # rhos on both sides of the thresholds
    discounts = 0.9 * (rng.random((T, B)) > 0.2)  # per-step discounts, some terminations
    rewards = rng.normal(size=(T, B))
    values = rng.normal(size=(T, B))
    bootstrap = rng.normal(size=B)
    return log_rhos, discounts, rewards, values, bootstrap


@pytest.mark.parametrize("B", [1, 4])
@pytest.mark.parametrize(("rho_bar", "pg_rho_bar", "c_bar"), [(1.0, 1.0, 1.0), (2.0, 0.5, 0.7),
                                                               (0.3, 3.0, 1.5)])
def test_vtrace_matches_reference(B, rho_bar, pg_rho_bar, c_bar):
    inputs = random_inputs(7, B, seed=B, scale=1.5)
    log_rhos = inputs[0]
    assert (np.exp(log_rhos) > max(rho_bar, c_bar)).any() and (np.exp(log_rhos) < min(rho_bar, c_bar)).any()
    want_vs, want_pg = reference_vtrace(*inputs, rho_bar, pg_rho_bar, c_bar)
    got = vtrace(*(torch.tensor(a) for a in inputs), clip_rho_threshold=rho_bar,
                 clip_pg_rho_threshold=pg_rho_bar, clip_c_threshold=c_bar)
    np.testing.assert_allclose(got.vs.numpy(), want_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.pg_advantages.numpy(), want_pg, rtol=1e-10, atol=1e-10)


def test_vtrace_with_mask_matches_reference_and_bootstraps_masked_steps():
    inputs = random_inputs(6, 3, seed=9)
    mask = np.ones((6, 3))
    mask[2, 0] = mask[4, 2] = 0
    want_vs, want_pg = reference_vtrace(*inputs, 1.0, 1.0, 1.0, mask=mask)
    got = vtrace(*(torch.tensor(a) for a in inputs), mask=torch.tensor(mask))
    np.testing.assert_allclose(got.vs.numpy(), want_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.pg_advantages.numpy(), want_pg, rtol=1e-10, atol=1e-10)
    values = inputs[3]
    assert got.vs[2, 0].item() == pytest.approx(values[2, 0])  # v = V at a masked step


def test_on_policy_vtrace_is_the_discounted_return():
    T, B = 5, 2
    rewards = torch.rand(T, B, dtype=torch.double)
    discounts = torch.full((T, B), 0.9, dtype=torch.double)
    values = torch.rand(T, B, dtype=torch.double)
    bootstrap = torch.rand(B, dtype=torch.double)
    got = vtrace(torch.zeros(T, B, dtype=torch.double), discounts, rewards, values, bootstrap)
    ret, want = bootstrap.clone(), torch.empty(T, B, dtype=torch.double)
    for t in range(T - 1, -1, -1):
        ret = rewards[t] + 0.9 * ret
        want[t] = ret
    torch.testing.assert_close(got.vs, want)


def test_gae_with_lambda_one_equals_on_policy_vtrace_and_lambda_zero_is_td():
    inputs = [torch.tensor(a) for a in random_inputs(8, 3, seed=2)]
    _, discounts, rewards, values, bootstrap = inputs
    on_policy = vtrace(torch.zeros_like(values), discounts, rewards, values, bootstrap)
    one = gae(discounts, rewards, values, bootstrap, lambda_=1.0)
    torch.testing.assert_close(one.vs, on_policy.vs)
    zero = gae(discounts, rewards, values, bootstrap, lambda_=0.0)
    values_tp1 = torch.cat([values[1:], bootstrap[None]])
    torch.testing.assert_close(zero.pg_advantages, rewards + discounts * values_tp1 - values)


def test_vtrace_lambda_matches_gae_on_policy():
    inputs = [torch.tensor(a) for a in random_inputs(8, 3, seed=4)]
    _, discounts, rewards, values, bootstrap = inputs
    for lam in (0.0, 0.5, 0.95):
        on_policy = vtrace(torch.zeros_like(values), discounts, rewards, values, bootstrap, lambda_=lam)
        torch.testing.assert_close(on_policy.vs, gae(discounts, rewards, values, bootstrap, lam).vs)
