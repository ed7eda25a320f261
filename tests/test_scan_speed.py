"""benchmarks/scan_speed.py runs end to end at a tiny size: a row per core and length, ratios to
nn.LSTM, the projection floor among them, and peak memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rows_ratios_and_the_projection_floor():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scan_speed.py"), "--lengths", "16,32", "--cores",
         "lstm,projection:blocks=3,min_gru", "--rounds", "1", "--B", "2", "--F", "8", "--H", "8"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["16"], ["32"])]
    assert [(row[0], row[1]) for row in rows] == [
        (t, core) for t in ("16", "32") for core in ("lstm", "projection:blocks=3", "min_gru")]
    for row in rows:
        assert float(row[2]) > 0 and float(row[4]) >= 0  # ms and peak MB
        if row[1] == "lstm":
            assert row[3] == "1.00"
