"""The ``sync`` runtime: one process, one vector env, acting and learning in turn (A2C's default).

The actor uses the learner's model itself, so there is no policy lag; when the learner's model is
not on the CPU, the actor acts with a CPU copy refreshed after every update (still no lag).
"""

from __future__ import annotations

import copy

from .rollout import Actor, StopRequested, Unroll


class SyncRuntime:
    """``next_batch()`` collects ``batch_size`` unrolls of ``unroll_length`` from one vector env."""

    name = "sync"

    def __init__(self, env_factory, model, unroll_length: int, batch_size: int, seed: int,
                 exploration=None):
        self.env = env_factory(seed)
        self.learner_model = model
        on_cpu = next(model.parameters()).device.type == "cpu"
        self.model = model if on_cpu else copy.deepcopy(model).cpu()
        self.actor = Actor(self.env, self.model, seed, exploration=exploration)
        example = self.actor.obs
        self.buffers = [
            Unroll.allocate(unroll_length, example, model.num_actions,
                            self.model.initial_state(self.env.num_envs))
            for _ in range(batch_size)
        ]
        self.frames_per_batch = unroll_length * self.env.num_envs * batch_size

    def next_batch(self, should_stop=lambda: False) -> Unroll:
        """``batch_size`` unrolls; ``StopRequested`` between them once ``should_stop()``. (An env stuck
        inside one step is the caller's to interrupt: ``train_agent`` raises ``StopRequested`` from its
        signal handler at a second signal.)"""
        for buffer in self.buffers:
            if should_stop():
                raise StopRequested
            self.actor.collect(buffer)
        return Unroll.concat(self.buffers)

    def publish(self, version: int) -> None:
        """Refresh the actor's CPU copy, if it has one."""
        if self.model is not self.learner_model:
            self.model.load_state_dict(self.learner_model.state_dict())

    def policy_lag(self) -> float:
        return 0.0

    def pop_episodes(self) -> list[tuple[float, int, bool | None]]:
        return self.env.pop_episodes()

    def close(self) -> None:
        self.env.close()
