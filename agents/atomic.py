"""Files replaced whole or not at all: written beside their path under a temporary name, then renamed
over it (a rename within one folder is atomic on POSIX file systems)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on ``.NAME.PID.tmp`` beside ``path``, then rename it to ``path``: an error, a
    Ctrl-C or a kill while writing leaves ``path`` as it was, and no temporary file but a kill's (in a
    checkpoint folder ``agents.checkpoint.remove_stale_temporaries`` clears those). The writer creates
    the file, so it gets the user's umask; one name per process, so processes writing one path never
    share it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
