"""GRU family: torch parity and a NumPy UR-GRU reference (refine on the retain gate z)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cores import make_core

F, H, B, T = 7, 12, 4, 50


@pytest.mark.parametrize("num_layers", [1, 2])
def test_matches_torch_gru(num_layers):
    torch.manual_seed(0)
    reference = torch.nn.GRU(F, H, num_layers=num_layers)
    core = make_core("gru", F, H, num_layers=num_layers)
    core.load_torch_weights(reference)
    x = torch.randn(T, B, F)
    h0 = torch.randn(num_layers, B, H)
    y_ref, h_ref = reference(x, h0)
    y, state = core(x, type(core.initial_state(1))(h0.transpose(0, 1)))
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(state.h.transpose(0, 1), h_ref, atol=1e-5, rtol=0)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    torch.testing.assert_close(core.layers[0].weight_hh.grad, reference.weight_hh_l0.grad,
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(core.layers[0].bias_hh.grad, reference.bias_hh_l0.grad,
                               atol=1e-4, rtol=1e-4)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_ur_gru_matches_numpy_reference():
    torch.manual_seed(5)
    core = make_core("ur_gru", F, H).double()
    layer = core.layers[0]
    sl = layer.layout.slices
    Wi = {k: layer.weight_ih[s].detach().numpy() for k, s in sl.items()}
    Wh = {k: layer.weight_hh[s].detach().numpy() for k, s in sl.items()}
    bi = {k: layer.bias_ih[s].detach().numpy() for k, s in sl.items()}
    bh = {k: layer.bias_hh[s].detach().numpy() for k, s in sl.items()}
    x = torch.randn(6, B, F, dtype=torch.double)
    h = np.zeros((B, H))
    hs = []
    for t in range(6):
        xt = x[t].numpy()
        r = _sigmoid(xt @ Wi["r"].T + bi["r"] + h @ Wh["r"].T + bh["r"])
        z = _sigmoid(xt @ Wi["z"].T + bi["z"] + h @ Wh["z"].T + bh["z"])
        b_z = bi["z"] + bh["z"]
        q = _sigmoid(xt @ Wi["q"].T + bi["q"] + h @ Wh["q"].T + bh["q"] - b_z)
        g = z**2 + 2 * q * z * (1 - z)
        n = np.tanh(xt @ Wi["n"].T + bi["n"] + r * (h @ Wh["n"].T + bh["n"]))
        h = g * h + (1 - g) * n
        hs.append(h)
    y, _ = core(x, core.initial_state(B))
    np.testing.assert_allclose(y.detach().numpy(), np.stack(hs), atol=1e-12)
