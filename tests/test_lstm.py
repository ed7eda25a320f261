"""LSTM family: torch parity, tied-input reduction, refine identity, and a NumPy UR-LSTM reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cores import make_core

F, H, B, T = 7, 12, 4, 50


@pytest.mark.parametrize("num_layers", [1, 2])
def test_matches_torch_lstm(num_layers):
    torch.manual_seed(0)
    reference = torch.nn.LSTM(F, H, num_layers=num_layers)
    core = make_core("lstm", F, H, num_layers=num_layers)
    core.load_torch_weights(reference)
    x = torch.randn(T, B, F)
    h0 = torch.randn(num_layers, B, H)
    c0 = torch.randn(num_layers, B, H)
    y_ref, (h_ref, c_ref) = reference(x, (h0, c0))
    y, state = core(x, type(core.initial_state(1))(h0.transpose(0, 1), c0.transpose(0, 1)))
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(state.h.transpose(0, 1), h_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(state.c.transpose(0, 1), c_ref, atol=1e-5, rtol=0)
    # Gradients agree too (the fused backward against torch's).
    y.square().sum().backward()
    y_ref.square().sum().backward()
    torch.testing.assert_close(core.layers[0].weight_hh.grad[: H],  # block i, same row order
                               reference.weight_hh_l0.grad[: H], atol=1e-4, rtol=1e-4)


def test_tied_input_equals_untied_with_input_gate_forced_to_one_minus_f():
    torch.manual_seed(0)
    tied = make_core("lstm", F, H, tied_input=True).double()
    untied = make_core("lstm", F, H, tied_input=False).double()
    t, u = tied.layers[0], untied.layers[0]
    with torch.no_grad():
        for block in ("f", "o", "u"):
            for name in ("weight_ih", "weight_hh", "bias"):
                getattr(u, name)[u.layout.slices[block]] = getattr(t, name)[t.layout.slices[block]]
        for name in ("weight_ih", "weight_hh", "bias"):  # sigmoid(-P_f) = 1 - sigmoid(P_f)
            getattr(u, name)[u.layout.slices["i"]] = -getattr(t, name)[t.layout.slices["f"]]
    x = torch.randn(10, B, F, dtype=torch.double)
    torch.testing.assert_close(tied(x, tied.initial_state(B))[0],
                               untied(x, untied.initial_state(B))[0])


def test_ur_lstm_with_neutral_refine_gate_equals_u_lstm():
    torch.manual_seed(0)
    ur = make_core("ur_lstm", F, H, refine_bias="zero").double()
    u = make_core("u_lstm", F, H).double()
    a, b = ur.layers[0], u.layers[0]
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias"):
            getattr(a, name)[a.layout.slices["r"]] = 0.0  # r = 1/2, so g = f
            for block in ("f", "o", "u"):
                getattr(b, name)[b.layout.slices[block]] = getattr(a, name)[a.layout.slices[block]]
    x = torch.randn(10, B, F, dtype=torch.double)
    torch.testing.assert_close(ur(x, ur.initial_state(B))[0], u(x, u.initial_state(B))[0])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_ur_lstm_matches_numpy_reference():
    """CORES.md 2.3 written out in NumPy, including r = sigmoid(P_r - b_f)."""
    torch.manual_seed(3)
    core = make_core("ur_lstm", F, H).double()
    layer = core.layers[0]
    W = {k: layer.weight_ih[s].detach().numpy() for k, s in layer.layout.slices.items()}
    U = {k: layer.weight_hh[s].detach().numpy() for k, s in layer.layout.slices.items()}
    b = {k: layer.bias[s].detach().numpy() for k, s in layer.layout.slices.items()}
    x = torch.randn(6, B, F, dtype=torch.double)
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hs, gs = [], []
    for t in range(6):
        xt = x[t].numpy()

        def pre(k, xt=xt, h=h):
            return xt @ W[k].T + h @ U[k].T + b[k]

        f = _sigmoid(pre("f"))
        r = _sigmoid(pre("r") - b["f"])
        g = 2 * r * f + (1 - 2 * r) * f**2
        u = np.tanh(pre("u"))
        o = _sigmoid(pre("o"))
        gs.append(g)
        c = g * c + (1 - g) * u
        h = o * np.tanh(c)
        hs.append(h)
    y, state = core(x, core.initial_state(B))
    np.testing.assert_allclose(y.detach().numpy(), np.stack(hs), atol=1e-12)
    np.testing.assert_allclose(state.c[:, 0].detach().numpy(), c, atol=1e-12)
    gates = core.gate_activations(x[5], type(state)(torch.from_numpy(hs[4])[:, None],
                                                     torch.zeros(B, 1, H, dtype=torch.double)))
    np.testing.assert_allclose(gates["effective"].detach().numpy(), gs[5], atol=1e-12)


def test_ur_lstm_has_the_parameter_count_of_an_lstm():
    n = sum(p.numel() for p in make_core("ur_lstm", F, H).parameters())
    assert n == sum(p.numel() for p in torch.nn.LSTM(F, H, bias=False).parameters()) + 4 * H


def test_inference_cache_follows_parameter_updates():
    torch.manual_seed(0)
    core = make_core("ur_lstm", F, H)
    x, state = torch.randn(B, F), core.initial_state(B)
    with torch.no_grad():
        before, _ = core.step(x, state)
        core.layers[0].bias.add_(1.0)  # in place, like an optimiser step
        after, _ = core.step(x, state)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, core.step(x, state)[0])  # with grad on: rebuilt
