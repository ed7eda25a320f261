"""The core contract, checked for every registered core and a user core loaded by import path."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from cores import Core, available_cores, make_core, map_state, rebuild_state, select_state, with_defaults

F, H, B, T = 5, 6, 3, 8


class EMACore(Core):
    """A user core: an exponential moving average of a linear map, to test ``module:Class`` loading."""

    def __init__(self, input_size: int, hidden_size: int, *, decay: float = 0.9):
        super().__init__()
        self.input_size, self.output_size, self.decay = input_size, hidden_size, decay
        self.proj = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size, device=None):
        return (torch.zeros(batch_size, self.output_size, device=device,
                            dtype=self.proj.weight.dtype),)

    def step(self, x, state):
        h = self.decay * state[0] + (1 - self.decay) * torch.tanh(self.proj(x))
        return h, (h,)


USER_CORE = f"{__name__}:EMACore"
CASES = [(name, {}) for name in available_cores()] + [
    ("lstm", {"num_layers": 2}),
    ("ur_lstm", {"num_layers": 2}),
    ("ur_gru", {"num_layers": 2}),
    ("on_lstm", {"chunk_size": 2}),
    ("ur_lstm", {"fused": False}),
    ("ur_gru", {"fused": False}),
    ("lstm", {"aux_gate": "refine", "tied_input": False}),
    ("c_lstm", {"tied_input": False, "t_max": 20}),
    ("goru", {"orthogonal_map": "givens"}),
    ("goru", {"orthogonal_map": "householder"}),
    (USER_CORE, {}),
]
IDS = [name.split(":")[-1] + "".join(f"-{k}={v}" for k, v in opts.items()) for name, opts in CASES]


def build(name: str, options: dict) -> Core:
    torch.manual_seed(0)
    return make_core(name, F, H, **options).double()


def random_state(core: Core, batch: int) -> tuple:
    return map_state(torch.randn_like, core.initial_state(batch))


def loop_steps(core: Core, x: Tensor, state, is_first: Tensor):
    """The reference semantics: swap in the initial state where is_first, then step."""
    outputs = []
    for t in range(x.shape[0]):
        state = select_state(is_first[t], core.initial_state(x.shape[1]), state)
        y, state = core.step(x[t], state)
        outputs.append(y)
    return torch.stack(outputs), state


def assert_states_close(a, b, **kw):
    assert type(a) is type(b) and len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, **kw)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
class TestContract:
    def test_sizes_and_initial_state(self, name, options):
        core = build(name, options)
        assert core.input_size == F and core.output_size == H
        state = core.initial_state(B)
        assert isinstance(state, tuple)
        for leaf in state:
            assert leaf.shape[0] == B and not leaf.any()

    def test_forward_equals_step_loop(self, name, options):
        core = build(name, options)
        x = torch.randn(T, B, F, dtype=torch.double)
        is_first = torch.rand(T, B) < 0.25
        state = random_state(core, B)
        y, final = core(x, state, is_first)
        y_ref, final_ref = loop_steps(core, x, state, is_first)
        assert y.shape == (T, B, H)
        torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-10)
        assert_states_close(final, final_ref, atol=1e-10, rtol=1e-10)

    def test_one_call_equals_two_half_calls(self, name, options):
        core = build(name, options)
        x = torch.randn(T, B, F, dtype=torch.double)
        is_first = torch.rand(T, B) < 0.2
        state = random_state(core, B)
        y, final = core(x, state, is_first)
        y1, mid = core(x[: T // 2], state, is_first[: T // 2])
        y2, final2 = core(x[T // 2 :], mid, is_first[T // 2 :])
        torch.testing.assert_close(y, torch.cat([y1, y2]), atol=1e-10, rtol=1e-10)
        assert_states_close(final, final2, atol=1e-10, rtol=1e-10)

    def test_reset_equals_fresh_start_and_blocks_gradients(self, name, options):
        core = build(name, options)
        k = 3
        x = torch.randn(T, B, F, dtype=torch.double, requires_grad=True)
        is_first = torch.zeros(T, B, dtype=torch.bool)
        is_first[k, 1] = True  # only row 1 starts a new episode at step k
        state = random_state(core, B)
        y, _ = core(x, state, is_first)
        fresh, _ = core(x[k:, 1:2], core.initial_state(1), None)
        torch.testing.assert_close(y[k:, 1:2], fresh, atol=1e-10, rtol=1e-10)
        (grad,) = torch.autograd.grad(y[k:, 1].sum(), x, allow_unused=True)
        if grad is not None:  # the mlp core has no path at all
            assert torch.equal(grad[:k, 1], torch.zeros_like(grad[:k, 1]))
            assert grad[k:, 1].abs().sum() > 0

    def test_reset_discards_non_finite_state(self, name, options):
        core = build(name, options)
        x = torch.randn(T, B, F, dtype=torch.double)
        state = core.initial_state(B)
        state = map_state(lambda s: torch.full_like(s, math.nan), state)
        is_first = torch.zeros(T, B, dtype=torch.bool)
        is_first[0] = True
        y, final = core(x, state, is_first)
        assert torch.isfinite(y).all() and all(torch.isfinite(s).all() for s in final)

    def test_final_state_keeps_structure(self, name, options):
        core = build(name, options)
        state = core.initial_state(B)
        _, final = core(torch.randn(T, B, F, dtype=torch.double), state, None)
        assert type(final) is type(state)
        for a, b in zip(final, state, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype

    def test_gradcheck_double(self, name, options):
        core = build(name, options)
        x = torch.randn(4, 2, F, dtype=torch.double, requires_grad=True)
        is_first = torch.tensor([[False, False], [False, True], [False, False], [True, False]])
        state = tuple(s.requires_grad_() for s in random_state(core, 2))
        like = core.initial_state(1)

        def run(x, *leaves):
            start = rebuild_state(like, list(leaves))
            y, final = core(x, start, is_first)
            return (y, *final)

        assert torch.autograd.gradcheck(run, (x, *state))
        if options.get("orthogonal_map") == "householder":
            return  # torch's householder map is not differentiable at its orthogonal right-inverse
        params = [p for p in core.parameters() if p.requires_grad]
        assert torch.autograd.gradcheck(lambda *_: run(x, *state), params)

    def test_wrong_input_shape_is_a_clear_error(self, name, options):
        core = build(name, options)
        with pytest.raises(ValueError, match=r"x of shape \[T, B"):
            core(torch.randn(T, B, F + 1, dtype=torch.double), core.initial_state(B), None)
        with pytest.raises(ValueError, match="is_first"):
            core(torch.randn(T, B, F, dtype=torch.double), core.initial_state(B),
                 torch.zeros(T, B + 1, dtype=torch.bool))

    def test_gate_activations(self, name, options):
        core = build(name, options)
        gates = core.gate_activations(torch.randn(B, F, dtype=torch.double),
                                      random_state(core, B))
        if name in ("mlp", USER_CORE):
            assert gates == {}
            return
        assert "forget" in gates
        for value in gates.values():
            assert value.shape[0] == B and value.shape[1] % H == 0
            assert ((value >= 0) & (value <= 1)).all()
        refine = getattr(core, "aux_gate", "none") == "refine"
        assert ("refine" in gates) == refine
        if refine:
            assert "effective" in gates


@pytest.mark.parametrize("name", ["ur_lstm", "lstm", "r_lstm", "u_lstm", "c_lstm",
                                  "gru", "ur_gru", "r_gru"])
def test_fused_path_equals_reference_step_path(name):
    """The fused recurrence and the generic per-step cell agree in values and all gradients."""
    torch.manual_seed(1)
    fused = make_core(name, F, H).double()
    plain = make_core(name, F, H, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(T, B, F, dtype=torch.double)
    is_first = torch.rand(T, B) < 0.3
    state = random_state(fused, B)
    outs = []
    for core in (fused, plain):
        core.zero_grad()
        y, final = core(x, state, is_first)
        (y.square().sum() + sum(s.sum() for s in final)).backward()
        outs.append((y, final, [p.grad.clone() for p in core.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    assert_states_close(outs[0][1], outs[1][1])
    for a, b in zip(outs[0][2], outs[1][2], strict=True):
        torch.testing.assert_close(a, b)


def test_registry_has_the_paper_grid():
    names = set(available_cores())
    assert {"mlp", "lstm", "gru", "goru", "ur_lstm", "ur_gru", "u_lstm", "r_lstm", "c_lstm",
            "on_lstm", "u_gru", "r_gru", "c_gru"} <= names


@pytest.mark.parametrize("gate_init", ["standard", "chrono", "ordered", "uniform"])
@pytest.mark.parametrize("aux_gate", ["none", "refine", "master"])
@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_every_grid_point_builds_and_runs(family, gate_init, aux_gate):
    options = {"gate_init": gate_init, "aux_gate": aux_gate}
    if gate_init == "chrono":
        options["t_max"] = 50
    if family == "gru" and aux_gate == "master":
        with pytest.raises(ValueError, match="aux_gate"):
            make_core(family, F, H, **options)
        return
    core = make_core(family, F, H, **options)
    y, _ = core(torch.randn(T, B, F), core.initial_state(B), None)
    assert y.shape == (T, B, H) and torch.isfinite(y).all()


def test_unknown_core_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown core 'ur_lstn'.*did you mean ur_lstm.*goru"):
        make_core("ur_lstn", F, H)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ur_lstm", {"hiden_size": 3}, r"unknown option 'hiden_size' for core 'ur_lstm'; allowed"),
        ("lstm", {"gate_init": "fancy"}, r"unknown gate_init 'fancy'; expected one of standard"),
        ("lstm", {"gate_init": "chrono"}, r"needs t_max"),
        ("u_lstm", {"forget_bias": 1.0}, r"forget_bias applies to gate_init='standard' only"),
        ("on_lstm", {"chunk_size": 4}, r"chunk_size=4 must be a positive divisor of hidden_size=6"),
        ("goru", {"orthogonal_map": "givens"}, r"even hidden_size"),
        ("lstm", {"num_layers": 0}, r"num_layers must be a positive integer, got 0"),
    ],
)
def test_bad_options_fail_at_construction(name, options, message):
    size = 7 if name == "goru" else H
    with pytest.raises(ValueError, match=message):
        make_core(name, F, size, **options)


def test_a_core_module_that_raises_on_import_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_core_module.py").write_text("1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="^importing core 'broken_core_module:Core' raised "
                                         "ZeroDivisionError: division by zero$"):
        make_core("broken_core_module:Core", F, H)


def test_a_non_finite_core_option_is_refused():
    with pytest.raises(ValueError, match="^core option t_max must be a finite number, got nan$"):
        make_core("c_lstm", F, H, t_max=float("nan"))


def test_bad_import_paths():
    with pytest.raises(ValueError, match="cannot import core 'no_such_module:X'"):
        make_core("no_such_module:X", F, H)
    with pytest.raises(ValueError, match="has no 'Missing'"):
        make_core(f"{__name__}:Missing", F, H)
    with pytest.raises(ValueError, match="not a subclass of cores.Core"):
        make_core(f"{__name__}:build", F, H)


def test_user_core_options_are_checked():
    assert make_core(USER_CORE, F, H, decay=0.5).decay == 0.5
    with pytest.raises(ValueError, match="unknown option 'rate'.*allowed: decay"):
        make_core(USER_CORE, F, H, rate=0.5)


def test_wrong_state_shape_is_a_clear_error():
    core = make_core("ur_lstm", F, H)
    with pytest.raises(ValueError, match=r"state must be 2 tensor\(s\) \(h, c\) of shape \[3, 1, 6\]"):
        core.step(torch.randn(B, F), core.initial_state(B + 1))


def test_with_defaults_gives_the_program_defaults_only_to_cores_that_take_them():
    """The trainer's refine_bias reaches every core that names it, never one that does not (mlp, lru,
    a user core), and a core option the user gave wins."""
    for name in ("ur_lstm", "lstm", "ur_gru", "ur_min_gru", "ur_min_lstm"):
        assert with_defaults(name, {}, refine_bias="zero") == {"refine_bias": "zero"}
    for name in ("mlp", "lru", "goru", USER_CORE):
        assert with_defaults(name, {"x": 1}, refine_bias="zero") == {"x": 1}
    assert with_defaults("ur_lstm", {"refine_bias": "neg_forget"}, refine_bias="zero") == {
        "refine_bias": "neg_forget"}
    assert with_defaults("ur_lstn", {}, refine_bias="zero") == {}  # make_core names the typo
    zero = make_core("ur_lstm", F, H, **with_defaults("ur_lstm", {}, refine_bias="zero"))
    default = make_core("ur_lstm", F, H)
    sl = default.layers[0].layout.slices
    assert torch.equal(zero.layers[0].effective_bias()[sl["r"]], zero.layers[0].bias[sl["r"]])
    assert torch.allclose(default.layers[0].effective_bias()[sl["r"]],
                          default.layers[0].bias[sl["r"]] - default.layers[0].bias[sl["f"]])
