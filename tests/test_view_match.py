"""View match (agents/view_match.py): one score per element in view, with weights shared over positions,
read by the heads beside the core's output."""

from __future__ import annotations

import pytest
import torch

from agents.networks import ActorCritic
from agents.recognition import recognition_loss, seen_again
from agents.view_match import ViewMatch
from cores import make_core

IMAGE = {"kind": "minigrid_image", "shape": (5, 5, 3), "num_values": (11, 6, 4)}
DESCRIPTION = {"image": IMAGE, "direction": {"kind": "discrete", "n": 4},
               "cards": {"kind": "multi_discrete", "nvec": (3, 5)}}


def observation(T, B):
    return {"image": torch.stack([torch.randint(0, n, (T, B, 5, 5)) for n in (11, 6, 4)], -1).to(torch.uint8),
            "direction": torch.randint(0, 4, (T, B)),
            "cards": torch.stack([torch.randint(0, 3, (T, B)), torch.randint(0, 5, (T, B))], -1)}


def stepped(model, obs, last_action, reward, is_first):
    """The outputs of ``model.step`` through the ``[T, B]`` inputs one step at a time, the state carried."""
    state = model.initial_state(is_first.shape[1])
    for t in range(is_first.shape[0]):
        out, state = model.step({k: v[t] for k, v in obs.items()}, last_action[t], reward[t], is_first[t],
                                state)
        yield out


def test_each_element_is_scored_against_a_query_from_the_core_output():
    """Scores: the 25 cells of the image, then the 2 slots of ``cards`` (keys in sorted order); each is
    the dot product of the element's embedding (a cell's object, colour and state summed) with the
    key's query of ``y``, over sqrt(16)."""
    torch.manual_seed(0)
    match = ViewMatch(DESCRIPTION, 8)
    assert match.num_elements == 25 + 2 and match.keys == ["cards", "image"]
    assert match.first_element == {"cards": 0, "image": 2}
    obs = {k: v[0] for k, v in observation(1, 3).items()}
    y = torch.randn(3, 8)
    scores = match(obs, y)
    assert scores.shape == (3, 27)
    image = obs["image"].long()
    cell = image[1, 2, 4]  # batch row 1, cell (2, 4): flattened index 2 * 5 + 4
    offsets = (0, 11, 17)  # object, colour, state ids in one vocabulary of 11 + 6 + 4
    embedding = sum(match.embeds["image"].weight[int(v) + o] for v, o in zip(cell, offsets, strict=True))
    want = embedding @ match.queries["image"](y[1]) / 4
    torch.testing.assert_close(scores[1, 2 + 14], want)
    slot = obs["cards"][2, 1]  # batch row 2, second slot: the table shared by the slots
    want = match.embeds["cards"].weight[int(slot)] @ match.queries["cards"](y[2]) / 4
    torch.testing.assert_close(scores[2, 1], want)


def test_the_same_thing_in_another_cell_gets_the_same_score_there():
    """Weights are shared over positions: moving a cell's content moves its score with it."""
    torch.manual_seed(1)
    match = ViewMatch({"image": IMAGE}, 8)
    image = torch.zeros(1, 5, 5, 3, dtype=torch.long)
    image[0, 1, 3] = torch.tensor([6, 2, 0])
    moved = torch.zeros_like(image)
    moved[0, 4, 0] = torch.tensor([6, 2, 0])
    y = torch.randn(1, 8)
    a, b = match({"image": image}, y), match({"image": moved}, y)
    torch.testing.assert_close(a[0, 1 * 5 + 3], b[0, 4 * 5 + 0])
    torch.testing.assert_close(a[0, 4 * 5 + 0], b[0, 1 * 5 + 3])


