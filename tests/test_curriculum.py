"""The delay curriculum (agents/curriculum.py): its stages, and a run that moves through them."""

from __future__ import annotations

import json

import pytest
import torch

from agents.curriculum import DelayCurriculum
from envs import env_delay
from tests.processes import kill_group
from tests.test_train_agent import run


def test_stages_are_the_shorter_delays_then_the_task():
    curriculum = DelayCurriculum([15, 60, 250], task_delay=60, threshold=0.9, window=4)
    assert curriculum.delays == [15] and curriculum.delay == 15 and not curriculum.final
    assert curriculum.env_options({"delay": 60, "min_delay": 30, "cue_steps": 5}) == {
        "delay": 15, "min_delay": 15, "cue_steps": 5}
    curriculum.advance(frames=1000)
    assert curriculum.final and curriculum.delay == 60
    assert curriculum.env_options({"min_delay": 30}) == {"min_delay": 30}  # the task's own options
    assert DelayCurriculum([15, 60], task_delay=None, threshold=0.9).delays == []  # no delay, no stages
    assert DelayCurriculum([], task_delay=250, threshold=0.9).final


def test_stage_options_go_on_top_of_the_tasks_before_the_task_only():
    curriculum = DelayCurriculum([15], task_delay=60, threshold=0.9, stage_options={"cue_steps": 20})
    assert curriculum.env_options({"delay": 60, "cue_steps": 12, "num_pads": 3}) == {
        "delay": 15, "cue_steps": 20, "num_pads": 3}
    assert "stages with cue_steps=20" in curriculum.describe()
    curriculum.advance(frames=1000)
    assert curriculum.env_options({"delay": 60, "cue_steps": 12}) == {"delay": 60, "cue_steps": 12}


def test_a_stage_passes_on_a_full_window_at_the_threshold():
    curriculum = DelayCurriculum([5], task_delay=10, threshold=0.8, window=4)
    assert not curriculum.passed(1.0, episodes=3, frames=10)  # the window is not full yet
    assert not curriculum.passed(0.75, episodes=4, frames=20)
    assert not curriculum.passed(None, episodes=4, frames=20)  # no score
    assert curriculum.passed(0.8, episodes=4, frames=30)
    curriculum.advance(frames=30)
    assert not curriculum.passed(1.0, episodes=100, frames=50)  # the final stage: nothing to pass


def test_a_stage_passes_once_its_window_held_the_threshold_over_hold_windows_of_episodes():
    """hold 3, windows of 4: after the first window at the threshold, 8 more episodes must end with
    the window never below it; an update that ended no episode adds nothing."""
    curriculum = DelayCurriculum([5], task_delay=10, threshold=0.8, window=4, hold=3)
    updates = [(0.9, 4), (0.9, 4), (0.5, 4),  # below the threshold: the stretch starts again
               (0.9, 4), (0.9, 0), (0.9, 5)]  # the first window at it, nothing new, 5 episodes
    assert not any(curriculum.passed(score, episodes=4, frames=10 * i, new_episodes=new)
                   for i, (score, new) in enumerate(updates))
    assert curriculum.passed(0.85, episodes=4, frames=60, new_episodes=3)  # 8: two windows more
    assert "held over 3 windows" in curriculum.describe()
    curriculum.advance(frames=60)
    assert not curriculum.passed(0.9, episodes=4, frames=70, new_episodes=100)  # the task never passes


def test_a_stage_trains_its_minimum_frames_before_it_passes():
    curriculum = DelayCurriculum([5, 8], task_delay=10, threshold=0.5, window=2, min_frames=100)
    assert not curriculum.passed(1.0, episodes=2, frames=99)
    assert curriculum.passed(1.0, episodes=2, frames=100)
    curriculum.advance(frames=130)  # the next stage's count starts at the move
    assert not curriculum.passed(1.0, episodes=2, frames=200)
    restored = DelayCurriculum([5, 8], task_delay=10, threshold=0.5, window=2, min_frames=100)
    restored.load_state_dict(curriculum.state_dict())  # a resume keeps where the stage began
    assert restored.delay == 8 and not restored.passed(1.0, episodes=2, frames=229)
    assert restored.passed(1.0, episodes=2, frames=230)


def test_the_stage_survives_a_checkpoint():
    curriculum = DelayCurriculum([15, 60], task_delay=250, threshold=0.9)
    curriculum.advance(frames=1000)
    restored = DelayCurriculum([15, 60], task_delay=250, threshold=0.9)
    restored.load_state_dict(curriculum.state_dict())
    assert restored.delay == 60
    restored.load_state_dict({"stage": 7})  # never past the task
    assert restored.final and restored.delay == 250


