"""The novelty bonuses (agents/novelty.py): an intrinsic reward for each element value that comes into
view for the first time in the episode, and one for each step whose whole observation is new in it."""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.learner import Learner, LearnerSettings
from agents.networks import ActorCritic
from agents.novelty import first_sightings, first_views, view_codes
from agents.rollout import Actor, Unroll
from cores import make_core
from envs import make_env, make_vector_env

EAST, WEST = 0, 2


def test_each_value_earns_once_per_episode_and_not_at_its_first_step():
    """Two elements of one env. Episode 1 starts with A B; C comes into view at step 2 (1), goes, and
    comes back (0); D and C together at step 5 (1: D only). Episode 2 starts with C D: nothing at its
    first step, then A (1), though A was seen in the episode before."""
    values = torch.tensor([[0, 1], [0, 1], [0, 2], [0, 1], [0, 2], [3, 2], [2, 3], [0, 3]]).view(8, 1, 2)
    firsts = torch.tensor([1, 0, 0, 0, 0, 0, 1, 0], dtype=torch.bool).view(8, 1)
    assert first_sightings(values, firsts, 4).view(-1).tolist() == [0, 0, 1, 0, 0, 1, 0, 1]


def test_an_episode_begun_before_the_unroll_earns_nothing_until_the_next_starts():
    values = torch.tensor([[0], [1], [2], [0], [3]]).view(5, 1, 1)
    firsts = torch.tensor([0, 0, 0, 1, 0], dtype=torch.bool).view(5, 1)
    assert first_sightings(values, firsts, 4).view(-1).tolist() == [0, 0, 0, 0, 1]


def active_visual_match_model() -> ActorCritic:
    torch.manual_seed(0)
    probe = make_vector_env("ActiveVisualMatch-Short-v0", 1, seed=0)
    num_actions = int(probe.single_action_space.n)
    core = make_core("ur_lstm", ActorCritic.core_input_size(32, num_actions), 16)
    model = ActorCritic(probe.observation_description, num_actions, core, torso_size=32, view_match=True)
    probe.close()
    return model


def walk(env, moves: list[int]) -> tuple[dict[str, torch.Tensor], list[bool]]:
    """Observations ``{key: [T, 1, ...]}`` of the episode's first steps under ``moves``, and whether
    the cue ball was in view at each."""
    obs, _ = env.reset(seed=3)
    steps, in_view = [obs], [env.unwrapped.cue_in_view()]
    for move in moves:
        obs, *_ = env.step(move)
        steps.append(obs)
        in_view.append(env.unwrapped.cue_in_view())
    batch = {key: torch.as_tensor(np.stack([np.asarray(step[key]) for step in steps]))[:, None]
             for key in steps[0]}
    return batch, in_view


def test_in_the_active_cue_corridor_the_bonus_comes_with_the_step_that_brings_the_ball_into_view():
    """Walking away from the ball earns nothing; turning back, the step at which it enters the view
    earns one sighting, and walking off and back to it again earns nothing more."""
    model = active_visual_match_model()
    env = make_env("ActiveVisualMatch-Short-v0")
    env.reset(seed=3)
    toward = EAST if env.unwrapped.cue_side() > 0 else WEST
    away = WEST if toward == EAST else EAST
    moves = [away, away, toward, toward, toward, toward, toward, away, away, toward, toward]
    obs, in_view = walk(env, moves)
    firsts = torch.zeros(len(in_view), 1, dtype=torch.bool)
    firsts[0] = True
    bonus = first_sightings(model.element_values(obs), firsts, model.view_match.vocab_size).view(-1)
    sighted = in_view.index(True)
    # 2 steps away, 2 back to the start, 3 more: at x = 4 or 10 the corridor's end, 3 cells on, is in
    # view; one step away puts it out of view, and it is back in view at the last step
    assert sighted == 7 and not in_view[8] and not in_view[10] and in_view[11]
    assert bonus.tolist() == [1.0 if t == sighted else 0.0 for t in range(len(in_view))]
    env.close()


def test_an_update_adds_the_bonus_to_the_rewards_it_learns_from_and_logs_it():
    model = active_visual_match_model()
    env = make_vector_env("ActiveVisualMatch-Short-v0", 4, seed=0)
    actor = Actor(env, model, seed=0)
    batch = Unroll.allocate(40, actor.obs, model.num_actions, model.initial_state(4))
    actor.collect(batch)  # the first 40 steps: the cue phase and the delay's first steps
    env.close()
    plain = Learner(model, torch.optim.Adam(model.parameters(), lr=1e-3), None, LearnerSettings())
    curious = Learner(model, torch.optim.Adam(model.parameters(), lr=1e-3), None,
                      LearnerSettings(novelty_bonus=0.5))
    bonus = curious.bonus(batch)
    assert plain.bonus(batch) is None and bonus.shape == (41, 4)
    assert set(bonus.unique().tolist()) <= {0.0, 0.5, 1.0, 1.5} and bonus.sum() > 0  # the apples at least
    with torch.no_grad():
        assert plain.loss(batch)[0].baseline != curious.loss(batch)[0].baseline
    stats = curious.update(batch)
    assert math.isclose(stats["losses/novelty_bonus"], bonus[1:].mean().item(), rel_tol=1e-6)


