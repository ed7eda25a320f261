"""Recognition (agents/recognition.py): each view-match score is trained to say whether its element's
value is seen again in the episode, labelled from the observations alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.learner import Learner, LearnerSettings
from agents.networks import ActorCritic
from agents.recognition import recognition_loss, seen_again
from agents.rollout import Actor, Unroll
from agents.view_match import ViewMatch
from cores import make_core
from envs import make_vector_env


def one_element(values, firsts):
    """``[T, 1, 1]`` values and ``[T, 1]`` episode starts of one env with one element."""
    return torch.tensor(values).view(-1, 1, 1), torch.tensor(firsts, dtype=torch.bool).view(-1, 1)


def test_a_value_back_in_view_after_a_gap_is_seen_again_until_it_leaves():
    """A B A A C A | A B A: the second sighting of A and every step of it is labelled; B and C, and A
    again at a new episode's first step, are not (what came before the episode does not count)."""
    values, firsts = one_element([0, 1, 0, 0, 2, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 1, 0, 0])
    labels, valid = seen_again(values, firsts, 3)
    assert labels.view(-1).tolist() == [False, False, True, True, False, True, False, False, True]
    assert valid.all()


def test_steps_of_an_episode_begun_before_the_unroll_carry_no_label():
    values, firsts = one_element([0, 1, 0, 0, 2, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0, 0, 0, 0])
    labels, valid = seen_again(values, firsts, 3)
    assert valid.view(-1).tolist() == [False] * 3 + [True] * 6
    # the episode starts at step 3 with A in view: a first sighting, though A was in view at step 2
    assert labels.view(-1).tolist()[3:] == [False, False, True, True, False, True]


def test_the_cue_colour_among_the_pads_is_seen_again_and_the_other_pads_are_not():
    """Visual match in miniature, two elements: a red ball (3) at the start, apples (1) for the delay,
    then a red and a green (4) ball side by side. Walls (0) in view throughout are never seen again."""
    values = torch.tensor([[3, 0], [1, 0], [1, 1], [3, 4], [3, 4]]).view(5, 1, 2)
    firsts = torch.tensor([[True], [False], [False], [False], [False]])
    labels, _ = seen_again(values, firsts, 5)
    assert labels[:, 0, :].tolist() == [[False, False], [False, False], [False, False], [True, False],
                                         [True, False]]


def test_each_value_and_label_weighs_the_same_and_steps_without_a_label_do_not_count():
    """Values 0 (three elements, never seen again), 1 (seen again once, not once) at the valid step;
    the invalid step's scores get no gradient. Loss and accuracy: the mean over the (value, label)
    pairs (0, no), (1, yes), (1, no) of each pair's mean."""
    values = torch.tensor([[[0, 0, 0, 1, 1]], [[0, 1, 1, 1, 1]]])
    labels = torch.tensor([[[False, False, False, True, False]], [[False] * 5]])
    valid = torch.tensor([[True], [False]])
    scores = torch.tensor([[[-1.0, -2.0, 3.0, 0.5, 0.7]], [[0.0] * 5]], requires_grad=True)
    loss, accuracy = recognition_loss(scores, labels, valid, values, 2)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    s = scores[0, 0]
    want = (bce(s[:3], torch.zeros(3)) + bce(s[3:4], torch.ones(1)) + bce(s[4:], torch.zeros(1))) / 3
    torch.testing.assert_close(loss, want)
    assert accuracy.item() == pytest.approx((2 / 3 + 1 + 0) / 3)
    loss.backward()
    assert scores.grad[1].abs().sum() == 0 and scores.grad[0].abs().sum() > 0
    empty, none = recognition_loss(scores, labels, torch.zeros(2, 1, dtype=torch.bool), values, 2)
    assert empty.item() == 0.0 and empty.requires_grad and none is None


