"""Repeat exploration (agents/exploration.py): repeats hold one action for their length, end with
their episode, take the share of steps their settings imply, and reach the env through every runtime
while the behaviour logits stay the policy's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.exploration import RepeatExploration
from agents.learner import transitions_of
from agents.rollout import Actor, Unroll
from agents.runtime_async import AsyncRuntime, flat_parameters
from agents.runtime_ray import UnrollWorker
from agents.runtime_sync import SyncRuntime
from envs import make_vector_env
from tests.test_rollout import make_agent
from tests.test_runtime_async import SCRIPTED, make_model
from tests.test_train_agent import FAST, run

POLICY = 99  # not an action of any env here: an action that is still 99 was not overridden


def _policy_actions(num_envs: int) -> torch.Tensor:
    return torch.full((num_envs,), POLICY, dtype=torch.long)


def test_a_repeat_holds_one_action_until_its_length_or_the_episode_ends():
    repeater = RepeatExploration(epsilon=1.0, max_length=1000).repeater(64, 4, seed=0)
    no_reset, reset = np.zeros(64, bool), np.ones(64, bool)
    first, repeated = repeater.apply(_policy_actions(64), reset)
    assert repeated.all()
    assert set(first.tolist()) == {0, 1, 2, 3}
    held = torch.from_numpy(repeater.left >= 30)  # about 97% of draws from 1..1000
    for _ in range(30):
        actions, _ = repeater.apply(_policy_actions(64), no_reset)
    assert held.sum() > 50 and torch.equal(actions[held], first[held])
    changed, _ = repeater.apply(_policy_actions(64), reset)  # every episode starts again: new draws
    assert (changed != first).float().mean() > 0.5


def test_lengths_run_from_one_to_the_longest():
    repeater = RepeatExploration(epsilon=1.0, max_length=5).repeater(2000, 3, seed=1)
    repeater.apply(_policy_actions(2000), np.ones(2000, bool))
    lengths = repeater.left + 1  # the first step of each repeat was taken
    assert set(lengths.tolist()) == {1, 2, 3, 4, 5}


def test_repeats_take_the_share_of_steps_their_settings_imply():
    # Idle for a geometric (1 - eps) / eps steps on average, then repeating for (1 + L) / 2 steps.
    eps, longest, num_envs = 0.05, 10, 1000
    repeater = RepeatExploration(eps, longest).repeater(num_envs, 4, seed=2)
    overridden = []
    for _ in range(300):
        actions, repeated = repeater.apply(_policy_actions(num_envs), np.zeros(num_envs, bool))
        assert torch.equal(repeated, actions != POLICY)
        overridden.append(repeated.float().mean().item())
    mean_length = (1 + longest) / 2
    expected = mean_length / (mean_length + (1 - eps) / eps)
    assert np.mean(overridden[50:]) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize(("settings", "message"), [
    ({"epsilon": 0.0}, r"epsilon must be in \(0, 1\], got 0.0"),
    ({"epsilon": 0.1, "max_length": 0}, "max_length must be a positive integer, got 0"),
])
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(ValueError, match=message):
        RepeatExploration(**settings)


def _runs_hold_one_action(unroll: Unroll) -> bool:
    """Every env's actions are one value from each episode start to the next (the unroll's last
    step is the next unroll's first and has no action yet)."""
    actions, starts = unroll.action[:-1], unroll.is_first[:-1]
    for b in range(actions.shape[1]):
        segment = [actions[0, b]]
        for t in range(1, actions.shape[0]):
            if starts[t, b]:
                segment = []
            segment.append(actions[t, b])
            if len(set(int(a) for a in segment)) > 1:
                return False
    return True


def test_the_actor_takes_the_repeated_actions_marks_them_and_logs_the_policys_logits():
    env, model = make_agent()
    actor = Actor(env, model, seed=0, exploration=RepeatExploration(1.0, 1000))
    unroll = Unroll.allocate(12, actor.obs, model.num_actions, model.initial_state(3))
    actor.collect(unroll)
    assert unroll.is_first[1:-1].any() and _runs_hold_one_action(unroll)
    assert unroll.repeated[:-1].all()  # every action a repeat's: none trains the policy
    assert not transitions_of(unroll, 0.99).policy_mask.any()
    sparse = Actor(env, model, seed=0, exploration=RepeatExploration(0.2, 3))
    sparse.collect(unroll)
    assert 0 < unroll.repeated[:-1].float().mean() < 1
    transitions = transitions_of(unroll, 0.99)
    assert torch.equal(transitions.policy_mask, transitions.mask & ~unroll.repeated[:-1])
    out, _ = model.unroll(unroll.obs, unroll.last_action, unroll.reward, unroll.is_first,
                          unroll.initial_state)
    torch.testing.assert_close(out.logits[:-1], unroll.behaviour_logits[:-1])
    assert torch.equal(unroll.last_action[1:][~unroll.is_first[1:]],
                       unroll.action[:-1][~unroll.is_first[1:]])  # what the env was given
    greedy, logits = actor.step(greedy=True)
    assert torch.equal(greedy, logits.argmax(-1))  # evaluation's argmax is never overridden
    assert not actor.repeated.any() and not actor.repeater.left.any()  # and it ends every repeat


def _scripted_factory(seed):
    return make_vector_env(SCRIPTED, 2, seed=seed)


def test_sync_and_async_runtimes_and_the_ray_worker_hand_the_settings_to_their_actors():
    model, exploration = make_model(), RepeatExploration(1.0, 1000)
    sync = SyncRuntime(_scripted_factory, model, unroll_length=12, batch_size=1, seed=0,
                       exploration=exploration)
    assert _runs_hold_one_action(sync.next_batch())
    sync.close()
    worker = UnrollWorker(_scripted_factory, make_model, unroll_length=12, seed=0, exploration=exploration)
    unroll, _, _ = worker.collect(flat_parameters(model), 0)
    assert _runs_hold_one_action(unroll)
    rt = AsyncRuntime(_scripted_factory, model, unroll_length=12, batch_size=2, seed=0, num_actors=1,
                      exploration=exploration)
    try:
        assert all(_runs_hold_one_action(rt.next_batch()) for _ in range(2))
    finally:
        rt.close()
    plain = SyncRuntime(_scripted_factory, model, unroll_length=12, batch_size=4, seed=0)
    assert not _runs_hold_one_action(plain.next_batch())  # the check can fail: sampled actions vary
    plain.close()


def test_the_flags_reach_a_training_run(tmp_path):
    result = run(*FAST, "--repeat-exploration", "0.2", "--repeat-exploration-length", "6",
                 "--total-frames", "200", "--logdir", str(tmp_path / "run"))
    assert "a 0.2 chance of repeating a random action for 1 to 6 steps" in result.stdout
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "repeat_exploration: 0.2" in saved and "repeat_exploration_length: 6" in saved
