"""agents.atomic: a file is replaced whole or not at all."""

from __future__ import annotations

import os

import pytest

from agents.atomic import replace_atomically


def test_a_write_that_fails_leaves_the_file_as_it_was_and_no_temporary(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text("before")

    def half_then_interrupted(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(path, half_then_interrupted)
    assert path.read_text() == "before" and sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]
    replace_atomically(path, lambda tmp: tmp.write_text("after"))
    assert path.read_text() == "after" and sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_the_file_gets_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        replace_atomically(tmp_path / "episode_0.gif", lambda tmp: tmp.write_bytes(b"GIF89a"))
    finally:
        os.umask(previous)
    assert (tmp_path / "episode_0.gif").stat().st_mode & 0o777 == 0o644  # mkstemp's would be 0o600
