"""Scan-trainable cores (min_gru, min_lstm, ur_min_gru, ur_min_lstm, lru) and the scan behind them.

The registry-wide contract suite (tests/test_cores.py) covers them at T=8 in one chunk; these tests add
many chunks, long sequences with retain gates pinned near 1 and near 0, stacks, gates and inits.
"""

from __future__ import annotations

import math

import pytest
import torch

import cores.gates as G
import cores.scan as S
from cores import linear_scan, make_core, map_state, rebuild_state
from tests.test_cores import assert_states_close, loop_steps

SCAN_CORES = ["min_gru", "min_lstm", "ur_min_gru", "ur_min_lstm", "lru"]
F, H, B = 5, 8, 3


def build(name: str, dtype=torch.double, **options):
    torch.manual_seed(0)
    return make_core(name, F, H, **options).to(dtype)


def loop_scan(a, b, h0, reset):
    """``h_t = a_t h_{t-1} + b_t`` one step at a time, the state zeroed where ``reset``."""
    a = a.expand_as(b)
    h, out = h0, []
    for t in range(b.shape[0]):
        h = torch.where(reset[t].view((-1,) + (1,) * (b.dim() - 2)), torch.zeros_like(h), h)
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def assert_matches_step_loop(core, x, state, is_first):
    """``forward`` equals ``loop_steps`` (the contract's reference) to 1e-10: outputs and final state;
    returns ``forward``'s ``(y, final_state)``."""
    y, final = core(x, state, is_first)
    y_ref, final_ref = loop_steps(core, x, state, is_first)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-10)
    assert_states_close(final, final_ref, atol=1e-10, rtol=1e-10)
    return y, final


def random_inputs(T, dtype=torch.double, reset_rate=0.25, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, F, generator=g, dtype=dtype)
    is_first = torch.rand(T, B, generator=g) < reset_rate
    return x, is_first


def scan_operands(T, complex_, seed=0, width=2):
    g = torch.Generator().manual_seed(seed)
    shape = (T, B, width)
    if complex_:
        radius = torch.rand(shape, generator=g, dtype=torch.double)
        a = torch.polar(radius, torch.rand(shape, generator=g, dtype=torch.double) * 6.0)
        b = torch.complex(torch.randn(shape, generator=g, dtype=torch.double),
                          torch.randn(shape, generator=g, dtype=torch.double))
        h0 = torch.complex(torch.randn(B, width, generator=g, dtype=torch.double),
                           torch.randn(B, width, generator=g, dtype=torch.double))
    else:
        a = torch.rand(shape, generator=g, dtype=torch.double)
        b = torch.randn(shape, generator=g, dtype=torch.double)
        h0 = torch.randn(B, width, generator=g, dtype=torch.double)
    reset = torch.rand(T, B, generator=g) < 0.1
    return a, b, h0, reset


# --- the scan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize(("T", "chunk"), [(1, None), (7, None), (64, None), (200, None), (37, 4),
                                          (4100, 4), (129, 2)])
def test_scan_equals_loop(T, chunk, complex_):
    a, b, h0, reset = scan_operands(T, complex_)
    expected = loop_scan(a, b, h0, reset)
    torch.testing.assert_close(linear_scan(a, b, h0, reset, chunk), expected, atol=1e-12, rtol=1e-12)
    no_reset = torch.zeros_like(reset)
    torch.testing.assert_close(linear_scan(a, b, h0, None, chunk), loop_scan(a, b, h0, no_reset),
                               atol=1e-12, rtol=1e-12)


def test_scan_broadcasts_a_constant_gate():
    a, b, h0, reset = scan_operands(50, complex_=True)
    lam = a[0, 0]  # [width], shared by every step and row
    torch.testing.assert_close(linear_scan(lam, b, h0, reset, 8), loop_scan(lam, b, h0, reset))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_scan_gradcheck_over_chunks(complex_):
    a, b, h0, reset = scan_operands(11, complex_)
    reset[0, 0] = reset[5, 1] = True
    args = tuple(t.clone().requires_grad_() for t in (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, reset, 4), args)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize(("T", "chunk"), [(37, 4), (2, 2), (1, None), (200, None), (150, 8), (1030, 4)])
