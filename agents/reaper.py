"""Kill what a dead learner's local Ray instance leaves behind (Linux, ``/proc``).

Imported by ``agents.runtime_ray`` for ``descendants`` and run as a script (by file path, so it needs
nothing but the standard library) by ``start_reaper``:

    python agents/reaper.py LEARNER_PID '[[pid, start_time], ...]'

It waits until its parent, the learner, is gone, gives Ray a few seconds to stop its own processes,
then SIGKILLs those of the listed ones still alive. A process counts as the listed one only if its
start time matches too, so a reused pid is spared.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

GRACE_S = 3.0


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of ``/proc/PID/stat``), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> list[tuple[int, str]]:
    """``(pid, start time)`` of every process below ``root``."""
    parents, starts = {}, {}
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields is not None:
            parents[int(entry)], starts[int(entry)] = int(fields[1]), fields[19]
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += [(pid, starts[pid]) for pid in children]
        frontier += children
    return found


def main(learner: int, processes: list[tuple[int, str]]) -> None:
    while os.getppid() == learner:
        time.sleep(1.0)
    time.sleep(GRACE_S)
    for pid, start in processes:
        if start_time(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
