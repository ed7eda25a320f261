"""GORU: orthogonality under training, norm preservation, modReLU, the official init."""

from __future__ import annotations

import math

import pytest
import torch

from cores import make_core, modrelu
from cores.goru import givens_matrix

F, H, B = 5, 16, 4


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder", "givens"])
def test_recurrent_matrix_stays_orthogonal_after_training(orthogonal_map):
    torch.manual_seed(0)
    core = make_core("goru", F, H, orthogonal_map=orthogonal_map)
    optimiser = torch.optim.Adam(core.parameters(), lr=1e-2)
    x = torch.randn(10, B, F)
    for _ in range(100):
        y, _ = core(x, core.initial_state(B))
        loss = (y - 0.5).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    q = core.recurrent_matrix().detach()
    assert (q.T @ q - torch.eye(H)).abs().max() < 1e-5
    h = torch.randn(B, H)
    torch.testing.assert_close((h @ q.T).norm(dim=1), h.norm(dim=1))


def test_givens_matrix_is_orthogonal_and_needs_even_size():
    q = givens_matrix(torch.rand(4, 5, dtype=torch.double) * 6, 10)
    torch.testing.assert_close(q.T @ q, torch.eye(10, dtype=torch.double))


def test_pure_rotation_preserves_the_norm_over_1000_steps():
    torch.manual_seed(0)
    core = make_core("goru", F, H).double()
    with torch.no_grad():
        core.weight_ih.zero_()
        core.weight_hh.zero_()
        core.bias[:H] = 1e4  # r = 1
        core.bias[H:] = -1e4  # z = 0
        core.modrelu_bias.zero_()  # modReLU(a, 0) = a
        # Re-assign Q in double precision (it was made orthogonal in float32).
        core.orthogonal.weight = torch.linalg.qr(torch.randn(H, H, dtype=torch.double))[0]
    h = torch.randn(B, H, dtype=torch.double)
    y, state = core(torch.zeros(1000, B, F, dtype=torch.double), (h,))
    torch.testing.assert_close(y.norm(dim=-1), h.norm(dim=-1).expand(1000, B))
    q = core.recurrent_matrix()
    torch.testing.assert_close(y[0], h @ q.T)


def test_modrelu():
    a = torch.randn(1000, dtype=torch.double)
    for b in (-0.5, 0.0, 0.3):
        bias = torch.full_like(a, b)
        torch.testing.assert_close(modrelu(-a, bias), -modrelu(a, bias))
    dead = modrelu(a, torch.full_like(a, -0.5))
    assert (dead[a.abs() < 0.5] == 0).all()
    torch.testing.assert_close(modrelu(a, torch.full_like(a, 0.3)), a + 0.3 * a.sign())


def test_official_initialisation():
    torch.manual_seed(0)
    core = make_core("goru", F, H)
    gates = core.gate_activations(torch.zeros(B, F), core.initial_state(B))
    torch.testing.assert_close(gates["reset"], torch.full((B, H), 1 / (1 + math.exp(-2.0))))
    assert core.weight_ih.abs().max() <= 0.01 and core.weight_hh.abs().max() <= 0.01
    assert torch.allclose(core.modrelu_bias, torch.full((H,), 0.01))
    assert core.bias[H:].abs().max() <= math.sqrt(3 / H)


def test_orthogonal_matrix_built_once_per_unroll_and_cached_for_inference(monkeypatch):
    core = make_core("goru", F, H)
    calls = []
    original = type(core).recurrent_matrix
    monkeypatch.setattr(type(core), "recurrent_matrix",
                        lambda self: calls.append(1) or original(self))
    core(torch.randn(12, B, F), core.initial_state(B))
    assert len(calls) == 1
    calls.clear()
    state = core.initial_state(B)
    with torch.no_grad():
        for _ in range(5):
            _, state = core.step(torch.randn(B, F), state)
        assert len(calls) == 1
        core.bias.add_(0.1)  # any parameter change invalidates the cache
        core.step(torch.randn(B, F), state)
    assert len(calls) == 2
