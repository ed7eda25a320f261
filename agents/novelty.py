"""Novelty: an intrinsic reward for seeing something for the first time in the episode.

Where a cue has to be looked for (Active Visual Match: the ball at one end of a corridor, out of view
from the start), the recall's reward comes tens of steps after the walk that found it, and a policy
that has settled on one direction has no nearer reason to walk the other way. This bonus gives one:
``novelty_bonus`` for every element value (a cell's object, colour and state; a slot's symbol; the
ids of ``ViewMatch.element_values``) that comes into view for the first time in the episode, paid
with the step that brought it into view. What is in view at the episode's first step earns nothing
(no action brought it there), and neither does anything seen before, so the bonus is bounded by the
vocabulary per episode and walking back and forth earns nothing. An episodic first-sight count, in
the spirit of the episodic novelty of Badia et al. (2020, "Never Give Up") and of the first-visit
restriction of Zhang et al. (2021, "NovelD"), on the view-match vocabulary instead of learnt embeddings.

``first_views`` is the same count on whole observations: a step earns one where its observation
(every key together) differs from each one before it in the episode, so it pays for walking into a
part of a room not yet seen whether a cue is there or not. Where cells look alike it pays only where
something new comes into view: in the Active cue corridor, whose middle looks the same from every
cell, at its ends and at the first turn (the direction is part of the view); in the orchard, where
apples regrow at random, nearly every step; in the pad room it also pays for putting the choice off
(docs/AGENTS.md has the run that tried it there).

Each bonus is added to the learner's rewards only (the logged returns and success rates are the
env's). As the recognition labels, it is known only for episodes that began inside the unroll.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .recognition import episode_counts, past_known, present_values


def first_sightings(values: Tensor, is_first: Tensor, vocab_size: int) -> Tensor:
    """``values [T, B, K]`` (int64 element value ids below ``vocab_size``) and ``is_first [T, B]`` ->
    ``[T, B]`` float: how many distinct values are in view at step t for the first time in the
    episode, 0 at each episode's first step and before the unroll's first episode start (unknown)."""
    present = present_values(values, vocab_size)
    seen = episode_counts(present, is_first)  # steps in view since the episode began, through t
    first = (present & (seen == 1)).sum(-1).float()
    return first * (past_known(is_first) & ~is_first).float()


def view_codes(obs: dict[str, Tensor]) -> Tensor:
    """``obs {key: [T, B, ...]}`` -> ``[T, B]`` int64: equal codes for equal observations (every key,
    compared exactly: floats by their bits), distinct codes for distinct ones."""
    T, B = next(iter(obs.values())).shape[:2]
    columns = []
    for key in sorted(obs):
        value = obs[key].reshape(T * B, -1)
        if value.is_floating_point():  # by their bits; + 0.0 makes -0.0 the same bits as 0.0
            value = value + 0.0
            value = value.view(torch.int64) if value.dtype == torch.float64 else value.float().view(torch.int32)
        columns.append(value.long())
    _, codes = torch.unique(torch.cat(columns, dim=1), dim=0, return_inverse=True)
    return codes.view(T, B)


def first_views(obs: dict[str, Tensor], is_first: Tensor) -> Tensor:
    """``obs {key: [T, B, ...]}`` and ``is_first [T, B]`` -> ``[T, B]`` float: 1 where the step's
    observation is one not seen earlier in the episode, 0 at each episode's first step and before the
    unroll's first episode start (unknown)."""
    T, B = is_first.shape
    codes = view_codes(obs)
    column = torch.arange(B, device=codes.device).expand(T, B)
    # one group per (env, episode, view); a step is new where it is its group's earliest step
    key = torch.stack([column, is_first.long().cumsum(0), codes], dim=-1).view(T * B, 3)
    _, group = torch.unique(key, dim=0, return_inverse=True)
    step = torch.arange(T, device=codes.device)[:, None].expand(T, B).reshape(-1)
    earliest = torch.full((int(group.max()) + 1,), T, device=codes.device, dtype=step.dtype)
    earliest = earliest.scatter_reduce(0, group, step, reduce="amin")
    new = (step == earliest[group]).view(T, B)
    return (new & past_known(is_first) & ~is_first).float()
