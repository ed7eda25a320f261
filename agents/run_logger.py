"""Run logging: TensorBoard scalars, histograms and text; ``metrics.jsonl``; a progress line."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from pathlib import Path

from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from .atomic import replace_atomically


class RunLogger:
    """Everything is keyed by the frame count (environment steps, all envs together)."""

    WINDOW = 100  # episodes in the success-rate and mean-return windows (the ``_100`` in their tags)

    def __init__(self, logdir: str | Path, total_frames: int, progress: bool = True,
                 resume_frames: int | None = None):
        """``resume_frames``: the frames of the checkpoint a resumed run starts from. What an earlier
        process logged past it (it died after its last save) is dropped: the rows of ``metrics.jsonl``
        and, through TensorBoard's ``purge_step``, the events, so the curve is not drawn twice."""
        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir), purge_step=resume_frames)
        if resume_frames is not None:
            drop_rows_after(self.logdir / "metrics.jsonl", resume_frames)
        self.metrics = (self.logdir / "metrics.jsonl").open("a")
        self.total_frames = total_frames
        self.progress = progress and sys.stderr.isatty()
        self.recent_returns: deque[float] = deque(maxlen=self.WINDOW)
        self.recent_successes: deque[bool] = deque(maxlen=self.WINDOW)
        self.window_prefix = "charts"  # "curriculum" while a delay curriculum trains on a stage
        self._last_frames, self._last_time = None, time.perf_counter()

    def config(self, config: dict) -> None:
        rows = ["| key | value |", "|---|---|"]
        for section, values in config.items():
            rows += [f"| {section}.{k} | {v} |" for k, v in values.items()]
        self.writer.add_text("config", "\n".join(rows), 0)

    def episodes(self, episodes: list[tuple], frames: int) -> None:
        """``episodes``: ``(return, length, success)`` each; ``success`` is None where the task gives
        no verdict (only tasks that give one have a success rate)."""
        for ret, length, success in episodes:
            self.recent_returns.append(ret)
            if success is not None:
                self.recent_successes.append(bool(success))
            self.writer.add_scalar("charts/episode_return", ret, frames)
            self.writer.add_scalar("charts/episode_length", length, frames)

    def new_task(self, stage: bool = False) -> None:
        """Forget the episodes so far: the task changed (a delay curriculum moved on), and the
        windows of the last 100 episodes (return, success rate) are of the task trained on now.
        ``stage``: it is a curriculum's stage, not the run's task; its windows are logged as
        ``curriculum/...`` so that ``charts/success_rate_100`` and ``charts/mean_return_100`` are
        always of the run's own task."""
        self.window_prefix = "curriculum" if stage else "charts"
        self.recent_returns.clear()
        self.recent_successes.clear()

    def mean_return(self) -> float | None:
        return sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else None

    def success_rate(self) -> float | None:
        """Fraction of the last 100 episodes with a verdict that succeeded (None: no verdicts)."""
        return (sum(self.recent_successes) / len(self.recent_successes)
                if self.recent_successes else None)

    @property
    def window_name(self) -> str:
        """What ``window`` scores: ``"success"`` where the task gives verdicts, else ``"mean return"``."""
        return "success" if self.recent_successes else "mean return"

    def window(self) -> tuple[float | None, int]:
        """The task's score over its last (up to) 100 episodes and how many there are: the success
        rate where the task gives verdicts, else the mean return (``window_name`` says which)."""
        if self.recent_successes:
            return self.success_rate(), len(self.recent_successes)
        return self.mean_return(), len(self.recent_returns)

    def scalars(self, values: dict[str, float], frames: int) -> None:
        now = time.perf_counter()
        if self._last_frames is not None and now > self._last_time:
            values["perf/sps"] = (frames - self._last_frames) / (now - self._last_time)
        self._last_frames, self._last_time = frames, now
        if self.recent_successes:
            values[f"{self.window_prefix}/success_rate_100"] = self.success_rate()
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, frames)
        record = {"frames": frames, "time": time.time(), **values}
        if self.recent_returns:
            record[f"{self.window_prefix}/mean_return_100"] = self.mean_return()
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()
        self.show(frames, values.get("perf/sps"))

    def gates(self, gates: dict[str, Tensor], frames: int) -> None:
        """Gate statistics: mean, fraction above 0.99 (saturation), and a histogram per gate."""
        for name, value in gates.items():
            value = value.detach().float().cpu()
            self.writer.add_scalar(f"gates/{name}_mean", float(value.mean()), frames)
            self.writer.add_scalar(f"gates/{name}_above_0.99", float((value > 0.99).float().mean()),
                                   frames)
            self.writer.add_histogram(f"gates/{name}", value.flatten(), frames)

    def show(self, frames: int, sps: float | None) -> None:
        if not self.progress:
            return
        done = min(frames / self.total_frames, 1.0)
        bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
        ret, success = self.mean_return(), self.success_rate()
        line = (f"\r[{bar}] {frames:,}/{self.total_frames:,} frames"
                f"  {sps or 0:,.0f} frames/s  return {'-' if ret is None else f'{ret:.3f}'}"
                + ("" if success is None else f"  success {success:.2f}"))
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.progress:
            sys.stderr.write("\n")
        self.writer.close()
        self.metrics.close()


def drop_rows_after(path: Path, frames: int) -> int:
    """Rewrite ``metrics.jsonl`` without the rows logged past ``frames`` (and any torn last line);
    returns how many were dropped."""
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            dropped += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("frames"), int) and row["frames"] > frames:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        replace_atomically(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept)))
    return dropped
