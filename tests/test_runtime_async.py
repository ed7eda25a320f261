"""The async runtime: shared-memory unrolls from actor processes, weight publishing, dead actors."""

from __future__ import annotations

import pytest
import torch

from agents.networks import ActorCritic
from agents.runtime_async import AsyncRuntime
from cores import make_core
from envs import make_vector_env

SCRIPTED = "tests.scripted_envs:ScriptedEpisodes-v0"


def make_model():
    torch.manual_seed(0)
    env = make_vector_env(SCRIPTED, 2, seed=0)
    core = make_core("ur_lstm", ActorCritic.core_input_size(16, 2), 8)
    return ActorCritic(env.observation_description, 2, core, torso_size=16)


def test_batches_replay_exactly_what_the_actor_computed():
    model = make_model()
    rt = AsyncRuntime(_scripted_factory, model, unroll_length=6, batch_size=2, seed=0, num_actors=1)
    try:
        for _ in range(3):
            batch = rt.next_batch()
            assert batch.action.shape == (7, 4)
            out, _ = model.unroll(batch.obs, batch.last_action, batch.reward, batch.is_first,
                                  batch.initial_state)
            torch.testing.assert_close(out.logits[:-1], batch.behaviour_logits[:-1])
        assert rt.pop_episodes()
    finally:
        rt.close()


def test_published_weights_reach_the_actors_and_lag_is_measured():
    model = make_model()
    rt = AsyncRuntime(_scripted_factory, model, unroll_length=4, batch_size=1, seed=0, num_actors=1)
    try:
        with torch.no_grad():
            model.policy.bias.fill_(5.0)
            model.policy.weight.zero_()
        rt.publish(1)
        seen_new = False
        for _ in range(12):
            batch = rt.next_batch()
            if torch.allclose(batch.behaviour_logits[0], torch.full_like(batch.behaviour_logits[0], 5.0)):
                seen_new = True
                assert rt.policy_lag() == 0.0
                break
        assert seen_new
    finally:
        rt.close()


def test_a_dead_actor_is_reported_not_waited_for():
    model = make_model()
    rt = AsyncRuntime(_scripted_factory, model, unroll_length=4, batch_size=1, seed=0, num_actors=1)
    try:
        rt.next_batch()
        for process in rt.processes:
            process.kill()
            process.join()
        with pytest.raises(RuntimeError, match="died"):
            for _ in range(20):  # buffers already full may still arrive first
                rt.next_batch()
    finally:
        rt.close()


def _scripted_factory(seed):
    return make_vector_env(SCRIPTED, 2, seed)
