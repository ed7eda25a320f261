"""Child processes that a test starts in a session of their own (``start_new_session=True``): the
child's pid is its process group's id, so the test can signal the whole group and, however the test
ends, kill what is left of it (the run, its actor processes, Ray's processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL every process left in ``proc``'s group (none left is fine), then reap ``proc``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
