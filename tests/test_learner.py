"""The learner's update refuses non-finite values and names where they came from."""

from __future__ import annotations

import math

import pytest
import torch

from agents.learner import DEFAULT_EPOCHS, Learner, LearnerSettings, NonFiniteError, learner_settings
from agents.rollout import Actor, Unroll
from configs import TrainConfig
from tests.test_rollout import make_agent


def learner_and_batch(lr: float = 1e-3):
    env, model = make_agent()
    actor = Actor(env, model, seed=0)
    batch = Unroll.allocate(6, actor.obs, model.num_actions, model.initial_state(3))
    actor.collect(batch)
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=lr), None, LearnerSettings())
    return learner, batch


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_a_finite_update_passes():
    learner, batch = learner_and_batch()
    stats = learner.update(batch)
    assert learner.updates == 1 and all(math.isfinite(v) for v in stats.values())


def test_a_nan_reward_is_named_and_the_weights_stay():
    learner, batch = learner_and_batch()
    learner.update(batch)
    before = weights(learner.model)
    batch.reward[3, 1] = math.nan
    with pytest.raises(NonFiniteError, match=r"^non-finite reward in the batch \(from the env\) at update 2$"):
        learner.update(batch)
    assert learner.updates == 1
    for name, p in learner.model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_a_nan_loss_term_is_named_and_the_weights_stay():
    learner, batch = learner_and_batch()
    before = weights(learner.model)
    batch.behaviour_logits[2, 0] = math.nan  # V-trace's importance weights: the policy term
    with pytest.raises(NonFiniteError, match=r"^non-finite loss term 'policy' at update 1$"):
        learner.update(batch)
    for name, p in learner.model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_an_infinite_weight_after_the_step_is_named():
    learner, batch = learner_and_batch(lr=math.inf)  # what --learning-rate inf did (now refused)
    message = r"^non-finite weight '[\w.]+' after the optimiser step at update 1$"
    with pytest.raises(NonFiniteError, match=message):
        learner.update(batch)


def test_epochs_take_that_many_optimiser_steps_on_one_batch_and_count_one_update():
    env, model = make_agent()
    actor = Actor(env, model, seed=0)
    batch = Unroll.allocate(6, actor.obs, model.num_actions, model.initial_state(3))
    actor.collect(batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    learner = Learner(model, optimizer, scheduler, LearnerSettings(epochs=3))
    before = weights(model)
    learner.update(batch)
    assert learner.updates == 1 and scheduler.last_epoch == 1
    steps = {int(state["step"]) for state in optimizer.state.values()}
    assert steps == {3}
    assert any(not torch.equal(before[name], p) for name, p in model.named_parameters())


def test_epochs_zero_is_the_agents_default_and_a2c_takes_the_default_config():
    impala, a2c = TrainConfig(), TrainConfig().with_overrides({"agent": "a2c"})  # no epochs error
    assert impala.agent.epochs == a2c.agent.epochs == 0
    assert learner_settings(impala.agent).epochs == DEFAULT_EPOCHS["impala"] == 3
    assert learner_settings(a2c.agent).epochs == DEFAULT_EPOCHS["a2c"] == 1
    assert learner_settings(impala.with_overrides({"epochs": 2}).agent).epochs == 2
