"""The agent network: torso per observation kind, shapes, resets, gate reporting."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.networks import ActorCritic, MiniGridImageEncoder
from configs import CoreConfig
from cores import make_core

DESCRIPTION = {
    "image": {"kind": "minigrid_image", "shape": (7, 7, 3), "num_values": (11, 6, 4)},
    "direction": {"kind": "discrete", "n": 4},
    "mission": {"kind": "tokens", "shape": (16,), "vocab_size": 512},
    "vec": {"kind": "box", "shape": (3, 2)},
    "cards": {"kind": "multi_discrete", "nvec": (2, 5)},
}


def observation(T, B):
    return {
        "image": torch.randint(0, 4, (T, B, 7, 7, 3), dtype=torch.uint8),
        "direction": torch.randint(0, 4, (T, B)),
        "mission": torch.randint(0, 512, (T, B, 16)),
        "vec": torch.randn(T, B, 3, 2),
        "cards": torch.stack([torch.randint(0, 2, (T, B)), torch.randint(0, 5, (T, B))], -1),
    }


def make(core="ur_lstm"):
    torch.manual_seed(0)
    return ActorCritic(DESCRIPTION, 5, make_core(core, ActorCritic.core_input_size(32, 5), 16), 32)


def test_unroll_equals_stepping_with_resets():
    model = make()
    T, B = 6, 3
    obs = observation(T, B)
    last_action = torch.randint(0, 5, (T, B))
    reward = torch.randn(T, B)
    is_first = torch.rand(T, B) < 0.3
    out, final = model.unroll(obs, last_action, reward, is_first, model.initial_state(B))
    assert out.logits.shape == (T, B, 5) and out.values.shape == (T, B)
    state = model.initial_state(B)
    for t in range(T):
        step, state = model.step({k: v[t] for k, v in obs.items()}, last_action[t], reward[t],
                                 is_first[t], state)
        torch.testing.assert_close(step.logits, out.logits[t], atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gate_activations_reset_where_an_episode_starts():
    model = make()
    B = 2
    obs = {k: v[0] for k, v in observation(1, B).items()}
    last_action, reward = torch.zeros(B, dtype=torch.long), torch.zeros(B)
    busy = tuple(torch.randn_like(s) for s in model.initial_state(B))
    busy = type(model.initial_state(B))(*busy)
    reset = model.gate_activations(obs, last_action, reward, torch.tensor([True, True]), busy)
    fresh = model.gate_activations(obs, last_action, reward, torch.tensor([False, False]),
                                   model.initial_state(B))
    torch.testing.assert_close(reset["forget"], fresh["forget"])
    assert {"forget", "refine", "effective"} <= set(reset)
    assert make("mlp").gate_activations(obs, last_action, reward, torch.tensor([False, False]), ()) == {}


def test_core_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="core input_size is 10; this agent feeds it 38"):
        ActorCritic(DESCRIPTION, 5, make_core("lstm", 10, 16), 32)


def test_without_previous_inputs_the_core_sees_the_observation_alone():
    torch.manual_seed(0)
    model = ActorCritic(DESCRIPTION, 5, make_core("mlp", ActorCritic.core_input_size(32, 5, False), 16),
                        32, previous_inputs=False)
    assert model.core.input_size == 32
    obs = {k: v[0] for k, v in observation(1, 3).items()}
    first = torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        a, _ = model.step(obs, torch.tensor([0, 1, 2]), torch.tensor([0.0, 1.0, -1.0]), first, ())
        b, _ = model.step(obs, torch.tensor([4, 4, 4]), torch.tensor([5.0, 5.0, 5.0]), first, ())
    torch.testing.assert_close(a.logits, b.logits)  # memoryless: the previous step leaves no trace
    with pytest.raises(ValueError, match=r"this agent feeds it 32 \(torso 32\)"):
        ActorCritic(DESCRIPTION, 5, make_core("mlp", 38, 16), 32, previous_inputs=False)


def test_hidden_head_layer_is_shared_and_linear_heads_keep_their_parameter_names():
    torch.manual_seed(0)
    core_size = ActorCritic.core_input_size(32, 5)
    linear = ActorCritic(DESCRIPTION, 5, make_core("lstm", core_size, 16), 32)
    hidden = ActorCritic(DESCRIPTION, 5, make_core("lstm", core_size, 16), 32, head_size=24)
    assert not any(name.startswith("head.") for name in linear.state_dict())
    assert hidden.head[0].weight.shape == (24, 16)
    assert hidden.policy.weight.shape == (5, 24) and hidden.baseline.weight.shape == (1, 24)
    T, B = 4, 3
    obs, is_first = observation(T, B), torch.zeros(T, B, dtype=torch.bool)
    last_action, reward = torch.randint(0, 5, (T, B)), torch.randn(T, B)
    out, _ = hidden.unroll(obs, last_action, reward, is_first, hidden.initial_state(B))
    y, _ = hidden.core(hidden.core_inputs({k: v.flatten(0, 1) for k, v in obs.items()},
                                          last_action.flatten(), reward.flatten()).view(T, B, -1),
                       hidden.initial_state(B), is_first)
    z = torch.relu(hidden.head[0](y))
    torch.testing.assert_close(out.logits, hidden.policy(z))
    torch.testing.assert_close(out.values, hidden.baseline(z).squeeze(-1))
    step, _ = hidden.step({k: v[0] for k, v in obs.items()}, last_action[0], reward[0], is_first[0],
                          hidden.initial_state(B))
    torch.testing.assert_close(step.logits, out.logits[0], atol=1e-5, rtol=1e-5)



def test_every_network_field_of_the_core_config_reaches_the_network():
    """A CoreConfig field either makes the core or is one of its network options, and
    ``ActorCritic.build`` takes those options as they are."""
    core_fields = {"core", "hidden_size", "core_options", "refine_bias"}
    config = CoreConfig(core="mlp", torso_size=24, head_size=8, previous_inputs=False, observation_gate=True,
                        input_norm=True, view_match=True)
    options = config.network_options()
    assert set(options) == {f.name for f in dataclasses.fields(CoreConfig)} - core_fields
    sizes = []
    model = ActorCritic.build(DESCRIPTION, 5, lambda size: sizes.append(size) or make_core("mlp", size, 16),
                              **options)
    assert sizes == [24]  # torso only: no previous action and reward
    assert model.head[0].weight.shape == (8, 16 + 49 + 2)  # core output and view-match scores
    assert model.torso.mix[0].out_features == 24
    assert model.observation_gate.weight.shape == (16, 24)
    assert model.input_norm.normalized_shape == (24,)
    x = model.core_inputs({k: v[0] for k, v in observation(1, 3).items()}, torch.zeros(3), torch.zeros(3))
    torch.testing.assert_close(x.mean(-1), torch.zeros(3), atol=1e-5, rtol=0)  # normalised per row


def test_observation_gate_starts_as_the_plain_read_out_and_multiplies_by_the_torso_features():
    """With the gate, the heads read ``y * (1 + W f)`` (f: this step's torso features); its zero
    start leaves the agent's first outputs as they are without it."""
    torch.manual_seed(0)
    core_size = ActorCritic.core_input_size(32, 5)
    plain = ActorCritic(DESCRIPTION, 5, make_core("ur_lstm", core_size, 16), 32)
    gated = ActorCritic(DESCRIPTION, 5, make_core("ur_lstm", core_size, 16), 32, observation_gate=True)
    missing = gated.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["observation_gate.bias", "observation_gate.weight"]
    T, B = 5, 3
    obs, is_first = observation(T, B), torch.zeros(T, B, dtype=torch.bool)
    is_first[0] = is_first[3, 1] = True
    last_action, reward = torch.randint(0, 5, (T, B)), torch.randn(T, B)
    args = (obs, last_action, reward, is_first)
    torch.testing.assert_close(gated.unroll(*args, gated.initial_state(B))[0],
                               plain.unroll(*args, plain.initial_state(B))[0])
    torch.nn.init.normal_(gated.observation_gate.weight)
    out, _ = gated.unroll(*args, gated.initial_state(B))
    x = gated.core_inputs({k: v.flatten(0, 1) for k, v in obs.items()}, last_action.flatten(),
                          reward.flatten()).view(T, B, -1)
    y, _ = gated.core(x, gated.initial_state(B), is_first)
    features = gated.torso({k: v.flatten(0, 1) for k, v in obs.items()}).view(T, B, -1)
    z = y * (1 + gated.observation_gate(features))
    torch.testing.assert_close(out.logits, gated.policy(z))
    state = gated.initial_state(B)
    for t in range(T):  # stepping reads the same gate
        step, state = gated.step({k: v[t] for k, v in obs.items()}, last_action[t], reward[t], is_first[t],
                                 state)
        torch.testing.assert_close(step.logits, out.logits[t], atol=1e-5, rtol=1e-5)

def reference_encoding(encoder: MiniGridImageEncoder, image: torch.Tensor) -> torch.Tensor:
    """The encoder's definition: sum of per-channel embeddings per cell, flatten, linear, ReLU."""
    cells = encoder.embed(image.long() + encoder.offsets).sum(-2)
    return torch.relu(encoder.out(cells.flatten(1)))


def test_image_encoder_equals_its_definition_with_and_without_autograd():
    torch.manual_seed(0)
    encoder = MiniGridImageEncoder((7, 7, 3), (11, 6, 4), 32)
    image = torch.stack([torch.randint(0, n, (5, 7, 7)) for n in (11, 6, 4)], -1).to(torch.uint8)
    expected = reference_encoding(encoder, image)
    torch.testing.assert_close(encoder(image), expected)
    reference_grads = torch.autograd.grad(expected.square().sum(), list(encoder.parameters()))
    grads = torch.autograd.grad(encoder(image).square().sum(), list(encoder.parameters()))
    for got, want in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(got, want)
    with torch.no_grad():
        torch.testing.assert_close(encoder(image), expected)


def test_image_encoder_refuses_values_out_of_range():
    encoder = MiniGridImageEncoder((7, 7, 3), (11, 6, 4), 32)
    image = torch.zeros(2, 7, 7, 3, dtype=torch.long)
    image[1, 3, 3, 1] = 6  # colour 6 of 0..5 would read the next channel's rows
    with pytest.raises(ValueError, match=r"MiniGrid image value 6 is out of range.*0 to \[10, 5, 3\]"):
        encoder(image)
    image[1, 3, 3, 1] = -1
    with pytest.raises(ValueError, match="value -1 is out of range"):
        encoder(image)


def test_image_encoder_cache_follows_parameter_updates():
    torch.manual_seed(0)
    encoder = MiniGridImageEncoder((7, 7, 3), (11, 6, 4), 32)
    image = torch.stack([torch.randint(0, n, (4, 7, 7)) for n in (11, 6, 4)], -1)
    with torch.no_grad():
        encoder(image)  # fills the cache
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.5)
    encoder(image).sum().backward()
    optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(encoder(image), reference_encoding(encoder, image))
        encoder.load_state_dict({k: torch.zeros_like(v) for k, v in encoder.state_dict().items()})
        assert encoder(image).abs().max() == 0