def test_scan_gradients_equal_loop_gradients(T, chunk, complex_):
    """The reverse scan of the backward: remainders, recursion over chunk ends, resets, complex."""
    a, b, h0, reset = scan_operands(T, complex_)
    reset[0, 0] = True
    weights = scan_operands(T, complex_, seed=1)[1]
    grads = []
    for fn in (lambda *t: linear_scan(*t, reset, chunk), lambda *t: loop_scan(*t, reset)):
        args = [t.clone().requires_grad_() for t in (a, b, h0)]
        grads.append(torch.autograd.grad((fn(*args) * weights).real.sum(), args))
    for u, v in zip(*grads, strict=True):
        torch.testing.assert_close(u, v, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("operands", ["broadcast_complex", "real_gate_complex_drive", "float32_gate"])
def test_scan_gradients_of_broadcast_and_mixed_operands(operands):
    """Gradients reach a gate shared over steps and rows (the LRU's lambda) and keep each input's dtype."""
    a, b, h0, reset = scan_operands(45, complex_=True)
    if operands == "broadcast_complex":
        a = a[0, 0]  # [width]
    elif operands == "real_gate_complex_drive":
        a = a.abs()
    else:
        a, b, h0 = a.abs().float(), b.real, h0.real
    weights = scan_operands(45, complex_=b.is_complex(), seed=1)[1]
    grads = []
    for fn in (lambda *t: linear_scan(*t, reset, 4), lambda *t: loop_scan(*t, reset)):
        args = [t.clone().requires_grad_() for t in (a, b, h0)]
        out = fn(*args)
        grads.append(torch.autograd.grad((out * weights).real.sum(), args))
    for u, v, arg in zip(*grads, (a, b, h0), strict=True):
        assert u.dtype == arg.dtype and u.shape == arg.shape
        torch.testing.assert_close(u, v, atol=1e-6 if operands == "float32_gate" else 1e-12, rtol=1e-6)


def test_scan_discards_a_non_finite_state_at_a_reset():
    a, b, h0, _ = scan_operands(40, complex_=False)
    h0[:2] = math.nan
    reset = torch.zeros(40, B, dtype=torch.bool)
    reset[0, 0] = reset[13, 1] = True  # row 1 runs on its NaN state for 13 steps, into a later chunk
    args = [t.clone().requires_grad_() for t in (a, b, h0)]
    h = linear_scan(*args, reset, 4)
    assert torch.isfinite(h[:, 0]).all() and torch.isfinite(h[13:, 1]).all()
    assert torch.isnan(h[:13, 1]).all()
    grad_a, grad_b, grad_h0 = torch.autograd.grad(h[:, 0].sum() + h[13:, 1].sum(), args)
    # Only the gates that multiplied the NaN state (row 1 before its reset) see it, as in a step loop.
    used_nan = torch.zeros_like(grad_a, dtype=torch.bool)
    used_nan[:13, 1] = True
    assert torch.isfinite(grad_a[~used_nan]).all()
    assert torch.isfinite(grad_b).all() and torch.equal(grad_b[:13, 1], torch.zeros_like(grad_b[:13, 1]))
    assert torch.equal(grad_h0[:2], torch.zeros_like(grad_h0[:2]))


@pytest.mark.parametrize("gate", [1.0 - 1e-7, 1.0, 1e-30, 0.0])
def test_scan_float32_is_stable_with_extreme_gates(gate):
    T = 4096
    b = torch.randn(T, B, 4)
    a = torch.full_like(b, gate).requires_grad_()
    h0 = torch.randn(B, 4)
    h = linear_scan(a, b, h0)
    reference = loop_scan(a.detach().double(), b.double(), h0.double(), torch.zeros(T, B, dtype=torch.bool))
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h.double(), reference, atol=2e-3 * (1 + reference.abs().max()), rtol=0)
    (grad,) = torch.autograd.grad(h.square().mean(), a)
    assert torch.isfinite(grad).all()


# --- the cores ---------------------------------------------------------------------------------------


def pin_retain_gates(core, sign: float) -> None:
    """Retain-gate pre-activations at ``sign * 20`` (|lambda| = exp(-e^-20) or exp(-20) for the LRU)."""
    with torch.no_grad():
        for block in core.blocks:
            layer = block.layer
            if hasattr(layer, "nu_log"):
                layer.nu_log.fill_(-20.0 if sign > 0 else math.log(20.0))
                continue
            layer.bias[layer.slices["f"]] = 20.0 * sign
            if layer.normalized:
                layer.bias[layer.slices["i"]] = -20.0 * sign


