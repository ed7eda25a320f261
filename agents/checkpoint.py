"""Checkpoints: written atomically (temporary file, then rename), read with ``weights_only=True``;
and the lock that keeps a run directory to one run at a time.

A checkpoint holds what a resumed run needs to continue its curve: model, optimiser, schedule,
frame and update counters, and the RNG states of torch, numpy and Python.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import numpy as np
import torch

from .atomic import replace_atomically
from .learner import first_non_finite

try:
    import fcntl
except ImportError:  # not a POSIX system: run directories are not locked
    fcntl = None


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (missing, corrupt, or holding more than tensors/plain data)."""


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state()[1].tolist(),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }


def restore_rng(state: dict) -> None:
    """Set the RNGs to ``rng_state()``'s output; a ``CheckpointError`` where it is malformed."""
    try:
        torch.set_rng_state(state["torch"])
        np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"],
                             0, 0.0))
        version, internal, gauss = state["python"][1], tuple(state["python"][0]), state["python"][2]
        random.setstate((version, internal, gauss))
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"the checkpoint's random-number state is malformed ({type(error).__name__})") from None


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a crash mid-write never leaves a broken file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())

    replace_atomically(path, write)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; anything else is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {str(path)!r}") from None
    except Exception as error:  # pickle.UnpicklingError and friends: refuse, never execute
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"refusing checkpoint {str(path)!r}: {first}") from None


#: What a run's checkpoint holds (``train_agent``'s ``save``); evaluation needs only ``model``.
RUN_KEYS = ("model", "optimizer", "scheduler", "frames", "updates", "rng")


def check_run_checkpoint(checkpoint, path: str | Path, keys: tuple[str, ...] = RUN_KEYS) -> dict:
    """``checkpoint`` if it has the run checkpoint's structure: a mapping with ``keys``, ``model`` a
    mapping of tensors without NaN or infinity, ``frames`` and ``updates`` integers >= 0 (a crafted
    ``frames: -1e9`` would train without end); else a one-line ``CheckpointError``."""
    where = f"checkpoint {str(path)!r}"
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{where} is not a run checkpoint (it holds a {type(checkpoint).__name__})")
    missing = [key for key in keys if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{where} is not a run checkpoint: it lacks {', '.join(missing)}")
    weights = checkpoint["model"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{where}: 'model' must map parameter names to tensors")
    bad = first_non_finite((name, value) for name, value in weights.items() if value.is_floating_point())
    if bad is not None:
        raise CheckpointError(f"{where} holds a non-finite weight {bad!r}")
    for name in ("frames", "updates"):
        value = checkpoint.get(name, 0)
        if name in keys and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise CheckpointError(f"{where}: {name} must be an integer >= 0, got {value!r}")
    return checkpoint


def load_run_checkpoint(folder: str | Path, keys: tuple[str, ...] = RUN_KEYS) -> tuple[dict, Path, list[str]]:
    """The newest checkpoint in ``folder`` that reads and passes ``check_run_checkpoint``: ``latest.pt``,
    else the milestones (``frames_*.pt``) newest first. Returns it, its path, and one line per newer
    file skipped (for a warning); raises the ``CheckpointError`` of ``latest.pt`` when none will do."""
    folder = Path(folder)
    candidates = [folder / "latest.pt", *sorted(folder.glob("frames_*.pt"), reverse=True)]
    skipped = []
    for path in candidates:
        try:
            return check_run_checkpoint(load_checkpoint(path), path, keys), path, skipped
        except CheckpointError as error:
            skipped.append(str(error))
    tail = "; no milestone is readable either" if len(candidates) > 1 else ""
    raise CheckpointError(skipped[0] + tail)


def load_weights(path: str | Path) -> tuple[dict, Path, list[str]]:
    """The network weights at ``path``: a run directory (its ``checkpoints/``), a checkpoints folder
    (as ``load_run_checkpoint``) or a checkpoint file. Returns the ``model`` state, the file it came
    from and the newer files skipped; a one-line ``CheckpointError`` where none will do."""
    path = Path(path)
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        checkpoint, source, skipped = load_run_checkpoint(folder, keys=("model",))
    elif path.exists():
        checkpoint, source, skipped = check_run_checkpoint(load_checkpoint(path), path, ("model",)), path, []
    else:
        raise CheckpointError(f"no run directory or checkpoint at {str(path)!r}")
    return checkpoint["model"], source, skipped


def restore_state(target, state, path: str | Path, what: str) -> None:
    """``target.load_state_dict(state)`` (a module, optimiser or scheduler), with a one-line
    ``CheckpointError`` when the checkpoint does not fit (another model size, core or optimiser)."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = "; ".join(lines[1:3] if len(lines) > 1 else lines) or type(error).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this run's {what}: "
                              f"{detail[:300]}") from None


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a process killed inside ``save_checkpoint`` left in ``folder``;
    call it only while holding the run's lock (no save of this run is in flight then)."""
    stale = sorted(Path(folder).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class RunDirError(Exception):
    """The run directory cannot be locked: another run holds it, or it cannot be made; one line."""


class RunLock:
    """An exclusive lock on a run directory, held by the run that trains in it.

    ``fcntl.flock`` on ``DIR/.lock``: ``acquire`` creates the directory and the file and fails at once
    (``RunDirError``) where another open file holds the lock. The kernel drops the lock when the file
    is closed, which happens, at the latest, when its process ends however it ends (SIGKILL and the
    OOM killer included), so a dead run never blocks a later one and the file is never removed (removing
    it would let two runs lock two different files). The holder writes its pid into the file, for the
    message of a run that is refused.

    The descriptor is not inheritable (close-on-exec, PEP 446): processes started by fork *and exec*
    (the async runtime's ``spawn`` actors and its resource tracker, Ray's processes, subprocesses) never
    hold the lock, so actors that outlive a killed learner do not keep the directory locked. A child
    made by a bare ``fork`` would share it until it exits; training starts none. Where ``fcntl`` is
    missing (not POSIX), nothing is locked.
    """

    NAME = ".lock"

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self.path = self.logdir / self.NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None or self._fd is not None:
            return self
        if self.logdir.exists() and not self.logdir.is_dir():
            raise RunDirError(f"run directory {str(self.logdir)!r} is a file, not a directory")
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise RunDirError(f"cannot lock run directory {str(self.logdir)!r}: "
                              f"{error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_pid(fd)
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"cannot lock run directory {str(self.logdir)!r}: "
                                  f"{error.strerror or error}") from None
            raise RunDirError(
                f"run directory {str(self.logdir)!r} is in use by another run"
                + (f" (pid {holder})" if holder else "")
                + "; wait for it to end, or use another --logdir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the file does); a no-op when not held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
