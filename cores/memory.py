"""Keep freed memory in the process instead of returning it to the OS after every unroll.

glibc serves large blocks (the ``[T, B, ...]`` buffers of an unroll) with fresh ``mmap`` pages and
hands them back on free, so every unroll pays page faults and kernel zeroing on tens of MB: measured
here as 11 ms of a 60 ms UR-LSTM forward+backward (``benchmarks/cores.py --no-retain-memory``).
Training loops allocate the same sizes again and again, so keeping the pages is the right trade.
The call is process-wide; the composition roots (``train_agent.py``, benchmarks) make it, not import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def retain_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Serve large allocations from the heap and keep up to ``trim_threshold`` bytes of it when
    freed. Returns True if applied (glibc Linux), False where it does not apply."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl): nothing to tune
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