@pytest.mark.parametrize("regime", ["init", "near_one", "near_zero"])
@pytest.mark.parametrize("name", SCAN_CORES)
def test_long_forward_equals_step_loop(name, regime):
    core = build(name)
    if regime != "init":
        pin_retain_gates(core, 1.0 if regime == "near_one" else -1.0)
    T = 2048
    x, is_first = random_inputs(T, reset_rate=1 / 300)
    state = map_state(torch.randn_like, core.initial_state(B))
    gates = core.gate_activations(x[0], state)
    retain = gates.get("effective", gates["forget"])
    if regime == "near_one":
        assert (retain > 1 - 1e-7).all()
    elif regime == "near_zero":
        assert (retain < 1e-7).all()
    with torch.no_grad():
        assert_matches_step_loop(core, x, state, is_first)


@pytest.mark.parametrize("regime", ["near_one", "near_zero"])
@pytest.mark.parametrize("name", SCAN_CORES)
def test_float32_long_sequence_has_finite_gradients(name, regime):
    core = build(name, dtype=torch.float32)
    pin_retain_gates(core, 1.0 if regime == "near_one" else -1.0)
    x, is_first = random_inputs(2048, dtype=torch.float32, reset_rate=1 / 500)
    y, final = core(x, core.initial_state(B), is_first)
    (y.square().mean() + sum(s.square().mean() for s in final)).backward()
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(p.grad).all() for p in core.parameters() if p.grad is not None)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("name", SCAN_CORES)
def test_gradcheck_across_chunks(name, num_layers, monkeypatch):
    monkeypatch.setattr(S, "CHUNK_SIZE", 4)
    core = build(name, num_layers=num_layers)
    T = 11
    x = torch.randn(T, 2, F, dtype=torch.double, requires_grad=True)
    is_first = torch.zeros(T, 2, dtype=torch.bool)
    is_first[6, 0] = is_first[1, 1] = True
    state = tuple(s.requires_grad_() for s in map_state(torch.randn_like, core.initial_state(2)))
    like = core.initial_state(1)

    def run(x, *leaves):
        y, final = core(x, rebuild_state(like, list(leaves)), is_first)
        return (y, *final)

    y, *final = run(x, *state)
    y_ref, final_ref = loop_steps(core, x, rebuild_state(like, list(state)), is_first)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-10)
    assert torch.autograd.gradcheck(run, (x, *state))
    params = [p for p in core.parameters() if p.requires_grad]
    # fast_mode checks random projections of the Jacobian: every parameter, at a fraction of the cost.
    assert torch.autograd.gradcheck(lambda *_: run(x, *state), params, fast_mode=True)


@pytest.mark.parametrize("name", SCAN_CORES)
def test_two_layers_work(name, monkeypatch):
    monkeypatch.setattr(S, "CHUNK_SIZE", 8)
    core = build(name, num_layers=2)
    assert core.num_layers == 2 and len(core.blocks) == 2
    state = core.initial_state(B)
    assert all(leaf.shape == (B, 2, H) for leaf in state)
    x, is_first = random_inputs(50)
    start = map_state(torch.randn_like, state)
    y, final = assert_matches_step_loop(core, x, start, is_first)
    assert y.shape == (50, B, H)
    # The second layer's state moves too: both layers recur.
    assert all((leaf[:, 1] != 0).all() for leaf in final)