def test_env_delay_reads_the_envs_own():
    assert env_delay("PassiveVisualMatch-Long-v0") == 250
    assert env_delay("CueRecall-v0", delay=40) == 40
    assert env_delay("MiniGrid-MemoryS7-v0") is None


FAST = ["--env", "CueRecall-v0", "--env-option", "delay=6", "--num-envs", "16", "--unroll-length", "80",
        "--hidden-size", "16", "--torso-size", "16", "--threads", "1", "--curriculum-hold", "1"]


@pytest.mark.parametrize("runtime", ["sync", "async"])
def test_a_run_moves_through_the_stages_and_resumes_at_its_stage(tmp_path, runtime):
    """One update collects over 400 episodes at delay 1 (3 steps each) and 250 at delay 3: with a
    threshold that chance passes, each update passes one stage."""
    logdir = tmp_path / "run"
    common = [*FAST, "--delay-curriculum", "1,3,30", "--curriculum-success", "0.05", "--runtime", runtime,
              "--logdir", str(logdir)]
    first = run(*common, "--total-frames", "1280")
    assert "delays 1, 3, 6," in first.stdout and "training at delay 1" in first.stdout
    assert "now delay 3" in first.stdout and "now delay 6" not in first.stdout
    assert "done at delay 3, a curriculum stage" in first.stdout
    checkpoint = torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)
    assert checkpoint["curriculum"] == {"stage": 1, "stage_start": 1280, "task_learned": False}
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert not any("charts/success_rate_100" in row for row in rows)  # no episode of the task yet
    assert "delay_curriculum:\n  - 1\n  - 3\n  - 30" in (logdir / "config.yaml").read_text()

    second = run(*common, "--total-frames", "3840")  # the same command resumes, at delay 3
    assert "training at delay 3" in second.stdout and "now delay 6" in second.stdout
    assert torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)["curriculum"]["stage"] == 2
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["curriculum/delay"] == 6  # the task: its windows are the run's charts again
    assert "charts/success_rate_100" in rows[-1] and "curriculum/success_rate_100" not in rows[-1]


def test_the_stages_before_the_task_take_their_own_unroll_length(tmp_path):
    """Unrolls of 40 (640 frames an update) at delays 1 and 3, of 80 (1280) at the task's delay 6;
    the run stops after its first update at delay 6 (total frames 2560)."""
    logdir = tmp_path / "run"
    result = run(*FAST, "--delay-curriculum", "1,3", "--curriculum-success", "0.05",
                 "--curriculum-unroll-lengths", "40", "--total-frames", "2560", "--logdir", str(logdir))
    assert "unrolls of 40 before delay 6" in result.stdout
    assert "now delay 3, unrolls of 40" in result.stdout and "now delay 6, unrolls of 80" in result.stdout
    checkpoint = torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)
    moved = checkpoint["curriculum"]["stage_start"]  # after 3 or more updates of 640 frames
    assert checkpoint["curriculum"]["stage"] == 2 and moved >= 1920 and moved % 640 == 0
    assert checkpoint["frames"] == moved + 1280  # then one of 1280
    assert DelayCurriculum([1, 3], task_delay=6, threshold=0.9).unroll_length(80) == 80  # none given
    per_delay = DelayCurriculum([15, 60, 250], task_delay=60, threshold=0.9, unroll_lengths=[80, 160, 600])
    assert per_delay.unroll_length(300) == 80  # delay 15's
    per_delay.advance(frames=10)
    assert per_delay.unroll_length(300) == 300  # the task's: the run's own


def test_the_task_reached_through_stages_takes_its_own_learning_rate(tmp_path):
    """Stages at delays 1 and 3 train at the run's 1e-3; the task (delay 6) at 2e-4, under the linear
    schedule's factor, and a resumed run keeps it."""
    staged = DelayCurriculum([1, 3], task_delay=6, threshold=0.9, task_learning_rate=2e-4)
    assert staged.learning_rate(1e-3) == 1e-3 and "learning rate 0.0002 at delay 6" in staged.describe()
    staged.advance(frames=10)
    staged.advance(frames=20)
    assert staged.final and staged.learning_rate(1e-3) == 2e-4
    unstaged = DelayCurriculum([15], task_delay=6, threshold=0.9, task_learning_rate=2e-4)
    assert unstaged.final and unstaged.learning_rate(1e-3) == 1e-3  # no stages: the run's until it passes
    logdir = tmp_path / "run"
    common = [*FAST, "--delay-curriculum", "1,3", "--curriculum-success", "0.05", "--learning-rate", "1e-3",
              "--curriculum-task-learning-rate", "2e-4", "--logdir", str(logdir)]
    result = run(*common, "--total-frames", "12800")
    assert "now delay 3, unrolls of 80\n" in result.stdout
    assert "now delay 6, unrolls of 80, learning rate 0.0002" in result.stdout
    checkpoint = torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)
    assert checkpoint["curriculum"]["stage"] == 2 and checkpoint["optimizer"]["param_groups"][0]["lr"] == 2e-4
    run(*common, "--total-frames", "15360")  # resumed on the task: still its rate
    assert torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)["optimizer"]["param_groups"][0][
        "lr"] == 2e-4
    linear = tmp_path / "linear"  # the schedule decays the task's rate from here on
    run(*common[:-1], str(linear), "--lr-schedule", "linear", "--total-frames", "25600")
    checkpoint = torch.load(linear / "checkpoints" / "latest.pt", weights_only=True)
    assert checkpoint["curriculum"]["stage"] == 2 and checkpoint["scheduler"]["base_lrs"] == [2e-4]
    assert 0 < checkpoint["optimizer"]["param_groups"][0]["lr"] < 2e-4 * (1 - checkpoint["curriculum"][
        "stage_start"] / 25600) + 1e-12