def test_element_values_name_a_cell_by_object_colour_and_state_and_keys_do_not_share_ids():
    description = {"image": {"kind": "minigrid_image", "shape": (2, 2, 3), "num_values": (11, 6, 4)},
                   "cards": {"kind": "multi_discrete", "nvec": (3, 5)}}
    match = ViewMatch(description, 8)
    assert match.vocab_size == 5 + 11 * 6 * 4
    image = torch.zeros(1, 2, 2, 3, dtype=torch.uint8)
    image[0, 1, 0] = torch.tensor([6, 2, 3])  # cell (1, 0): flattened index 2
    ids = match.element_values({"image": image, "cards": torch.tensor([[2, 4]])})
    assert ids.tolist() == [[2, 4, 5 + 0, 5 + 0, 5 + (6 * 6 + 2) * 4 + 3, 5 + 0]]


def test_keys_sharing_a_vocabulary_share_ids_and_the_cue_is_seen_again_among_the_candidates():
    """ShuffledCueRecall, delay 2: the cue (``symbol``, a discrete key) and the candidates (a
    multi-discrete key) name one vocabulary, so the candidate that shows the cue is seen again at the
    query and no other element is; the discrete ``phase`` has no vocabulary and no element."""
    env = make_vector_env("ShuffledCueRecall-v0", 1, seed=3, delay=2)
    match = ViewMatch(env.observation_description, 8)
    assert match.keys == ["candidates", "symbol"] and match.vocab_size == 5 and match.num_elements == 5
    obs, _ = env.reset()
    steps = [obs]
    for _ in range(3):
        steps.append(env.step(np.zeros(1, np.int64)).obs)
    env.close()
    batch = {key: torch.as_tensor(np.concatenate([step[key] for step in steps[:4]])) for key in match.keys}
    ids = match.element_values(batch).view(4, 1, 5)
    cue = int(batch["symbol"][0])
    assert ids[0, 0].tolist() == [0, 0, 0, 0, cue] and ids[3, 0, 4] == 0
    firsts = torch.tensor([[True], [False], [False], [False]])
    labels, _ = seen_again(ids, firsts, match.vocab_size)
    assert not labels[:3].any()
    assert labels[3, 0].tolist() == [int(c) == cue for c in batch["candidates"][3]] + [False]


def visual_match_learner(cost: float, view_match: bool = True):
    torch.manual_seed(0)
    env = make_vector_env("PassiveVisualMatch-Short-v0", 2, seed=0)
    num_actions = int(env.single_action_space.n)
    core = make_core("ur_lstm", ActorCritic.core_input_size(32, num_actions), 16)
    model = ActorCritic(env.observation_description, num_actions, core, torso_size=32, view_match=view_match)
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=1e-3), None,
                      LearnerSettings(recognition_cost=cost))
    return env, model, learner


def test_an_update_with_the_recognition_loss_trains_the_query_and_logs_it():
    env, model, learner = visual_match_learner(1.0)
    actor = Actor(env, model, seed=0)
    batch = Unroll.allocate(60, actor.obs, model.num_actions, model.initial_state(2))
    actor.collect(batch)  # 60 steps from the start: whole episodes of the 15-step delay
    query = model.view_match.queries["image"].weight.detach().clone()
    stats = learner.update(batch)
    assert math.isfinite(stats["losses/recognition"]) and stats["losses/recognition"] > 0
    assert 0.0 <= stats["losses/recognition_accuracy"] <= 1.0
    assert not torch.equal(query, model.view_match.queries["image"].weight)
    env.close()


def test_without_view_match_scores_the_loss_is_off():
    """The defaults ask for the loss everywhere; where there are no scores to train (view match off,
    or no elements in the observations) an update is the one without it."""
    env, model, learner = visual_match_learner(1.0, view_match=False)
    actor = Actor(env, model, seed=0)
    batch = Unroll.allocate(20, actor.obs, model.num_actions, model.initial_state(2))
    actor.collect(batch)
    stats = learner.update(batch)
    assert not learner.recognition
    assert "losses/recognition" not in stats and "losses/recognition_accuracy" not in stats
    env.close()