@pytest.mark.parametrize("name", SCAN_CORES)
def test_gradients_equal_step_loop_gradients(name, monkeypatch):
    """Forward and gradients (inputs, start state, every parameter) of the scan against autograd
    through the step loop, over many chunks, a remainder and the recursion over chunk ends."""
    monkeypatch.setattr(S, "CHUNK_SIZE", 8)
    core = build(name, num_layers=2)
    x, is_first = random_inputs(150, reset_rate=0.02)
    state = map_state(torch.randn_like, core.initial_state(B))
    weights = torch.randn(150, B, H, dtype=torch.double)
    results = []
    for run in (lambda x, s: core(x, s, is_first), lambda x, s: loop_steps(core, x, s, is_first)):
        xs = x.clone().requires_grad_()
        leaves = [leaf.clone().requires_grad_() for leaf in state]
        y, final = run(xs, rebuild_state(state, leaves))
        loss = (y * weights).sum() + sum(leaf.sin().sum() for leaf in final)
        params = list(core.parameters())
        results.append((y, *torch.autograd.grad(loss, [xs, *leaves, *params])))
    for u, v in zip(*results, strict=True):
        torch.testing.assert_close(u, v, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(("name", "options"), [("ur_min_lstm", {"candidate": "tanh"}),
                                               ("min_gru", {"candidate": "g"}),
                                               ("ur_min_gru", {"refine_bias": "zero", "mlp_expansion": 0}),
                                               ("lru", {"mlp_expansion": 0, "state_size": 3})])
def test_gradcheck_of_options(name, options, monkeypatch):
    monkeypatch.setattr(S, "CHUNK_SIZE", 4)
    core = build(name, **options)
    x = torch.randn(11, 2, F, dtype=torch.double, requires_grad=True)
    is_first = torch.zeros(11, 2, dtype=torch.bool)
    is_first[5, 1] = True
    state = tuple(s.requires_grad_() for s in map_state(torch.randn_like, core.initial_state(2)))
    like = core.initial_state(1)

    def run(x, *leaves):
        y, final = core(x, rebuild_state(like, list(leaves)), is_first)
        return (y, *final)

    assert torch.autograd.gradcheck(run, (x, *state))
    params = [p for p in core.parameters() if p.requires_grad]
    assert torch.autograd.gradcheck(lambda *_: run(x, *state), params, fast_mode=True)


@pytest.mark.parametrize("name", SCAN_CORES)
def test_no_mlp_blocks(name):
    """``mlp_expansion=0``: blocks of ``u + recurrence(LN(u))`` only, still equal to the step loop."""
    core = build(name, num_layers=2, mlp_expansion=0)
    assert all(block.mlp is None and block.norm2 is None for block in core.blocks)
    full = build(name, num_layers=2)
    assert sum(p.numel() for p in core.parameters()) < sum(p.numel() for p in full.parameters())
    x, is_first = random_inputs(40)
    state = map_state(torch.randn_like, core.initial_state(B))
    assert_matches_step_loop(core, x, state, is_first)


@pytest.mark.parametrize("candidate", ["tanh", "g"])
def test_candidate_activations(candidate):
    core = build("ur_min_lstm", candidate=candidate)
    x, is_first = random_inputs(30)
    state = map_state(torch.randn_like, core.initial_state(B))
    y, _ = core(x, state, is_first)
    torch.testing.assert_close(y, loop_steps(core, x, state, is_first)[0], atol=1e-10, rtol=1e-10)


def test_g_activation_is_continuous_and_positive():
    from cores.min_rnn import g_activation

    x = torch.linspace(-30, 30, 6001, dtype=torch.double)
    y = g_activation(x)
    assert (y > 0).all() and (y[1:] >= y[:-1]).all()
    torch.testing.assert_close(g_activation(torch.tensor([-1e-12, 0.0], dtype=torch.double)),
                               torch.tensor([0.5, 0.5], dtype=torch.double))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("name", SCAN_CORES)
def test_gate_activations_shapes_and_ranges(name, num_layers):
    core = build(name, num_layers=num_layers)
    x = torch.randn(B, F, dtype=torch.double)
    state = map_state(torch.randn_like, core.initial_state(B))
    gates = core.gate_activations(x, state)
    expected = {"forget", "refine", "effective"} if name.startswith("ur_") else {"forget"}
    assert set(gates) == expected
    for value in gates.values():
        assert value.shape == (B, num_layers * H)
        assert ((value >= 0) & (value <= 1)).all()
    if "refine" in gates:
        f = gates["forget"]
        g = gates["effective"]
        assert (g >= f * f - 1e-12).all() and (g <= 2 * f - f * f + 1e-12).all()
    if name == "lru":
        assert (gates["forget"] >= 0.9 - 1e-12).all() and (gates["forget"] <= 0.999 + 1e-12).all()
        assert torch.equal(gates["forget"][0], gates["forget"][1])  # independent of input and state
    # The first layer's gates follow from its own projection of the normed input.
    layer, v = core.blocks[0].layer, core.blocks[0].norm1(core.input_proj(x))
    if name in ("min_lstm", "ur_min_lstm"):
        p = layer._project(v)
        f, i = torch.sigmoid(p[:, layer.slices["f"]]), torch.sigmoid(p[:, layer.slices["i"]])
        torch.testing.assert_close(gates["forget"][:, :H], f / (f + i))


@pytest.mark.parametrize("name", ["ur_min_gru", "ur_min_lstm"])
def test_ugi_puts_the_retain_bias_where_gates_py_says(name, monkeypatch):
    value = torch.linspace(-3.0, 3.0, H)
    monkeypatch.setattr(G, "ugi_bias", lambda hidden_size, generator=None: value.clone())
    core = make_core(name, F, H, num_layers=2)
    for block in core.blocks:
        layer = block.layer
        assert torch.equal(layer.bias.detach()[layer.slices["f"]], value)
        if layer.normalized:
            assert torch.equal(layer.bias.detach()[layer.slices["i"]], -value)
    # With zero recurrence weights the retain gate starts at sigmoid(b_f) (minLSTM: f / (f + i) too)
    # and the refine gate at sigmoid(b_r - b_f).
    layer = core.blocks[0].layer
    with torch.no_grad():
        layer.weight.zero_()
    gates = core.gate_activations(torch.randn(B, F), core.initial_state(B))
    torch.testing.assert_close(gates["forget"][:, :H], torch.sigmoid(value).expand(B, H))
    b = layer.bias.detach()
    torch.testing.assert_close(gates["refine"][:, :H],
                               torch.sigmoid(b[layer.slices["r"]] - value).expand(B, H))


@pytest.mark.parametrize("name", ["ur_min_gru", "ur_min_lstm"])
def test_ugi_range_at_init(name):
    torch.manual_seed(3)
    d = 64
    layer = make_core(name, F, d).blocks[0].layer
    u = torch.sigmoid(layer.bias.detach()[layer.slices["f"]].double())
    assert (u >= 1 / d - 1e-6).all() and (u <= 1 - 1 / d + 1e-6).all()
    assert u.min() < 0.2 and u.max() > 0.8


def test_min_gru_standard_init_and_refine_bias_zero():
    core = make_core("ur_min_gru", F, H, refine_bias="zero")
    layer = core.blocks[0].layer
    torch.testing.assert_close(layer.effective_bias(), layer.bias)
    plain = make_core("min_gru", F, H, forget_bias=2.0).blocks[0].layer
    assert (plain.bias.detach()[plain.slices["f"]] > 2.0 - 1 / math.sqrt(H) - 1e-6).all()


def test_lru_ring_initialisation():
    torch.manual_seed(0)
    core = make_core("lru", F, 256, r_min=0.5, r_max=0.99, max_phase=math.pi / 4)
    layer = core.blocks[0].layer
    lam = layer._lambda().detach().to(torch.complex128)
    radius, phase = lam.abs(), lam.angle()
    assert (radius >= 0.5 - 1e-6).all() and (radius <= 0.99 + 1e-6).all()
    assert (phase >= 0).all() and (phase <= math.pi / 4 + 1e-6).all()
    # Uniform on the ring's area: |lambda|^2 is uniform, so its mean is the middle of [r_min^2, r_max^2].
    assert abs(radius.square().mean().item() - (0.25 + 0.99**2) / 2) < 0.05
    torch.testing.assert_close(layer.gamma_log.exp().double(), (1 - radius.square()).sqrt(),
                               atol=1e-5, rtol=1e-5)
    assert core.initial_state(2).re.shape == (2, 1, 256)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("min_gru", {"gate_init": "ordered"}, r"unknown gate_init 'ordered'; expected one of standard"),
        ("min_lstm", {"aux_gate": "master"}, r"unknown aux_gate 'master'"),
        ("min_gru", {"candidate": "relu"}, r"unknown candidate 'relu'"),
        ("min_lstm", {"gate_init": "chrono"}, r"needs t_max"),
        ("ur_min_gru", {"mlp_expansion": -1}, r"mlp_expansion must be a non-negative integer"),
        ("lru", {"r_max": 1.0}, r"r_max < 1"),
        ("lru", {"max_phase": 0.0}, r"max_phase must be positive"),
        ("lru", {"state_size": 0}, r"state_size must be a positive integer"),
    ],
)
def test_bad_options_fail_at_construction(name, options, message):
    with pytest.raises(ValueError, match=message):
        make_core(name, F, H, **options)


def test_lru_state_size_differs_from_hidden_size():
    core = build("lru", state_size=5, num_layers=2)
    state = map_state(torch.randn_like, core.initial_state(B))
    assert state.re.shape == (B, 2, 5)
    x, is_first = random_inputs(20)
    y, _ = core(x, state, is_first)
    torch.testing.assert_close(y, loop_steps(core, x, state, is_first)[0], atol=1e-10, rtol=1e-10)
    assert core.gate_activations(x[0], state)["forget"].shape == (B, 10)


def test_chrono_min_lstm_starts_at_sigmoid_of_the_forget_bias():
    core = make_core("min_lstm", F, H, gate_init="chrono", t_max=50)
    layer = core.blocks[0].layer
    with torch.no_grad():
        layer.weight.zero_()
    f = core.gate_activations(torch.randn(B, F), core.initial_state(B))["forget"]
    torch.testing.assert_close(f, torch.sigmoid(layer.bias.detach()[layer.slices["f"]]).expand(B, H))
    assert (f >= 0.5 - 1e-6).all()