def test_the_heads_read_the_scores_and_stepping_equals_unrolling():
    torch.manual_seed(0)
    core = make_core("ur_lstm", ActorCritic.core_input_size(16, 4), 8)
    model = ActorCritic(DESCRIPTION, 4, core, 16, view_match=True, observation_gate=True,
                        action_value_head=True)
    assert model.policy.in_features == 8 + 27 and model.action_value.in_features == 8 + 27
    T, B = 5, 3
    obs, is_first = observation(T, B), torch.zeros(T, B, dtype=torch.bool)
    is_first[0] = is_first[2, 1] = True
    last_action, reward = torch.randint(0, 4, (T, B)), torch.randn(T, B)
    out, _ = model.unroll(obs, last_action, reward, is_first, model.initial_state(B))
    assert out.logits.shape == (T, B, 4) and out.action_values.shape == (T, B, 4)
    torch.nn.init.normal_(model.policy.weight[:, 8:], std=5.0)  # the scores' share of the logits
    out, _ = model.unroll(obs, last_action, reward, is_first, model.initial_state(B))
    for t, step in enumerate(stepped(model, obs, last_action, reward, is_first)):
        torch.testing.assert_close(step.logits, out.logits[t], atol=1e-5, rtol=1e-5)
    obs["image"][..., 1] = (obs["image"][..., 1] + 1) % 6  # other colours in view: other scores, other logits
    changed, _ = model.unroll(obs, last_action, reward, is_first, model.initial_state(B))
    assert not torch.allclose(changed.logits, out.logits)


def test_without_elements_in_view_the_option_changes_nothing():
    """Observations with no image and no multi-discrete (e.g. POPGym's discrete ones) have nothing to
    score: the network is the one without the option, parameter for parameter."""
    description = {"direction": {"kind": "discrete", "n": 4}}
    torch.manual_seed(0)
    plain = ActorCritic(description, 4, make_core("lstm", ActorCritic.core_input_size(16, 4), 8), 16)
    torch.manual_seed(0)
    with_option = ActorCritic(description, 4, make_core("lstm", ActorCritic.core_input_size(16, 4), 8), 16,
                              view_match=True)
    assert with_option.view_match is None
    assert with_option.state_dict().keys() == plain.state_dict().keys()


def test_keys_naming_one_vocabulary_share_a_table_and_a_range_of_ids():
    """A discrete key gets an element only when it names a vocabulary; keys naming the same one embed
    a value alike and give it the same id, and a key of its own keeps its own."""
    description = {"cue": {"kind": "discrete", "n": 5, "vocabulary": "symbols"},
                   "shown": {"kind": "multi_discrete", "nvec": (4, 4), "vocabulary": "symbols"},
                   "other": {"kind": "multi_discrete", "nvec": (3,)},
                   "direction": {"kind": "discrete", "n": 4}}
    match = ViewMatch(description, 8)
    assert match.keys == ["cue", "other", "shown"] and match.num_elements == 4
    assert match.vocab_size == 5 + 3 and sorted(match.embeds.keys()) == ["other", "vocabulary__symbols"]
    obs = {"cue": torch.tensor([3]), "shown": torch.tensor([[1, 3]]), "other": torch.tensor([[2]])}
    assert match.element_values(obs).tolist() == [[3, 5 + 2, 1, 3]]
    torch.testing.assert_close(match.element_embeddings("cue", obs["cue"])[0, 0],
                               match.element_embeddings("shown", obs["shown"])[0, 1])


def test_a_clash_of_table_names_or_a_vocabulary_on_another_kind_is_a_clear_error():
    shared = {"kind": "discrete", "n": 3, "vocabulary": "x"}
    with pytest.raises(ValueError, match="needs the embedding table 'vocabulary__x'"):
        ViewMatch({"a": shared, "vocabulary.x": {"kind": "multi_discrete", "nvec": (7,)}}, 8)
    with pytest.raises(ValueError, match="only discrete and multi_discrete keys can, not box"):
        ViewMatch({"a": {"kind": "box", "shape": (2,), "vocabulary": "x"}}, 8)


