"""Numerical properties of the gate mechanics (CORES.md section 6, items 1-7)."""

from __future__ import annotations

import math

import pytest
import torch

from cores import gates as G
from cores import make_core
from tests.stats import ks_critical, ks_uniform


def test_refine_at_one_half_is_the_identity():
    f = torch.rand(1000, dtype=torch.double)
    assert torch.equal(G.refine(f, torch.full_like(f, 0.5)), f)


def test_refine_bounds_and_monotonicity():
    f = torch.rand(10000, dtype=torch.double)
    r = torch.rand(10000, dtype=torch.double, requires_grad=True)
    g = G.refine(f, r)
    assert (f * f <= g + 1e-15).all() and (g <= 2 * f - f * f + 1e-15).all()
    assert ((g >= 0) & (g <= 1)).all()
    torch.testing.assert_close(G.refine(f, torch.zeros_like(f)), f * f)
    torch.testing.assert_close(G.refine(f, torch.ones_like(f)), 1 - (1 - f) ** 2)
    (dg_dr,) = torch.autograd.grad(g.sum(), r)
    torch.testing.assert_close(dg_dr, 2 * f * (1 - f))
    assert (dg_dr >= 0).all()


def test_refine_on_write_gate_is_refine_with_mirrored_r():
    f, r = torch.rand(1000, dtype=torch.double), torch.rand(1000, dtype=torch.double)
    torch.testing.assert_close(1 - G.refine(1 - f, r), G.refine(f, 1 - r))


@pytest.mark.parametrize("d", [8, 64, 256])
def test_ugi_bias_range_and_exact_inverse(d):
    b = G.ugi_bias(d).double()
    u = torch.sigmoid(b)
    assert (u >= 1 / d - 1e-6).all() and (u <= 1 - 1 / d + 1e-6).all()
    # b = logit(u) exactly: sigma(b) round-trips to within 1e-6.
    torch.testing.assert_close(torch.logit(u), b, atol=1e-6, rtol=0)


def test_ugi_is_uniform_over_seeds():
    d = 64
    samples = []
    for seed in range(40):
        torch.manual_seed(seed)
        samples.append(torch.sigmoid(G.ugi_bias(d).double()))
    u = torch.cat(samples).numpy()
    assert ks_uniform(u, 1 / d, 1 - 1 / d) < ks_critical(u.size)


@pytest.mark.parametrize("name", ["u_lstm", "ur_lstm", "u_gru", "ur_gru"])
def test_ugi_forget_activations_at_init_with_zero_weights(name):
    d = 32
    torch.manual_seed(0)
    core = make_core(name, 4, d)
    with torch.no_grad():
        for layer in core.layers:
            layer.weight_ih.zero_()
            layer.weight_hh.zero_()
            if hasattr(layer, "bias_hh"):
                layer.bias_hh.zero_()
    gates = core.gate_activations(torch.zeros(2, 4), core.initial_state(2))
    f = gates["forget"].detach()
    assert (f >= 1 / d - 1e-6).all() and (f <= 1 - 1 / d + 1e-6).all()
    assert ks_uniform(f[0].double().numpy(), 1 / d, 1 - 1 / d) < ks_critical(d)


def test_chrono_range_and_uniform_timescales():
    t_max = 100
    samples = []
    for seed in range(20):
        torch.manual_seed(seed)
        samples.append(G.chrono_bias(128, t_max).double())
    f = torch.sigmoid(torch.cat(samples))
    assert (f >= 0.5 - 1e-7).all() and (f <= 1 - 1 / t_max + 1e-7).all()
    timescale = (1 / (1 - f)).numpy()
    assert ks_uniform(timescale, 2, t_max) < ks_critical(timescale.size)


def test_chrono_lstm_ties_input_bias_and_writes_one_vector():
    torch.manual_seed(0)
    untied = make_core("c_lstm", 4, 16, tied_input=False, t_max=50)
    layer = untied.layers[0]
    sl = layer.layout.slices
    torch.testing.assert_close(layer.bias[sl["i"]], -layer.bias[sl["f"]])
    assert (torch.sigmoid(layer.bias[sl["f"]]) >= 0.5 - 1e-6).all()
    gru = make_core("c_gru", 4, 16, t_max=50).layers[0]
    z = gru.layout.slices["z"]
    assert torch.equal(gru.bias_hh[z], torch.zeros(16))
    assert (gru.bias_ih[z] >= 0).all()  # log(tau), tau >= 1


def test_frozen_gate_bias_is_an_untrained_offset():
    torch.manual_seed(0)
    core = make_core("u_lstm", 4, 16, freeze_gate_bias=True)
    layer = core.layers[0]
    f = layer.layout.slices["f"]
    assert torch.equal(layer.bias[f], torch.zeros(16))
    assert (layer.frozen_gate_bias[f] != 0).all()
    assert any(n.endswith("frozen_gate_bias") for n, _ in core.named_buffers())
    assert not any(n.endswith("frozen_gate_bias") for n, _ in core.named_parameters())


def test_cumax_properties():
    x = torch.randn(50, 17, dtype=torch.double)
    c = G.cumax(x)
    assert (c[:, 1:] >= c[:, :-1]).all()
    torch.testing.assert_close(c[:, -1], torch.ones(50, dtype=torch.double))
    d = 10
    torch.testing.assert_close(G.cumax(torch.zeros(d, dtype=torch.double)),
                               torch.arange(1, d + 1, dtype=torch.double) / d)


def test_master_gates_reduce_to_plain_gates():
    f, i = torch.rand(5, 8), torch.rand(5, 8)
    ones = torch.ones(5, 8)
    f_hat, i_hat = G.apply_master(f, i, ones, ones)
    torch.testing.assert_close(f_hat, f)
    torch.testing.assert_close(i_hat, i)


def test_master_gates_repeat_chunks():
    m_f, m_i = G.master_gates(torch.randn(3, 4), torch.randn(3, 4), chunk_size=2)
    assert m_f.shape == (3, 8)
    torch.testing.assert_close(m_f[:, 0::2], m_f[:, 1::2])
    assert (m_i[:, 1:] <= m_i[:, :-1] + 1e-7).all()  # 1 - cumax is non-increasing


def test_chrono_rejects_tiny_horizon():
    with pytest.raises(ValueError, match="t_max > 2"):
        G.chrono_bias(4, 2)
    assert math.isfinite(float(G.chrono_bias(4, 3).sum()))
