"""Env ids: own tasks, MiniGrid, POPGym, module:Env, and one-line errors."""

from __future__ import annotations

import pytest

from envs import MissingExtraError, available_envs, make_env
from envs.registry import popgym_installed


def test_available_envs_lists_the_memory_tasks():
    ids = available_envs()
    for env_id in ("PassiveVisualMatch-Short-v0", "ActiveVisualMatch-Long-v0",
                   "MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS17Random-v0"):
        assert env_id in ids
    assert any(i.startswith("popgym-") for i in ids) == popgym_installed()


def test_unknown_id_names_the_closest():
    with pytest.raises(ValueError, match=r"unknown env 'MiniGrid-MemoryS8-v0'; closest: MiniGrid-Memory"):
        make_env("MiniGrid-MemoryS8-v0")


def test_module_form_and_its_errors():
    env = make_env("tests.scripted_envs:ScriptedEpisodes-v0")
    assert set(env.observation_space.spaces) == {"obs"}
    with pytest.raises(ValueError, match="cannot import the module of env 'nope_module:X-v0'"):
        make_env("nope_module:X-v0")
    with pytest.raises(ValueError, match="did not register an env named 'Other-v0'"):
        make_env("tests.scripted_envs:Other-v0")


def test_an_env_module_that_raises_on_import_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_env_module.py").write_text("raise RuntimeError('no licence server')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="^importing the module of env 'broken_env_module:X-v0' raised "
                                         "RuntimeError: no licence server$"):
        make_env("broken_env_module:X-v0")


def test_bad_env_argument_is_one_line():
    with pytest.raises(ValueError, match="bad argument for env 'PassiveVisualMatch-v0'"):
        make_env("PassiveVisualMatch-v0", colour="red")
    with pytest.raises(ValueError, match=r"^bad argument for env 'PassiveVisualMatch-v0' \(delay='abc'\): "):
        make_env("PassiveVisualMatch-v0", delay="abc")


def test_any_gymnasium_id_works():
    env = make_env("CartPole-v1")
    obs, _ = env.reset(seed=0)
    assert obs["obs"].dtype.name == "float32" and obs["obs"].shape == (4,)


def test_missing_popgym_extra_says_what_to_install(monkeypatch):
    import envs.registry

    monkeypatch.setattr(envs.registry, "popgym_installed", lambda: False)
    with pytest.raises(MissingExtraError, match=r"pip install 'gated-rl\[popgym\]'"):
        make_env("popgym-RepeatPreviousEasy-v0")


@pytest.mark.skipif(not popgym_installed(), reason="the popgym extra is not installed")
def test_popgym_tasks_come_as_dicts():
    env = make_env("popgym-CountRecallEasy-v0")
    obs, _ = env.reset(seed=0)
    assert obs["obs"].dtype.name == "int64"
    env = make_env("popgym-AutoencodeEasy-v0")  # a Tuple space becomes keys "0", "1"
    assert set(env.observation_space.spaces) == {"0", "1"}


def test_minigrid_action_sets():
    assert make_env("MiniGrid-MemoryS7-v0", actions="all").action_space.n == 7
    assert make_env("MiniGrid-MemoryS7-v0", actions="navigation").action_space.n == 3
    # auto: the three that do something on the Memory tasks, all seven where the others act
    assert make_env("MiniGrid-MemoryS13Random-v0").action_space.n == 3
    assert make_env("MiniGrid-DoorKey-5x5-v0").action_space.n == 7
    assert make_env("PassiveVisualMatch-Easy-v0", actions="all").action_space.n == 4
    with pytest.raises(ValueError, match="unknown actions 'move'; expected one of auto, all, navigation"):
        make_env("MiniGrid-MemoryS7-v0", actions="move")
    with pytest.raises(ValueError, match="applies to MiniGrid ids only"):
        make_env("PassiveVisualMatch-Easy-v0", actions="navigation")