def test_a_policy_query_adds_a_second_score_per_element_that_the_recognition_loss_does_not_train():
    """``policy_query``: the heads read 2 x 27 scores, the first 27 those of the one-query module with
    the same weights; the unroll's ``match_scores`` (what the recognition loss trains) are those 27,
    so the loss's gradient reaches the first query and not the second."""
    torch.manual_seed(0)
    core = make_core("ur_lstm", ActorCritic.core_input_size(16, 4), 8)
    model = ActorCritic(DESCRIPTION, 4, core, 16, view_match=True, policy_query=True)
    match = model.view_match
    assert (match.num_elements, match.num_scores) == (27, 54) and model.policy.in_features == 8 + 54
    single = ViewMatch(DESCRIPTION, 8)
    single.load_state_dict({k: v for k, v in match.state_dict().items() if not k.startswith("policy_queries")})
    obs = {k: v[0] for k, v in observation(1, 3).items()}
    y = torch.randn(3, 8)
    scores = match(obs, y)
    torch.testing.assert_close(scores[:, :27], single(obs, y))
    want = match.embeds["cards"].weight[int(obs["cards"][2, 1])] @ match.policy_queries["cards"](y[2]) / 4
    torch.testing.assert_close(scores[2, 27 + 1], want)

    T, B = 4, 2
    obs, is_first = observation(T, B), torch.zeros(T, B, dtype=torch.bool)
    is_first[0] = True
    out, _ = model.unroll(obs, torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B), is_first,
                          model.initial_state(B))
    assert out.match_scores.shape == (T, B, 27)
    ids = model.element_values(obs)
    labels, valid = seen_again(ids, is_first, match.vocab_size)
    loss, _ = recognition_loss(out.match_scores, labels, valid, ids, match.vocab_size)
    loss.backward(retain_graph=True)
    assert match.queries["image"].weight.grad.abs().sum() > 0
    assert all(q.weight.grad is None or not q.weight.grad.any() for q in match.policy_queries.values())
    out.logits.sum().backward()  # the policy's gradient does reach the second query
    assert match.policy_queries["image"].weight.grad.abs().sum() > 0


def test_a_policy_query_without_view_match_is_a_clear_error():
    core = make_core("lstm", ActorCritic.core_input_size(16, 4), 8)
    with pytest.raises(ValueError, match="policy_query needs view_match"):
        ActorCritic(DESCRIPTION, 4, core, 16, view_match=False, policy_query=True)


def test_with_a_policy_query_stepping_equals_unrolling():
    torch.manual_seed(0)
    core = make_core("ur_lstm", ActorCritic.core_input_size(16, 4), 8)
    model = ActorCritic(DESCRIPTION, 4, core, 16, view_match=True, policy_query=True)
    torch.nn.init.normal_(model.policy.weight[:, 8 + 27:], std=5.0)  # the second query's share
    T, B = 4, 3
    obs, is_first = observation(T, B), torch.zeros(T, B, dtype=torch.bool)
    is_first[0] = is_first[2, 1] = True
    last_action, reward = torch.randint(0, 4, (T, B)), torch.randn(T, B)
    out, _ = model.unroll(obs, last_action, reward, is_first, model.initial_state(B))
    for t, step in enumerate(stepped(model, obs, last_action, reward, is_first)):
        torch.testing.assert_close(step.logits, out.logits[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step.match_scores, out.match_scores[t], atol=1e-5, rtol=1e-5)


def test_a_uniform_policy_start_gives_every_seed_the_uniform_policy():
    """``uniform_policy_start``: the policy layer starts at zero, so the first logits are 0 for any input
    (the default init leans a few points towards some action, a different one per seed)."""
    for seed in (0, 1):
        torch.manual_seed(seed)
        core = make_core("ur_lstm", ActorCritic.core_input_size(16, 4), 8)
        model = ActorCritic(DESCRIPTION, 4, core, 16, view_match=True, uniform_policy_start=True)
        obs = {k: v[0] for k, v in observation(1, 3).items()}
        out, _ = model.step(obs, torch.zeros(3, dtype=torch.long), torch.zeros(3),
                            torch.ones(3, dtype=torch.bool), model.initial_state(3))
        assert torch.equal(out.logits, torch.zeros(3, 4))
        assert out.values.abs().sum() > 0  # the other heads keep their usual start
