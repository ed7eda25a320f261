"""The ``async`` runtime: actor processes fill shared-memory unroll buffers while the learner learns
(IMPALA's default).

Each actor process owns a vector env and a CPU copy of the policy. Buffers cycle through two queues:
``free`` (indices the actors may fill) and ``full`` (indices ready for the learner, with the episodes
that finished meanwhile). The learner copies a batch out of the buffers, hands them back at once, and
publishes its weights to a shared flat tensor with a version counter; actors load them before each
unroll when the version changed. ``policy_lag`` is the learner's version minus the version that
acted, averaged over the last batch.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time

import torch
import torch.multiprocessing as mp
from torch import nn

from .rollout import Actor, StopRequested, Unroll
from .seeds import actor_seed

WAIT_S = 5.0  # between checks that the actors are alive while the learner waits for a batch
POLL_S = 0.25  # between checks of the learner's stop request while it waits


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def load_flat(model: nn.Module, flat: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def _exit_with_parent(parent_pid: int) -> None:
    """End this process within a second of the learner's death (a SIGKILL or the OOM killer runs no
    handler, and an actor blocked on a queue would otherwise wait for good)."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-learner", daemon=True).start()


def _actor_main(actor_id, env_factory, model, buffers, versions, free, full, weights, version,
                lock, seed, parent_pid, exploration=None):
    # The learner decides when to stop: a SIGINT or SIGTERM sent to the whole process group (Ctrl-C,
    # systemd, scancel, kill -- -PGID) must not kill the actors before it has saved.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_parent(parent_pid)
    torch.set_num_threads(1)
    env = env_factory(seed)
    actor = Actor(env, model, seed, exploration=exploration)
    loaded = -1
    while True:
        index = free.get()
        if index is None:
            break
        if version.value != loaded:
            with lock:
                loaded = version.value
                load_flat(model, weights)
        actor.collect(buffers[index])
        versions[index] = loaded
        full.put((index, env.pop_episodes()))
    env.close()


class AsyncRuntime:
    """``num_actors`` actor processes, ``num_buffers`` shared unroll buffers (default: 2 per actor
    plus a batch), batches of ``batch_size`` unrolls."""

    name = "async"

    def __init__(self, env_factory, model, unroll_length: int, batch_size: int, seed: int,
                 num_actors: int = 1, num_buffers: int | None = None, exploration=None):
        ctx = mp.get_context("spawn")
        probe = env_factory(seed)
        obs, _ = probe.reset(seed=seed)
        num_envs = probe.num_envs
        probe.close()
        self.batch_size = batch_size
        self.frames_per_batch = unroll_length * num_envs * batch_size
        count = num_buffers or 2 * num_actors + batch_size
        actor_model = _cpu_copy(model)
        state = actor_model.initial_state(num_envs)
        self.buffers = [Unroll.allocate(unroll_length, obs, model.num_actions, state).share_memory_()
                        for _ in range(count)]
        self.versions = torch.zeros(count, dtype=torch.long).share_memory_()
        self.weights = flat_parameters(actor_model).share_memory_()
        self.version = ctx.Value("l", 0)
        self.lock = ctx.Lock()
        self.free, self.full = ctx.Queue(), ctx.Queue()
        for index in range(count):
            self.free.put(index)
        self.processes = [
            ctx.Process(target=_actor_main, daemon=True, args=(
                i, env_factory, actor_model, self.buffers, self.versions, self.free, self.full,
                self.weights, self.version, self.lock, actor_seed(seed, i), os.getpid(), exploration))
            for i in range(num_actors)
        ]
        for process in self.processes:
            process.start()
        self._model = model
        self._episodes: list[tuple[float, int, bool | None]] = []
        self._lag = 0.0

    def next_batch(self, should_stop=lambda: False) -> Unroll:
        """The next ``batch_size`` unrolls; raises ``StopRequested`` as soon as ``should_stop()`` while
        waiting (an actor stuck in ``env.step`` must not keep a stopped run alive)."""
        indices, waited = [], 0.0
        while len(indices) < self.batch_size:
            try:
                index, episodes = self.full.get(timeout=POLL_S)
            except queue.Empty:
                if should_stop():
                    self._give_back(indices)
                    raise StopRequested from None
                waited += POLL_S
                if waited >= WAIT_S:
                    waited = 0.0
                    dead = [p.pid for p in self.processes if not p.is_alive()]
                    if dead:
                        raise RuntimeError(f"actor process(es) {dead} died; see their output above") from None
                continue
            indices.append(index)
            self._episodes += episodes
        batch = Unroll.concat([self.buffers[i].clone() for i in indices])
        self._lag = float(self.version.value - self.versions[indices].float().mean())
        self._give_back(indices)
        return batch

    def _give_back(self, indices: list[int]) -> None:
        for index in indices:
            self.free.put(index)

    def publish(self, version: int) -> None:
        """Send the learner model's current weights to the actors as ``version``."""
        with self.lock:
            self.weights.copy_(flat_parameters(self._model))
            self.version.value = version

    def policy_lag(self) -> float:
        return self._lag

    def pop_episodes(self) -> list[tuple[float, int, bool | None]]:
        episodes, self._episodes = self._episodes, []
        return episodes

    def close(self) -> None:
        for _ in self.processes:
            self.free.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():  # stuck (in an env step, say); it ignores SIGTERM, so SIGKILL
                process.kill()
                process.join(timeout=5)


def _cpu_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu()
