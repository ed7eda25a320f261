"""Passive and Active Visual Match: gridworld versions of the long-delay memory tasks of Hung et al.
(2019), used by Gu et al. (2020) for their RL evidence.

An episode has three phases, each in its own small room:

1. **Cue** (``cue_steps``): a ball of the cue colour is in the room. *Passive*: the ball stands next
   to the agent and is always in view. *Active*: the room is a corridor with the ball at one of its
   two ends, out of view from the start; the agent must walk to see it.
2. **Delay** (``delay`` steps; with ``min_delay``, a number drawn per episode, uniform over
   ``min_delay..delay``): an orchard of yellow keys ("apples"); walking onto one gives
   ``apple_reward`` and it regrows elsewhere. The cue is gone.
3. **Recall** (at most ``recall_steps``): ``num_pads`` coloured balls in a row, one of the cue colour;
   walking into one ends the episode with ``final_reward`` if it has the cue colour, else 0. Running
   out of time ends it with 0. Every end is a termination (the task is over, nothing to bootstrap);
   the last ``info`` has ``"success"``: the recall was right (apples do not count).

The cue colour is uniform over four colours and the pad order is shuffled, so a policy without memory
picks the right pad with probability ``1 / num_pads``. With ``fixed_pads`` (the ``Easy`` variant) the
pads always show the first ``num_pads`` colours in the same order and the cue is one of them: still
chance without memory, but the recall is a fixed place per colour instead of a colour comparison.

Observations are MiniGrid-compatible: ``{"image": uint8 [7, 7, 3], "direction": int}``, the image a
7x7 window centred on the agent in MiniGrid's (object, colour, state) encoding (cells outside the room
are "unseen"), the agent drawn at the centre. Actions: 0 right, 1 down, 2 left, 3 up; ``direction``
is the last move (MiniGrid's convention: 0 = east, 1 = south, 2 = west, 3 = north).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, COLORS, OBJECT_TO_IDX

from .observations import minigrid_image_space

VIEW = 7
PAD = VIEW // 2
MOVES = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)])
CUE_COLOURS = ("red", "green", "blue", "purple")
WALL, EMPTY, UNSEEN = OBJECT_TO_IDX["wall"], OBJECT_TO_IDX["empty"], OBJECT_TO_IDX["unseen"]
BALL, APPLE, AGENT = OBJECT_TO_IDX["ball"], OBJECT_TO_IDX["key"], OBJECT_TO_IDX["agent"]
APPLE_COLOUR = COLOR_TO_IDX["yellow"]
CUE, DELAY, RECALL = 0, 1, 2

#: Delays of the named variants (steps of the distractor phase).
DELAYS = {"Short": 15, "Medium": 60, "Long": 250}


def _room(width: int, height: int) -> np.ndarray:
    """A padded room grid ``[width + 2 + 2*PAD, height + 2 + 2*PAD, 3]``: unseen margin, wall ring."""
    grid = np.zeros((width + 2 + 2 * PAD, height + 2 + 2 * PAD, 3), dtype=np.uint8)
    grid[PAD : PAD + width + 2, PAD : PAD + height + 2, 0] = WALL
    grid[PAD + 1 : PAD + 1 + width, PAD + 1 : PAD + 1 + height, 0] = EMPTY
    grid[..., 1] = np.where(grid[..., 0] == WALL, COLOR_TO_IDX["grey"], 0)
    return grid


class VisualMatchEnv(gym.Env):
    """The visual match task (module docstring); ``active`` selects the Active variant."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        delay: int = 15,
        min_delay: int | None = None,
        active: bool = False,
        num_pads: int = 3,
        cue_steps: int | None = None,
        recall_steps: int = 10,
        apple_reward: float = 0.05,
        final_reward: float = 1.0,
        num_apples: int = 4,
        fixed_pads: bool = False,
        render_mode: str | None = None,
    ):
        if not 1 <= int(delay) <= 100_000:
            raise ValueError(f"delay must be between 1 and 100000 steps, got {delay!r}")
        if min_delay is not None and not 1 <= int(min_delay) <= int(delay):
            raise ValueError(f"min_delay must be between 1 and delay ({delay}) steps, got {min_delay!r}")
        if not 2 <= num_pads <= len(CUE_COLOURS):
            raise ValueError(f"num_pads must be between 2 and {len(CUE_COLOURS)}, got {num_pads!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; expected None or 'rgb_array'")
        self.delay, self.active, self.num_pads = int(delay), bool(active), int(num_pads)
        # Mixed delays (a curriculum without a schedule): short episodes to learn the recall on.
        self.min_delay = self.delay if min_delay is None else int(min_delay)
        self._delay = self.delay  # this episode's
        self.cue_steps = int(cue_steps if cue_steps is not None else (12 if active else 5))
        self.recall_steps, self.num_apples = int(recall_steps), int(num_apples)
        self.apple_reward, self.final_reward = float(apple_reward), float(final_reward)
        self.fixed_pads = bool(fixed_pads)
        self.render_mode = render_mode
        self.observation_space = spaces.Dict(
            {"image": minigrid_image_space(), "direction": spaces.Discrete(4)}
        )
        self.action_space = spaces.Discrete(4)
        # Room interiors: cue room (3x3, or a 13x1 corridor when active), orchard 5x5, pad row.
        self._cue_room = _room(13, 1) if self.active else _room(3, 3)
        self._delay_room = _room(5, 5)
        self._recall_room = _room(2 * self.num_pads - 1, 3)
        self._grid = self._cue_room.copy()
        self._pos = np.zeros(2, dtype=np.int64)
        self._phase = CUE
        self._phase_steps = 0
        self._direction = 0
        self._cue = 0
        self._cue_start = 0  # the agent's column when the cue phase began

    # -- episode structure -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        colours = self.num_pads if self.fixed_pads else len(CUE_COLOURS)
        self._cue = int(self.np_random.integers(colours))
        if self.min_delay < self.delay:  # else no draw: the fixed-delay tasks keep their random streams
            self._delay = int(self.np_random.integers(self.min_delay, self.delay + 1))
        self._direction = 0
        self._enter(CUE)
        return self._observation(), {}

    def _enter(self, phase: int) -> None:
        self._phase, self._phase_steps = phase, 0
        cue_colour = COLOR_TO_IDX[CUE_COLOURS[self._cue]]
        if phase == CUE:
            self._grid = self._cue_room.copy()
            if self.active:  # corridor x = 1..13 (+PAD); ball at a random end, agent in the middle
                end = 1 if self.np_random.integers(2) == 0 else 13
                self._grid[PAD + end, PAD + 1] = (BALL, cue_colour, 0)
                self._pos[:] = (PAD + 7, PAD + 1)
                self._cue_start = int(self._pos[0])
            else:
                self._grid[PAD + 2, PAD + 1] = (BALL, cue_colour, 0)
                self._pos[:] = (PAD + 2, PAD + 2)
                self._cue_start = int(self._pos[0])
        elif phase == DELAY:
            self._grid = self._delay_room.copy()
            self._pos[:] = (PAD + 3, PAD + 3)
            for _ in range(self.num_apples):
                self._grow_apple()
        else:
            self._grid = self._recall_room.copy()
            if self.fixed_pads:
                colours = list(range(self.num_pads))
            else:
                others = [c for c in range(len(CUE_COLOURS)) if c != self._cue]
                chosen = list(self.np_random.choice(others, self.num_pads - 1, replace=False))
                colours = [self._cue, *chosen]
                self.np_random.shuffle(colours)
            for k, colour in enumerate(colours):
                self._grid[PAD + 1 + 2 * k, PAD + 1] = (BALL, COLOR_TO_IDX[CUE_COLOURS[colour]], 0)
            self._pos[:] = (PAD + self.num_pads, PAD + 3)

    def _grow_apple(self) -> None:
        free = np.argwhere(self._grid[..., 0] == EMPTY)
        free = free[(free[:, 0] != self._pos[0]) | (free[:, 1] != self._pos[1])]
        if len(free):
            x, y = free[self.np_random.integers(len(free))]
            self._grid[x, y] = (APPLE, APPLE_COLOUR, 0)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; expected an integer in [0, 4)")
        action = int(action)
        self._direction = action
        target = self._pos + MOVES[action]
        obj, colour = int(self._grid[target[0], target[1], 0]), int(self._grid[target[0], target[1], 1])
        reward, terminated, info = 0.0, False, {}
        if self._phase == RECALL and obj == BALL:
            correct = colour == COLOR_TO_IDX[CUE_COLOURS[self._cue]]
            reward = self.final_reward if correct else 0.0
            terminated = True
            info = {"success": correct}
        elif obj == APPLE:
            reward = self.apple_reward
            self._grid[target[0], target[1]] = (EMPTY, 0, 0)
            self._pos[:] = target
            self._grow_apple()
        elif obj == EMPTY:
            self._pos[:] = target
        self._phase_steps += 1
        if not terminated:
            if self._phase == CUE and self._phase_steps >= self.cue_steps:
                self._enter(DELAY)
            elif self._phase == DELAY and self._phase_steps >= self._delay:
                self._enter(RECALL)
            elif self._phase == RECALL and self._phase_steps >= self.recall_steps:
                terminated, info = True, {"success": False}
        return self._observation(), reward, terminated, False, info

    # -- read-only views for probes (benchmarks/memory_probe.py) -----------------------------------
    @property
    def phase(self) -> str:
        """The current phase: ``"cue"``, ``"delay"`` or ``"recall"``."""
        return ("cue", "delay", "recall")[self._phase]

    def cue_side(self) -> int:
        """Where the cue ball stands relative to the agent's start in the cue room: -1 west, +1 east,
        0 beside it (Passive). Meaningful during the cue phase only."""
        if not self.active:
            return 0
        west = int(self._grid[PAD + 1, PAD + 1, 0]) == BALL
        return -1 if west else 1

    def cue_room_offset(self) -> int:
        """The agent's column in the cue room relative to where it started there (negative: west of
        it, positive: east). Meaningful during the cue phase only."""
        return int(self._pos[0]) - self._cue_start

    def cue_in_view(self) -> bool:
        """The cue ball is inside the agent's view window now (always False outside the cue phase)."""
        if self._phase != CUE:
            return False
        return bool((self._observation()["image"][..., 0] == BALL).any())

    # -- observation and rendering ----------------------------------------------------------------
    def _observation(self) -> dict:
        x, y = self._pos
        image = self._grid[x - PAD : x + PAD + 1, y - PAD : y + PAD + 1].copy()
        image[PAD, PAD] = (AGENT, COLOR_TO_IDX["red"], 0)  # heading is in "direction"
        return {"image": image, "direction": self._direction}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        tile = 12
        objects, colours = self._grid[..., 0], self._grid[..., 1]
        palette = np.array([COLORS[name] for name in sorted(COLOR_TO_IDX, key=COLOR_TO_IDX.get)])
        rgb = np.zeros(objects.shape + (3,), dtype=np.uint8)
        rgb[objects == WALL] = 100
        shown = (objects == BALL) | (objects == APPLE)
        rgb[shown] = palette[colours[shown]]
        rgb[tuple(self._pos)] = 255
        image = rgb.transpose(1, 0, 2).repeat(tile, axis=0).repeat(tile, axis=1)
        return np.ascontiguousarray(image)


#: The short recall task of the learning tests: a 1-step cue, a 1-step delay, fixed pads, no apples.
EASY = {"delay": 1, "cue_steps": 1, "fixed_pads": True, "apple_reward": 0.0}


def register_visual_match() -> None:
    """Register ``{Passive,Active}VisualMatch-v0``, the ``-Short/-Medium/-Long-v0`` variants and
    ``-Easy-v0`` (``EASY``)."""
    for name, active in (("PassiveVisualMatch", False), ("ActiveVisualMatch", True)):
        entry = "envs.visual_match:VisualMatchEnv"
        if f"{name}-v0" not in gym.registry:
            gym.register(f"{name}-v0", entry_point=entry, kwargs={"active": active})
        easy = f"{name}-Easy-v0"
        if easy not in gym.registry:
            gym.register(easy, entry_point=entry, kwargs={"active": active, **EASY})
        for variant, delay in DELAYS.items():
            env_id = f"{name}-{variant}-v0"
            if env_id not in gym.registry:
                gym.register(env_id, entry_point=entry, kwargs={"active": active, "delay": delay})
