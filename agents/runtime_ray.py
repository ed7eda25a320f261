"""The ``ray`` runtime: the async runtime's actors as Ray actors, on one machine or a cluster.

Each Ray actor owns a vector env and a CPU copy of the policy and returns whole unrolls (with the core
state from before their first step, see ``agents.rollout``) plus the episodes that finished. The
learner keeps ``requests_per_actor`` unroll requests in flight per actor, takes the first ready ones
with ``ray.wait``, and sends the next request with a reference to the newest weights in the object
store, so weights travel once per version, not once per request. An actor that dies is restarted by
Ray (``max_restarts=-1``) and its lost request is sent again; the run goes on.

Ray is an optional extra (``pip install 'gated-rl[ray]'``); this module imports it lazily.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import torch

from . import reaper
from .rollout import Actor, StopRequested, Unroll
from .runtime_async import POLL_S, flat_parameters, load_flat
from .seeds import actor_seed

log = logging.getLogger(__name__)

STALL_WARNING_S = 60.0  # between warnings while no unroll arrives
MAX_FAILURES_PER_ACTOR = 10  # lost requests in a row, per actor, before the run gives up


def import_ray():
    """``ray``, or a one-line ``ImportError`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ImportError("runtime 'ray' needs Ray: pip install 'gated-rl[ray]'") from None
    return ray


def start_reaper() -> subprocess.Popen | None:
    """Make sure the local Ray instance this process started does not outlive it. Ray stops its own
    processes when the driver dies, even by SIGKILL, except (measured with Ray 2.x here) its dashboard
    and runtime-env agents, which are left running for good. This records every process below this
    one and starts a watcher that kills what is left of them once this process is gone. Linux only
    (``/proc``); None elsewhere."""
    if not os.path.isdir("/proc"):
        return None
    processes = reaper.descendants(os.getpid())
    return subprocess.Popen([sys.executable, reaper.__file__, str(os.getpid()), json.dumps(processes)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """A one-line ``ValueError`` where ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) does not
    accept a connection within ``timeout_s`` (``ray.init`` would retry for minutes); an empty address
    or ``auto`` passes (Ray starts or finds the cluster itself)."""
    if address in ("", "auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"ray_address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ValueError(f"no Ray cluster answers at {address!r} ({error.strerror or error}); start one "
                         "with `ray start --head`, or leave ray_address empty for a local one") from None


#: Ray's switch for the C++ crash handler (absl's failure signal handler) that its core installs when
#: a process connects; on a SIGTERM it dumped a stack trace and, at times, aborted the process. The
#: driver reads it from ``ray._private.ray_constants`` (read from the environment when Ray is
#: imported), the processes ``ray.init`` starts read it from their environment.
NO_CRASH_HANDLER = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"


@contextlib.contextmanager
def keeping_signal_handlers(ray):
    """The caller's SIGINT and SIGTERM handlers stay in charge while ``ray.init`` runs in the block,
    and are put back as they were when it ends. ``ray.init`` installs SIGTERM handlers of its own: a
    Python one (``sys.exit``: a SIGTERM raised ``SystemExit`` wherever the start was, leaving
    half-started Ray processes behind and no checkpoint) and, from its C++ core, a crash handler
    (``NO_CRASH_HANDLER``: a stack dump, at times an abort); under either, a caller's handler that
    saves before exiting never ran. The Python one is kept out by replacing Ray's private
    ``set_sigterm_handler`` for the block, the C++ one by setting Ray's private constant
    ``NO_CRASH_HANDLER`` for the block (where either name is missing, that handler is not kept out,
    and the Python handlers are still put back after). The Ray processes started in the block inherit
    ``NO_CRASH_HANDLER`` from the environment, so their crashes are reported without Ray's stack dump.
    Outside the main thread (where handlers cannot be set) only the C++ handler is kept out."""
    saved_env = os.environ.get(NO_CRASH_HANDLER)
    os.environ[NO_CRASH_HANDLER] = "1"
    private = getattr(ray, "_private", None)
    constants = getattr(private, "ray_constants", None)
    saved_constant = getattr(constants, NO_CRASH_HANDLER, None)
    if saved_constant is not None:
        setattr(constants, NO_CRASH_HANDLER, True)
    main = threading.current_thread() is threading.main_thread()
    utils = getattr(private, "utils", None)
    installer = getattr(utils, "set_sigterm_handler", None) if main else None
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    if installer is not None:
        utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        if installer is not None:
            utils.set_sigterm_handler = installer
        if saved_constant is not None:
            setattr(constants, NO_CRASH_HANDLER, saved_constant)
        if saved_env is None:
            os.environ.pop(NO_CRASH_HANDLER, None)
        else:
            os.environ[NO_CRASH_HANDLER] = saved_env
        for signum, handler in saved.items():
            if handler is not None:  # None: set outside Python, cannot be put back from here
                signal.signal(signum, handler)


class UnrollWorker:
    """What runs inside one Ray actor: a vector env, a CPU policy, one unroll buffer."""

    def __init__(self, env_factory, model_factory, unroll_length: int, seed: int, exploration=None):
        torch.set_num_threads(1)
        self.env = env_factory(seed)
        self.model = model = model_factory()  # its weights arrive with the first request
        self.actor = Actor(self.env, model, seed, exploration=exploration)
        self.buffer = Unroll.allocate(unroll_length, self.actor.obs, model.num_actions,
                                      model.initial_state(self.env.num_envs))
        self.version = -1

    def collect(self, weights: torch.Tensor, version: int):
        """One unroll acted with ``weights`` (loaded when ``version`` changed): ``(unroll, version,
        episodes)``."""
        if version != self.version:
            load_flat(self.model, weights)
            self.version = version
        self.actor.collect(self.buffer)
        return self.buffer, version, self.env.pop_episodes()

    def pid(self) -> int:
        import os

        return os.getpid()


class RayRuntime:
    """``num_actors`` Ray actors; batches of ``batch_size`` unrolls in arrival order.

    ``address``: an existing cluster (``auto``, or what ``ray start --head`` prints) or ``None`` to
    start a local Ray instance that this runtime also shuts down. ``model_factory``: a picklable zero-argument
    callable building the policy's architecture on the actors (the weights follow from the object
    store); without one the actors get a pickled copy of ``model``.
    """

    name = "ray"

    def __init__(self, env_factory, model, unroll_length: int, batch_size: int, seed: int,
                 num_actors: int = 1, address: str | None = None, requests_per_actor: int = 2,
                 model_factory=None, exploration=None):
        ray = self.ray = import_ray()
        self._owns_ray = not ray.is_initialized() and address is None
        if not ray.is_initialized():  # "local": a new instance even where a cluster is running
            with keeping_signal_handlers(ray):
                ray.init(address=address or "local", include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=True, configure_logging=False)
        try:
            self._start(env_factory, model, unroll_length, batch_size, seed, num_actors, requests_per_actor,
                        model_factory, exploration)
        except BaseException:  # a start that fails leaves no Ray of its own running
            if self._owns_ray:
                ray.shutdown()
            raise

    def _start(self, env_factory, model, unroll_length, batch_size, seed, num_actors, requests_per_actor,
               model_factory, exploration) -> None:
        ray = self.ray
        probe = env_factory(seed)
        num_envs = probe.num_envs
        probe.close()
        self.batch_size = batch_size
        self.frames_per_batch = unroll_length * num_envs * batch_size
        self._model = model
        cpus = ray.available_resources().get("CPU", 0)
        if num_actors > cpus:
            log.warning("%d ray actors need a CPU each but the cluster has %g free; the others wait "
                        "until CPUs join", num_actors, cpus)
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(UnrollWorker)
        if model_factory is None:
            model_factory = functools.partial(copy.deepcopy, copy.deepcopy(model).cpu())
        self.workers = [remote.remote(env_factory, model_factory, unroll_length, actor_seed(seed, i),
                                      exploration)
                        for i in range(num_actors)]
        self.version = 0
        self.weights_ref = ray.put(flat_parameters(model).cpu())
        self.in_flight: dict = {}  # object ref -> worker index
        for index in range(num_actors):
            for _ in range(requests_per_actor):
                self._request(index)
        self.lost_requests = 0  # requests lost to dead actors (a death loses all its in-flight ones)
        self._failures_in_a_row = 0
        self._episodes: list[tuple[float, int, bool | None]] = []
        self._lag = 0.0
        if self._owns_ray:  # after the actors exist, so that every process Ray starts is recorded
            ray.get([worker.pid.remote() for worker in self.workers])
            self._reaper = start_reaper()

    def _request(self, index: int) -> None:
        ref = self.workers[index].collect.remote(self.weights_ref, self.version)
        self.in_flight[ref] = index

    def next_batch(self, should_stop=lambda: False) -> Unroll:
        """The next ``batch_size`` unrolls; ``StopRequested`` as soon as ``should_stop()`` while waiting
        (the unrolls still in flight are dropped with the actors at ``close``)."""
        ray = self.ray
        unrolls, versions, since = [], [], time.monotonic()
        warn_at = since + STALL_WARNING_S
        while len(unrolls) < self.batch_size:
            ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=POLL_S)
            if not ready:
                if should_stop():
                    raise StopRequested
                if time.monotonic() >= warn_at:
                    warn_at += STALL_WARNING_S
                    waited = time.monotonic() - since
                    log.warning("no unroll from any ray actor for %d s (free resources: %s)", waited,
                                ray.available_resources())
                continue
            since = time.monotonic()  # the stall clock restarts with every unroll that arrives
            warn_at = since + STALL_WARNING_S
            ref = ready[0]
            index = self.in_flight.pop(ref)
            try:
                unroll, version, episodes = ray.get(ref)
            except ray.exceptions.ActorDiedError as error:  # for good: its constructor failed
                first = str(error).strip().splitlines()[0]
                raise RuntimeError(f"ray actor {index} died and cannot restart: {first}") from None
            except ray.exceptions.RayActorError as error:
                # Ray restarts the actor (fresh env and core state, so the next unroll starts new
                # episodes); the lost request is sent again, unless actors only ever fail.
                self.lost_requests += 1
                self._failures_in_a_row += 1
                if self._failures_in_a_row > MAX_FAILURES_PER_ACTOR * len(self.workers):
                    raise RuntimeError(f"ray actors failed {self._failures_in_a_row} requests in a row "
                                       f"without one unroll; last error: {error}") from None
                log.warning("ray actor %d died (%s): Ray restarts it; its request is sent again", index,
                            type(error).__name__)
                self._request(index)
                continue
            self._failures_in_a_row = 0
            self._request(index)
            unrolls.append(unroll)
            versions.append(version)
            self._episodes += episodes
        self._lag = self.version - sum(versions) / len(versions)
        return Unroll.concat(unrolls)

    def publish(self, version: int) -> None:
        """Put the learner model's weights in the object store as ``version``."""
        self.version = version
        self.weights_ref = self.ray.put(flat_parameters(self._model).cpu())

    def policy_lag(self) -> float:
        return self._lag

    def pop_episodes(self) -> list[tuple[float, int, bool | None]]:
        episodes, self._episodes = self._episodes, []
        return episodes

    def worker_pids(self) -> list[int]:
        return self.ray.get([w.pid.remote() for w in self.workers])

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker, no_restart=True)
        self.in_flight.clear()
        if self._owns_ray:
            self.ray.shutdown()
