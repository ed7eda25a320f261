"""A delay curriculum: learn a recall at short delays first, then at the task's own.

Forming a memory at a long delay from scratch is what fails (docs/AGENTS.md: Passive Visual Match at
delay 250 stayed at chance for 10M frames), while a memory formed at a shorter delay carries over
(the delay-60 agents held at 250 zero-shot). ``DelayCurriculum`` runs the stages in one training
run: each stage is the task with a shorter ``delay`` env option, and training moves on once the
success rate of the stage's last ``window`` episodes has held a threshold over ``hold`` windows of
episodes in a row (after at least ``min_frames`` of training at the stage, if given). The trainer
rebuilds its actors' envs at each move; the network, optimiser and schedule go on.
"""

from __future__ import annotations


class DelayCurriculum:
    """Stages ``[d for d in delays if d < task_delay]``, then the task itself (its own env options).

    ``passed(score, episodes, frames, new_episodes)`` takes, once per update, the current stage's
    score over its last ``episodes`` episodes (the run logger's window, whose size ``window`` must
    match: success rate, or mean return where the task gives no verdict), the run's frame count and
    how many episodes ended in the update, and says whether the stage is passed; ``advance(frames)``
    moves on. ``hold`` windows: the score must have stayed at the threshold at every update while
    ``hold - 1`` windows' worth of episodes more than the first window ended (a count not saved in
    checkpoints: a resumed run holds it again).
    ``stage`` and the frame count it began at are saved in checkpoints (``state_dict``) so a resumed
    run continues at its stage. ``unroll_lengths`` (empty: the run's; one: for every stage; else
    one per entry of ``delays``) are the unroll lengths of the stages before the task;
    ``stage_options`` env options of theirs on top of the task's (the task keeps its own).
    ``task_learning_rate`` (0: none) replaces the run's learning rate once training reaches the task
    through stages (a recall turned round at a short delay is held at the long one with smaller
    steps) or, with no stage before the task, once ``task_passed`` says the task has passed as a
    stage would (a learned recall is held with smaller steps); that it passed is saved too.
    """

    def __init__(self, delays: list[int], task_delay: int | None, threshold: float, window: int = 100,
                 min_frames: int = 0, unroll_lengths: list[int] | None = None,
                 stage_options: dict | None = None, hold: int = 1, task_learning_rate: float = 0.0):
        self.delays = [d for d in delays if task_delay is not None and d < task_delay]
        unroll_lengths = list(unroll_lengths or []) if delays else []
        if len(unroll_lengths) == 1:
            unroll_lengths *= len(delays)
        if unroll_lengths and len(unroll_lengths) != len(delays):
            raise ValueError(f"unroll_lengths must give one length or one per delay ({len(delays)}), "
                             f"got {len(unroll_lengths)}")
        self._unroll_of = dict(zip(delays, unroll_lengths, strict=False))
        self.task_delay, self.threshold, self.window = task_delay, threshold, window
        self.min_frames = min_frames
        self.stage_options = dict(stage_options or {})
        self.hold = hold
        self.task_learning_rate = task_learning_rate
        self._streak: int | None = None  # episodes ended since the window first reached the threshold
        self.stage, self.stage_start = 0, 0
        self.task_learned = False  # the task, with no stage before it, passed (task_passed)

    @property
    def final(self) -> bool:
        """Training is on the task itself."""
        return self.stage >= len(self.delays)

    @property
    def delay(self) -> int | None:
        """The current stage's delay (the task's own on the final stage; None: the env has none)."""
        return self.task_delay if self.final else self.delays[self.stage]

    def unroll_length(self, task_unroll_length: int) -> int:
        """The current stage's unroll length: its own before the final stage (where given), else
        the run's."""
        return task_unroll_length if self.final else self._unroll_of.get(self.delay, task_unroll_length)

    def learning_rate(self, run_learning_rate: float) -> float:
        """The current learning rate: ``task_learning_rate`` (where given) on the task reached through
        stages, or on a task without stages once it passed, else the run's."""
        reached = self.final and (bool(self.delays) or self.task_learned) and self.task_learning_rate > 0
        return self.task_learning_rate if reached else run_learning_rate

    def env_options(self, options: dict) -> dict:
        """The env options of the current stage: the task's ``options`` on the final stage, else
        ``stage_options_at(self.delay, options)``."""
        return dict(options) if self.final else self.stage_options_at(self.delay, options)

    def stage_options_at(self, delay: int, options: dict) -> dict:
        """The env options of a stage at ``delay``: the task's ``options`` with ``stage_options`` on
        top and ``delay`` replaced (a ``min_delay`` above it lowered to it)."""
        staged = {**options, **self.stage_options, "delay": delay}
        if staged.get("min_delay") is not None and staged["min_delay"] > delay:
            staged["min_delay"] = delay
        return staged

    def passed(self, score: float | None, episodes: int, frames: int, new_episodes: int = 0) -> bool:
        """Called once per update (``new_episodes``: episodes that ended in it). True once ``score``
        over a full window of ``episodes`` (at least ``window``) of the current stage has been at the
        threshold at every update while ``(hold - 1) * window`` more episodes ended, and the stage
        has trained ``min_frames`` (``frames``: the run's count). Never on the final stage."""
        if self.final:
            return False
        return self._held(score, episodes, frames, new_episodes)

    def task_passed(self, score: float | None, episodes: int, frames: int, new_episodes: int = 0) -> bool:
        """``passed``'s test on a task with no stage before it, where a ``task_learning_rate`` waits
        for it: True once, at the update the task passes (``learning_rate`` then gives the task's)."""
        if self.delays or self.task_learned or self.task_learning_rate <= 0:
            return False
        self.task_learned = self._held(score, episodes, frames, new_episodes)
        return self.task_learned

    def _held(self, score: float | None, episodes: int, frames: int, new_episodes: int) -> bool:
        at = score is not None and episodes >= self.window and score >= self.threshold
        if not at:
            self._streak = None
        elif self._streak is None:  # the first window at the threshold: the stretch starts here
            self._streak = 0
        else:
            self._streak += new_episodes
        held = self._streak is not None and self._streak >= (self.hold - 1) * self.window
        return held and frames - self.stage_start >= self.min_frames

    def advance(self, frames: int) -> None:
        self.stage, self.stage_start, self._streak = self.stage + 1, frames, None

    def describe(self) -> str:
        """One line for the log: the stages and the rule."""
        if not self.delays:
            return ""
        stages = ", ".join(map(str, self.delays + [self.task_delay]))
        held = f" held over {self.hold} windows" if self.hold > 1 else ""
        hold = held + (f" after at least {self.min_frames:,} frames" if self.min_frames else "")
        lengths = sorted({self._unroll_of[d] for d in self.delays}) if self._unroll_of else []
        unroll = (f"; unrolls of {lengths[0]} before delay {self.task_delay}" if len(lengths) == 1 else
                  "; unrolls of " + ", ".join(f"{self._unroll_of[d]} at delay {d}" for d in self.delays)
                  if lengths else "")
        options = ("; stages with " + ", ".join(f"{k}={v}" for k, v in self.stage_options.items())
                   if self.stage_options else "")
        rate = (f"; learning rate {self.task_learning_rate:g} at delay {self.task_delay}"
                if self.task_learning_rate > 0 else "")
        return (f"delay curriculum: delays {stages}, moving on at a success rate of {self.threshold:g} "
                f"over {self.window} episodes{hold}{unroll}{options}{rate}")

    def state_dict(self) -> dict:
        return {"stage": self.stage, "stage_start": self.stage_start, "task_learned": self.task_learned}

    def load_state_dict(self, state: dict) -> None:
        self.stage = min(int(state.get("stage", 0)), len(self.delays))
        self.stage_start = int(state.get("stage_start", 0))
        self.task_learned = bool(state.get("task_learned", False))