def test_a_task_without_stages_takes_its_own_rate_once_it_passes_as_a_stage_would():
    """Three windows in a row at 0.9 (each update ends 100 episodes), after 50 frames: then, and only
    then, the task's rate; it is saved with the curriculum's state."""
    task = DelayCurriculum([15], task_delay=6, threshold=0.9, window=100, hold=3, min_frames=50,
                           task_learning_rate=2e-4)
    calls = [(0.95, 10), (0.95, 20), (0.5, 30), (0.95, 40), (0.95, 50), (0.95, 60), (0.95, 70)]
    passed = [task.task_passed(score, 100, frames, new_episodes=100) for score, frames in calls]
    assert passed == [False, False, False, False, False, True, False]  # the low window restarts the count
    assert task.learning_rate(1e-3) == 2e-4
    resumed = DelayCurriculum([15], task_delay=6, threshold=0.9, task_learning_rate=2e-4)
    resumed.load_state_dict(task.state_dict())
    assert resumed.learning_rate(1e-3) == 2e-4
    resumed.load_state_dict({"stage": 0, "stage_start": 0})  # a checkpoint from before task_learned
    assert resumed.learning_rate(1e-3) == 1e-3
    no_rate = DelayCurriculum([], task_delay=6, threshold=0.9, task_learning_rate=0.0)
    assert not any(no_rate.task_passed(1.0, 100, f * 100, 100) for f in range(5))
    staged = DelayCurriculum([1], task_delay=6, threshold=0.9, task_learning_rate=2e-4)
    staged.advance(frames=10)  # through stages: the rate applies on arrival, task_passed never fires
    assert staged.learning_rate(1e-3) == 2e-4 and not staged.task_passed(1.0, 100, 20, 100)


def test_a_run_without_stages_moves_to_the_tasks_rate_once_it_passes_and_keeps_it_on_resume(tmp_path):
    """One update (1280 frames) ends over 100 episodes; a threshold that chance passes."""
    logdir = tmp_path / "run"
    common = [*FAST, "--curriculum-success", "0.05", "--curriculum-task-learning-rate", "2e-4",
              "--logdir", str(logdir)]
    result = run(*common, "--total-frames", "2560")
    assert "it trains at learning_rate until it passes as a stage would" in result.stdout
    assert "the task passed: success" in result.stdout
    assert "(1,280 frames); learning rate 0.0002 from here on" in result.stdout
    checkpoint = torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)
    assert checkpoint["curriculum"]["task_learned"] and checkpoint["optimizer"]["param_groups"][0]["lr"] == 2e-4
    again = run(*common, "--total-frames", "3840")
    assert "the task passed" not in again.stdout
    assert torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)["optimizer"]["param_groups"][0][
        "lr"] == 2e-4


def test_stage_env_options_from_the_command_line(tmp_path):
    """--curriculum-env-option is named in the curriculum's line and kept in config.yaml (that the
    stages' envs get it is test_stage_options_go_on_top_of_the_tasks_before_the_task_only's); an
    option that changes what the network sees, one the stages set, or one the env does not take is
    one line before anything is written; with no stage to apply it to, a note says so; with --eval it
    is refused."""
    logdir = tmp_path / "run"
    result = run(*FAST, "--delay-curriculum", "1,3", "--curriculum-success", "0.05", "--curriculum-env-option",
                 "noise=true", "--total-frames", "2560", "--logdir", str(logdir))
    assert "stages with noise=True; training at delay 1" in result.stdout and "now delay 6" in result.stdout
    assert "curriculum_env_options:\n    noise: true" in (logdir / "config.yaml").read_text()
    for option, message in (("num_cues=2", "curriculum_env_options num_cues=2 change the env's observations "
                                           "or actions; the stages must have the task's"),
                            ("delay=3", "curriculum_env_options cannot set delay"),
                            ("bogus=1", "curriculum_env_options bogus=1, at delay 1: bad argument for env")):
        refused = run(*FAST, "--delay-curriculum", "1,3", "--curriculum-env-option", option,
                      "--logdir", str(tmp_path / option), check=False)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and message in refused.stderr
        assert not (tmp_path / option).exists()
    unstaged = run(*FAST, "--curriculum-env-option", "noise=true", "--total-frames", "10", "--logdir",
                   str(tmp_path / "unstaged"))
    assert "curriculum_env_options: no curriculum stage to apply them to" in unstaged.stdout
    evaluated = run("--eval", "--logdir", str(logdir), "--curriculum-env-option", "noise=true", check=False)
    assert evaluated.returncode == 2 and "--curriculum-env-option is a training flag" in evaluated.stderr


