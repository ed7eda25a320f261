"""benchmarks/recall_supervised.py: the trainer's network learns a short recall by supervision, and the
episode batches it builds hold the right answers."""

from __future__ import annotations

import pytest
import torch

from benchmarks.recall_supervised import episodes, main
from envs import make_vector_env


def test_batches_are_whole_episodes_with_the_right_answer():
    env = make_vector_env("ShuffledCueRecall-v0", 6, seed=0, delay=3)
    obs, answer = episodes(env, 6, 3)
    assert obs["symbol"].shape == (5, 6) and obs["candidates"].shape == (5, 6, 4)
    cue = obs["symbol"][0]
    assert torch.equal(obs["candidates"][-1][torch.arange(6), answer], cue)
    assert not obs["candidates"][:-1].any() and (obs["phase"][-1] == 2).all()
    env.close()


def test_a_short_recall_is_learned_and_reported(capsys):
    assert main(["--delay", "1", "--max-episodes", "20000", "--batch", "32", "--seeds", "0"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("seed 0: accuracy >= 0.95 after "), line
    assert int(line.split("after ")[1].split()[0].replace(",", "")) <= 20000


def test_bandit_feedback_with_random_previous_actions_learns_a_short_recall(capsys):
    """The RL-like variants of the probe: REINFORCE from a sampled answer, and random previous actions
    fed to the core. A delay-1 recall of 2 cues is still learned, only from the reward."""
    assert main(["--delay", "1", "--num-cues", "2", "--bandit", "--random-actions", "--max-episodes",
                 "20000", "--batch", "32", "--seeds", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "random previous actions" in out[0] and "bandit feedback (REINFORCE, entropy cost 0.01)" in out[0]
    assert out[-1].startswith("seed 0: accuracy >= 0.95 after "), out[-1]


def test_bandit_feedback_learnt_by_regression_learns_a_short_recall(capsys):
    assert main(["--delay", "1", "--num-cues", "2", "--bandit-regression", "--max-episodes", "20000",
                 "--batch", "32", "--seeds", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "bandit feedback learnt by regression" in out[0]
    assert out[-1].startswith("seed 0: accuracy >= 0.95 after "), out[-1]


def test_core_options_and_a_hidden_head_reach_the_network(capsys):
    assert main(["--delay", "1", "--num-cues", "2", "--core-option", "refine_bias=zero", "--head-size", "8",
                 "--max-episodes", "20000", "--batch", "32", "--seeds", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "ur_lstm 128 {'refine_bias': 'zero'}" in out[0] and "head 8" in out[0], out[0]
    assert out[-1].startswith("seed 0: accuracy >= 0.95 after "), out[-1]


def test_a_bad_core_option_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--core-option", "refine_bias=sideways", "--seeds", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "refine_bias" in err and "sideways" in err, err
    with pytest.raises(SystemExit):
        main(["--core-option", "refine_bias", "--seeds", "0"])
    assert "expects key=value" in capsys.readouterr().err