def test_a_view_earns_once_per_episode_and_not_at_its_first_step():
    """Views 0 1 2 1 3 3 | 0 2: in episode 1 views 1, 2 and 3 are new once each; episode 2 starts
    with 0 (nothing) and then 2, seen in the episode before but new in this one (1)."""
    image = torch.tensor([0, 1, 2, 1, 3, 3, 0, 2]).view(8, 1, 1)
    firsts = torch.tensor([1, 0, 0, 0, 0, 0, 1, 0], dtype=torch.bool).view(8, 1)
    assert first_views({"image": image}, firsts).view(-1).tolist() == [0, 1, 1, 0, 1, 0, 0, 1]
    late = torch.tensor([0, 0, 0, 1, 0], dtype=torch.bool).view(5, 1)  # an episode begun before
    assert first_views({"image": torch.arange(5).view(5, 1, 1)}, late).view(-1).tolist() == [0, 0, 0, 0, 1]


def test_views_differ_in_any_key_and_columns_are_separate_envs():
    """A view is every key together (floats compared exactly); each column is its own episode."""
    image = torch.zeros(4, 2, 3, dtype=torch.uint8)
    direction = torch.tensor([[0, 0], [1, 0], [0, 0], [1, 0]])
    signal = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.25], [0.5, 0.5]])[..., None]
    obs = {"image": image, "direction": direction, "signal": signal}
    codes = view_codes(obs)
    assert codes[0, 0] == codes[2, 0] == codes[0, 1] and codes[1, 0] == codes[3, 0] != codes[0, 0]
    assert codes[2, 1] != codes[0, 1]
    firsts = torch.zeros(4, 2, dtype=torch.bool)
    firsts[0] = True
    assert first_views(obs, firsts).T.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]
    fine = torch.tensor([0.1, 0.1 + 1e-12, 0.1, -0.0, 0.0], dtype=torch.float64).view(5, 1, 1)
    codes = view_codes({"x": fine}).view(-1)
    assert codes[0] == codes[2] != codes[1]  # apart below float32's precision
    assert codes[3] == codes[4]  # -0.0 and 0.0 look alike


def test_views_match_a_plain_loop_over_random_episodes():
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 4, (60, 3, 2), generator=generator)
    firsts = torch.rand(60, 3, generator=generator) < 0.1
    got = first_views({"image": image}, firsts)
    for b in range(3):
        seen, started = set(), False
        for t in range(60):
            if firsts[t, b]:
                seen, started = set(), True
            view = tuple(image[t, b].tolist())
            expected = float(started and not firsts[t, b] and view not in seen)
            seen.add(view)
            assert got[t, b] == expected, (t, b)


def test_in_the_active_cue_corridor_new_views_come_where_an_end_comes_into_view():
    """The corridor's middle looks the same from every cell, so walking through it earns nothing
    (the start faces east); the far end's wall coming into view earns a view per step, and walking
    back earns the views that face west until the middle looks as it did."""
    env = make_env("ActiveVisualMatch-Short-v0")
    obs, in_view = walk(env, [EAST] * 6 + [WEST] * 6)  # x = 8..13, 12..8; the last step: the orchard
    firsts = torch.zeros(13, 1, dtype=torch.bool)
    firsts[0] = True
    bonus = first_views(obs, firsts).view(-1).tolist()
    assert not any(in_view)  # in walk()'s episode the ball is at the west end: the east end is bare
    assert bonus == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1]
    env.close()


def test_the_view_bonus_needs_no_view_match_and_adds_to_the_element_bonus():
    torch.manual_seed(0)
    env = make_vector_env("ActiveVisualMatch-Short-v0", 4, seed=0)
    num_actions = int(env.single_action_space.n)
    plain_model = ActorCritic(env.observation_description, num_actions,
                              make_core("ur_lstm", ActorCritic.core_input_size(32, num_actions), 16),
                              torso_size=32)
    actor = Actor(env, plain_model, seed=0)
    batch = Unroll.allocate(40, actor.obs, plain_model.num_actions, plain_model.initial_state(4))
    actor.collect(batch)
    env.close()
    views = Learner(plain_model, torch.optim.Adam(plain_model.parameters()), None,
                    LearnerSettings(view_novelty_bonus=0.25)).bonus(batch)
    assert torch.equal(views, 0.25 * first_views(batch.obs, batch.is_first)) and views.sum() > 0
    model = active_visual_match_model()
    both = Learner(model, torch.optim.Adam(model.parameters()), None,
                   LearnerSettings(novelty_bonus=0.5, view_novelty_bonus=0.25)).bonus(batch)
    elements = 0.5 * first_sightings(model.element_values(batch.obs), batch.is_first,
                                     model.view_match.vocab_size)
    assert torch.allclose(both, elements + views)
