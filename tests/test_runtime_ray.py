"""The ray runtime on a local Ray instance (2 CPUs): replayable unrolls, weights through the object
store, an actor killed mid-run is restarted and the run goes on."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from agents.runtime_ray import RayRuntime
from envs import make_vector_env
from tests.processes import kill_group
from tests.test_runtime_async import SCRIPTED, make_model

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runtime():
    """One local Ray instance and one runtime (2 actors) shared by the tests, in file order: starting
    Ray worker processes is the slow part. Three logical CPUs: one actor per CPU, plus one for the
    last test's runtime."""
    ray.init(address="local", num_cpus=3, include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    model = make_model()
    rt = RayRuntime(_scripted_factory, model, unroll_length=6, batch_size=2, seed=0, num_actors=2)
    yield rt, model
    rt.close()
    assert ray.is_initialized()  # a runtime leaves a Ray instance it did not start running
    ray.shutdown()


def _replays(model, batch, rt=None) -> None:
    """The learner's re-run reproduces the actor's logits (when it acted with the current weights)."""
    if rt is not None and rt.policy_lag() != 0:
        return
    out, _ = model.unroll(batch.obs, batch.last_action, batch.reward, batch.is_first, batch.initial_state)
    torch.testing.assert_close(out.logits[:-1], batch.behaviour_logits[:-1])


def test_batches_replay_exactly_what_the_actor_computed(runtime):
    rt, model = runtime
    for _ in range(3):
        batch = rt.next_batch()
        assert batch.action.shape == (7, 4)
        _replays(model, batch)
    assert rt.pop_episodes()


def test_published_weights_reach_the_actors_and_lag_is_measured(runtime):
    rt, model = runtime
    with torch.no_grad():
        model.policy.bias.fill_(5.0)
        model.policy.weight.zero_()
    rt.publish(1)
    for _ in range(6):  # requests sent before the publish may still arrive first
        batch = rt.next_batch()
        if rt.policy_lag() == 0.0:
            break
    assert rt.policy_lag() == 0.0
    torch.testing.assert_close(batch.behaviour_logits[0], torch.full_like(batch.behaviour_logits[0], 5.0))


def test_a_killed_actor_is_restarted_and_the_run_goes_on(runtime):
    rt, model = runtime
    before = rt.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while rt.lost_requests == 0 and time.monotonic() < deadline:
        _replays(model, rt.next_batch(), rt)
    assert rt.lost_requests >= 1
    replayed = 0
    while replayed < 4 and time.monotonic() < deadline:  # the restarted actor's unrolls replay too
        batch = rt.next_batch()
        replayed += rt.policy_lag() == 0
        _replays(model, batch, rt)
    assert replayed == 4
    after = _pids_once_restarted(rt, deadline)
    assert after[1] == before[1] and after[0] not in before


def _pids_once_restarted(rt, deadline):
    while True:
        try:
            return rt.worker_pids()
        except ray.exceptions.RayActorError:  # still restarting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _scripted_factory(seed):
    return make_vector_env(SCRIPTED, 2, seed)


def test_an_actor_that_cannot_start_stops_the_run_with_an_error(runtime):
    model = make_model()
    factory = functools.partial(_failing_in_actors, os.getpid())
    rt = RayRuntime(factory, model, unroll_length=4, batch_size=1, seed=0, num_actors=1)
    try:
        with pytest.raises(RuntimeError, match="ray actor 0 died and cannot restart"):
            rt.next_batch()
    finally:
        rt.close()


def _failing_in_actors(driver_pid, seed):
    if os.getpid() != driver_pid:
        raise OSError("this env cannot start on the actor's machine")
    return _scripted_factory(seed)


def test_the_callers_signal_handlers_survive_ray_init(monkeypatch):
    """ray.init installs a SIGTERM handler that exits without saving; RayRuntime keeps Ray's Python
    handler out while ray.init runs (a SIGTERM then reaches the caller's), tells Ray's C++ core to
    leave SIGTERM alone, puts the caller's handlers back even when its start fails after ray.init
    (where Ray set one another way), and then shuts down the Ray it started."""
    import types

    import agents.runtime_ray as runtime_ray

    def ray_sigterm_handler(handler):  # Ray's own installer (ray._private.utils.set_sigterm_handler)
        signal.signal(signal.SIGTERM, handler)

    class Started(Exception):  # noqa: N818 (stops the test, not an error)
        pass

    class FakeRay:
        shutdowns = 0
        _private = types.SimpleNamespace(utils=types.SimpleNamespace(set_sigterm_handler=ray_sigterm_handler),
                                         ray_constants=types.SimpleNamespace(
                                             RAY_DISABLE_FAILURE_SIGNAL_HANDLER=False))

        @staticmethod
        def is_initialized():
            return False

        @classmethod
        def shutdown(cls):
            cls.shutdowns += 1

        @classmethod
        def init(cls, **_):
            cls._private.utils.set_sigterm_handler(lambda *_: None)  # as ray.init does (it calls sys.exit)
            assert signal.getsignal(signal.SIGTERM) is caller  # kept out: a SIGTERM now is the caller's
            assert os.environ[runtime_ray.NO_CRASH_HANDLER] == "1"  # for the processes it starts
            assert cls._private.ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER is True  # for this one
            signal.signal(signal.SIGTERM, lambda *_: None)  # set some other way: put back after
            signal.signal(signal.SIGINT, lambda *_: None)

    def caller(*_):
        pass

    def env_factory(_seed):
        assert signal.getsignal(signal.SIGTERM) is caller  # already back when the actors' envs start
        raise Started

    monkeypatch.setattr(runtime_ray, "import_ray", lambda: FakeRay)
    monkeypatch.delenv(runtime_ray.NO_CRASH_HANDLER, raising=False)
    previous = {s: signal.signal(s, caller) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(Started):
            RayRuntime(env_factory, make_model(), unroll_length=4, batch_size=1, seed=0)
        assert signal.getsignal(signal.SIGTERM) is caller and signal.getsignal(signal.SIGINT) is caller
        assert FakeRay.shutdowns == 1  # the Ray it started does not outlive the failed start
        assert FakeRay._private.utils.set_sigterm_handler is ray_sigterm_handler
        assert runtime_ray.NO_CRASH_HANDLER not in os.environ  # only while ray.init runs
        assert FakeRay._private.ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER is False
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_ray_init_leaves_no_crash_handler_on_sigterm_in_the_driver(tmp_path):
    """Ray's C++ core installs a crash handler when the driver connects (in ``ray.init``); on a SIGTERM
    it dumped a stack trace and at times aborted the run (status -6, seen in CI while the test of the
    run's start in test_train_agent.py signalled it). Setting the environment variable while
    ``ray.init`` ran did not keep it out (the driver reads the constant Ray took from the environment
    at import). Deterministic: the SIGTERM is sent once ``ray.init`` has returned, still in the block."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, signal, time\n"
        "from agents.runtime_ray import import_ray, keeping_signal_handlers\n"
        "ray = import_ray()\n"
        "got = []\n"
        "signal.signal(signal.SIGTERM, lambda signum, _: got.append(signum))\n"
        "with keeping_signal_handlers(ray):\n"
        "    ray.init(address='local', num_cpus=1, include_dashboard=False, configure_logging=False)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "ray.shutdown()\n"
        "print('handled', got)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:  # a probe that hangs or dies early must not leave Ray's processes of its session behind
        kill_group(proc)
    assert proc.returncode == 0 and "handled [15]" in out, (proc.returncode, err[-2000:])
    assert "SIGTERM received" not in err, err[-2000:]
