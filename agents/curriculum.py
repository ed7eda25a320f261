"""A delay curriculum: learn a recall at short delays first, then at the task's own.

Forming a memory at a long delay from scratch is what fails (docs/AGENTS.md: Passive Visual Match at
delay 250 stayed at chance for 10M frames), while a memory formed at a shorter delay carries over
(the delay-60 agents held at 250 zero-shot). ``DelayCurriculum`` runs the stages in one training
run: each stage is the task with a shorter ``delay`` env option, and training moves on once the
success rate of the stage's last ``window`` episodes reaches a threshold. The trainer rebuilds its
actors' envs at each move; the network, optimiser and schedule go on.
"""

from __future__ import annotations

from collections import deque


class DelayCurriculum:
    """Stages ``[d for d in delays if d < task_delay]``, then the task itself (its own env options).

    ``record(episodes)`` takes ``(return, length, success)`` tuples of the current stage and says
    whether the stage is passed; ``advance()`` moves on. ``stage`` is saved in checkpoints
    (``state_dict``) so a resumed run continues at its stage.
    """

    def __init__(self, delays: list[int], task_delay: int | None, threshold: float, window: int = 100):
        self.delays = [d for d in delays if task_delay is not None and d < task_delay]
        self.task_delay, self.threshold, self.window = task_delay, threshold, window
        self.stage = 0
        self._recent: deque[float] = deque(maxlen=window)

    @property
    def final(self) -> bool:
        """Training is on the task itself."""
        return self.stage >= len(self.delays)

    @property
    def delay(self) -> int | None:
        """The current stage's delay (the task's own on the final stage; None: the env has none)."""
        return self.task_delay if self.final else self.delays[self.stage]

    def env_options(self, options: dict) -> dict:
        """The env options of the current stage: the task's, with ``delay`` replaced (and a
        ``min_delay`` above it lowered to it) before the final stage."""
        if self.final:
            return dict(options)
        staged = {**options, "delay": self.delay}
        if staged.get("min_delay") is not None and staged["min_delay"] > self.delay:
            staged["min_delay"] = self.delay
        return staged

    def record(self, episodes: list[tuple]) -> bool:
        """Add finished episodes of the current stage (their success, or their return where the task
        gives no verdict); True once the last ``window`` of them reach the threshold."""
        if self.final:
            return False
        for ret, _length, success in episodes:
            self._recent.append(float(ret if success is None else success))
        return len(self._recent) == self.window and self.score() >= self.threshold

    def score(self) -> float | None:
        return sum(self._recent) / len(self._recent) if self._recent else None

    def advance(self) -> None:
        self.stage += 1
        self._recent.clear()

    def describe(self) -> str:
        """One line for the log: the stages and the rule."""
        if not self.delays:
            return ""
        stages = ", ".join(map(str, self.delays + [self.task_delay]))
        return (f"delay curriculum: delays {stages}, moving on at a success rate of {self.threshold:g} "
                f"over {self.window} episodes")

    def state_dict(self) -> dict:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict) -> None:
        self.stage = min(int(state.get("stage", 0)), len(self.delays))
        self._recent.clear()
