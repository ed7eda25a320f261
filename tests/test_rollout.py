"""Actor bookkeeping: the learner re-runs exactly what the actor saw, across unrolls and resets."""

from __future__ import annotations

import torch

from agents.learner import transitions_of
from agents.networks import ActorCritic
from agents.rollout import Actor, EpisodePlayer, Unroll
from cores import make_core, map_state
from envs import make_env, make_vector_env

SCRIPTED = "tests.scripted_envs:ScriptedEpisodes-v0"


def make_agent(core_name="ur_lstm", env_id=SCRIPTED, num_envs=3):
    torch.manual_seed(0)
    env = make_vector_env(env_id, num_envs, seed=0)
    num_actions = int(env.single_action_space.n)
    core = make_core(core_name, ActorCritic.core_input_size(32, num_actions), 16)
    model = ActorCritic(env.observation_description, num_actions, core, torso_size=32)
    return env, model


def test_learner_rerun_matches_the_actor_step_by_step():
    env, model = make_agent()
    actor = Actor(env, model, seed=0)
    T = 6
    buffers = [Unroll.allocate(T, actor.obs, model.num_actions, model.initial_state(3)) for _ in range(3)]
    for unroll in buffers:
        actor.collect(unroll)
        out, final = model.unroll(unroll.obs, unroll.last_action, unroll.reward, unroll.is_first,
                                  unroll.initial_state)
        # Same weights: the learner's logits at x_0..x_{T-1} are the behaviour logits.
        torch.testing.assert_close(out.logits[:-1], unroll.behaviour_logits[:-1])
    assert buffers[0].is_first.any() and buffers[1].is_first[1:].any()  # resets inside unrolls


def test_each_unroll_starts_from_the_state_the_actor_held():
    env, model = make_agent()
    actor = Actor(env, model, seed=0)
    T = 5
    first = Unroll.allocate(T, actor.obs, model.num_actions, model.initial_state(3))
    second = Unroll.allocate(T, actor.obs, model.num_actions, model.initial_state(3))
    actor.collect(first)
    held = map_state(torch.clone, actor.state)
    actor.collect(second)
    for a, b in zip(second.initial_state, held, strict=True):
        assert torch.equal(a, b)
    # ... which is the state after x_0..x_{T-1} of the first unroll, and x_T of the first is x_0
    # of the second.
    _, after = model.unroll({k: v[:-1] for k, v in first.obs.items()}, first.last_action[:-1],
                            first.reward[:-1], first.is_first[:-1], first.initial_state)
    for a, b in zip(second.initial_state, after, strict=True):
        torch.testing.assert_close(a, b)
    for key in first.obs:
        assert torch.equal(first.obs[key][-1], second.obs[key][0])


def test_transitions_mask_the_ignored_action_and_bootstrap_truncation():
    env, model = make_agent(num_envs=1)
    actor = Actor(env, model, seed=0)
    unroll = Unroll.allocate(12, actor.obs, model.num_actions, model.initial_state(1))
    actor.collect(unroll)
    batch = transitions_of(unroll, discount=0.9)
    is_first = unroll.is_first[:, 0]
    terminated = unroll.terminated[:, 0].nonzero().flatten().tolist()
    truncated = unroll.truncated[:, 0].nonzero().flatten().tolist()
    assert terminated and truncated  # the scripted env alternates the two kinds of ending
    for t in terminated:
        assert batch.discounts[t - 1, 0] == 0.0  # no bootstrap past a termination
    for t in truncated:
        assert batch.discounts[t - 1, 0] == 0.9  # bootstrap from V(x_t) of the truncated episode
    for t in terminated + truncated:
        if t < 12:
            assert is_first[t + 1] and not batch.mask[t, 0]  # the next action is ignored
    assert batch.mask[:, 0].tolist() == (~is_first[1:]).tolist()
    assert (unroll.last_action[unroll.is_first] == 0).all() and (unroll.reward[unroll.is_first] == 0).all()


def test_episode_player_carries_the_state_through_an_episode_like_an_unroll():
    _, model = make_agent()
    env = make_env(SCRIPTED)
    player = EpisodePlayer(model, env)
    logits, actions = zip(*player.steps(seed=0), strict=True)
    # Episode 0 of the scripted env: 3 steps, observations [0, t], rewards t, ends by termination.
    assert len(logits) == 3 and player.terminated and not player.truncated
    assert player.reward == 3.0 and player.info == {"success": True}
    obs = {"obs": torch.tensor([[[0.0, t]] for t in range(3)])}
    last_action = torch.tensor([[0], [actions[0]], [actions[1]]])
    reward = torch.tensor([[0.0], [1.0], [2.0]])
    is_first = torch.tensor([[True], [False], [False]])
    out, _ = model.unroll(obs, last_action, reward, is_first, model.initial_state(1))
    torch.testing.assert_close(torch.stack(logits), out.logits[:, 0], atol=1e-5, rtol=1e-5)


def test_step_fields_are_every_per_step_field_of_an_unroll():
    # clone/to/concat/share_memory_ go through STEP_FIELDS: a field left out would not be shared
    # between actor processes and the learner
    from dataclasses import fields

    from agents.rollout import STEP_FIELDS

    assert set(STEP_FIELDS) == {f.name for f in fields(Unroll)} - {"obs", "initial_state"}


def test_concat_keeps_a_plain_tuple_state_whole():
    """A user core's state may be a plain tuple (not a NamedTuple), of one or several tensors: joining
    unrolls joins each leaf along its batch axis and keeps the leaves apart."""
    obs = {"obs": torch.zeros(2, 3)}
    for leaves in (2, 1):
        parts = []
        for k in range(3):
            unroll = Unroll.allocate(2, obs, 2, tuple(torch.zeros(2, 4) for _ in range(leaves)))
            for i, leaf in enumerate(unroll.initial_state):
                leaf.fill_(10 * k + i)
            parts.append(unroll)
        joined = Unroll.concat(parts)
        assert type(joined.initial_state) is tuple and len(joined.initial_state) == leaves
        for i, leaf in enumerate(joined.initial_state):
            assert leaf.shape == (6, 4)
            assert leaf[:, 0].tolist() == [10 * k + i for k in range(3) for _ in range(2)]
        assert joined.reward.shape == (3, 6)