def test_a_preset_with_stages_can_turn_them_off():
    from configs import load_config

    config = load_config("long_recall").with_overrides({"delay_curriculum": []})  # --delay-curriculum none
    assert config.env.curriculum_unroll_lengths == [80, 160]  # kept, unused
    assert DelayCurriculum([], task_delay=60, threshold=0.9, unroll_lengths=[80, 160]).final


def test_ray_actors_are_rebuilt_at_each_stage(tmp_path):
    """The Ray runtime shuts its actors (and the Ray instance it started) down at a move and starts
    them again on the next stage's env."""
    pytest.importorskip("ray")
    result = run(*FAST, "--delay-curriculum", "1,3", "--curriculum-success", "0.05", "--runtime", "ray",
                 "--total-frames", "3840", "--logdir", str(tmp_path / "run"))
    assert "now delay 3" in result.stdout and "now delay 6" in result.stdout


def test_sigterm_to_a_ray_run_past_its_stages_saves_and_exits_143(tmp_path):
    """ray.init puts in a SIGTERM handler of its own (sys.exit(15), nothing saved); RayRuntime puts the
    trainer's back after it, at each start of the actors, a stage's restart included."""
    pytest.importorskip("ray")
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.test_train_agent import ROOT

    logdir, log = tmp_path / "run", tmp_path / "out.txt"
    command = [sys.executable, str(ROOT / "train_agent.py"), *FAST, "--delay-curriculum", "1,3",
               "--curriculum-success", "0.05", "--runtime", "ray", "--total-frames", "10000000",
               "--logdir", str(logdir)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "now delay 6" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        kill_group(proc)
    text = log.read_text()
    assert "now delay 6" in text and proc.returncode == 143, text[-2000:]
    assert "stopped by signal 15" in text
    assert torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)["frames"] > 0


def test_an_env_without_a_delay_trains_on_the_task_and_says_so(tmp_path):
    result = run("--env", "MiniGrid-MemoryS7-v0", "--num-envs", "2", "--unroll-length", "5", "--hidden-size",
                 "16", "--torso-size", "16", "--threads", "1", "--delay-curriculum", "15", "--total-frames",
                 "10", "--curriculum-task-learning-rate", "1e-4", "--logdir", str(tmp_path / "run"))
    assert "has no delay option; training on the task itself" in result.stdout
    assert "curriculum_task_learning_rate: no curriculum stage before the task" in result.stdout


def test_a_stage_logs_its_windows_apart_from_the_task(tmp_path):
    from agents.run_logger import RunLogger

    logger = RunLogger(tmp_path, total_frames=100)
    logger.new_task(stage=True)
    logger.episodes([(1.0, 5, True), (0.0, 5, False)], frames=10)
    logger.scalars({}, frames=10)
    logger.new_task(stage=False)  # the task itself: the stage's episodes are forgotten
    logger.episodes([(0.0, 8, False)], frames=20)
    logger.scalars({}, frames=20)
    logger.close()
    stage, task = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert stage["curriculum/success_rate_100"] == 0.5 and stage["curriculum/mean_return_100"] == 0.5
    assert "charts/success_rate_100" not in stage
    assert task["charts/success_rate_100"] == 0.0 and "curriculum/success_rate_100" not in task


def test_the_loggers_window_is_the_success_rate_else_the_return(tmp_path):
    from agents.run_logger import RunLogger

    logger = RunLogger(tmp_path, total_frames=100)
    assert logger.window() == (None, 0)
    logger.episodes([(0.4, 3, None), (0.8, 3, None)], frames=10)
    assert logger.window() == pytest.approx((0.6, 2))  # no verdicts: the mean return
    logger.new_task()
    logger.episodes([(1.0, 5, True)] * 3 + [(0.0, 5, False)] + [(0.5, 5, True)] * 200, frames=20)
    assert logger.window() == (1.0, 100)  # the last 100 only
    logger.close()
