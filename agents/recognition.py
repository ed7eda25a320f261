"""Recognition: an auxiliary loss that teaches the view-match scores what "I have seen this" means.

With ``view_match`` the heads read one score per element in view (``agents.view_match``), but only
the policy gradient tells the query what to look for, and it carries a signal only once the policy
already uses the scores: a chicken-and-egg plateau that lasted 3.6M-6.4M frames on the shuffled
visual match (docs/AGENTS.md). This loss trains each score, as a logit, to say whether the element's
value (a cell's object, colour and state; a slot's symbol) is *seen again*: it was in view earlier in
the episode, went out of view, and is back. That needs memory of exactly what the recall needs (the
cue's colour is seen again among the pads; the other pads are seen for the first time), and it is
labelled from the observations alone, with no knowledge of the task.

Labels are built from the learner's unroll, so an episode that began before the unroll is not known
from its start: its steps carry no label (``valid`` is False) until the next episode starts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Targets(NamedTuple):
    """What the loss compares the scores with, fixed for an unroll (the observations alone decide it,
    so the learner builds it once per batch, not once per optimiser step)."""

    ids: Tensor  # [T, B, K] int64 element value ids (ViewMatch.element_values)
    labels: Tensor  # [T, B, K] bool, seen again
    valid: Tensor  # [T, B] bool, the episode's start is in the unroll
    vocab_size: int


def has_scores(model: nn.Module) -> bool:
    """Whether ``model`` has view-match scores for the loss to train (view match on, and elements in
    its observations); without them the loss has no effect."""
    return getattr(model, "view_match", None) is not None


def targets_of(model: nn.Module, obs: dict[str, Tensor], is_first: Tensor) -> Targets:
    """The recognition targets of an unroll: ``obs {key: [T, B, ...]}``, ``is_first [T, B]``; ``model``
    an ``ActorCritic`` with view match."""
    ids, vocab_size = model.element_values(obs), model.view_match.vocab_size
    labels, valid = seen_again(ids, is_first, vocab_size)
    return Targets(ids, labels, valid, vocab_size)


def present_values(values: Tensor, vocab_size: int) -> Tensor:
    """``values [T, B, K]`` (int64 ids below ``vocab_size``) -> ``[T, B, vocab_size]`` bool: each
    value is in view at that step."""
    T, B, _ = values.shape
    present = torch.zeros(T, B, vocab_size, dtype=torch.bool, device=values.device)
    return present.scatter_(2, values, True)


def episode_counts(events: Tensor, is_first: Tensor) -> Tensor:
    """``events [T, B, V]`` (bool) and ``is_first [T, B]`` -> ``[T, B, V]`` int64: the events of each
    value from the start of the episode through step t (from the unroll's first step for an episode
    that began before it)."""
    counts = events.long().cumsum(0)
    previous = torch.zeros_like(counts)
    previous[1:] = counts[:-1]
    # the count before each episode's start, carried forward by a running maximum (counts only grow)
    at_start = torch.where(is_first[:, :, None], previous, torch.zeros_like(previous))
    return counts - torch.cummax(at_start, dim=0).values


def past_known(is_first: Tensor) -> Tensor:
    """``is_first [T, B]`` -> ``[T, B]`` bool: the step's episode began at or after the unroll's first
    step, so its whole past is in the unroll."""
    return is_first.long().cumsum(0) > 0


def seen_again(values: Tensor, is_first: Tensor, vocab_size: int) -> tuple[Tensor, Tensor]:
    """``values [T, B, K]`` (int64, each element's value id below ``vocab_size``) and ``is_first
    [T, B]`` -> ``labels [T, B, K]`` (bool: the value was in view earlier in the episode, then out of
    view for at least one step, and is in view now) and ``valid [T, B]`` (bool: the episode began at
    or after the unroll's first step, so its whole past is in the unroll)."""
    present = present_values(values, vocab_size)
    # in view at the step before, in the same episode (the unroll's first step has no step before)
    before = torch.zeros_like(present)
    before[1:] = present[:-1] & ~is_first[1:, :, None]
    sightings = episode_counts(present & ~before, is_first)  # sightings that began in the episode by t
    labels = sightings.gather(2, values) >= 2
    return labels, past_known(is_first)


def recognition_loss(scores: Tensor, labels: Tensor, valid: Tensor, values: Tensor,
                     vocab_size: int) -> tuple[Tensor, Tensor | None]:
    """Binary cross-entropy of ``scores [T, B, K]`` (logits) against ``labels [T, B, K]`` on the
    ``valid [T, B]`` steps, each (value, label) pair present weighing the same: the mean over the
    elements of each pair (``values [T, B, K]``, ids below ``vocab_size``), then over the pairs.
    Returns the loss and, weighted alike, the accuracy of ``scores > 0`` (None where no step is
    valid; the loss is then zero, with a gradient).

    Plain means would be solved without memory: most labels belong to values whose answer never
    changes (floor and walls, always in view, never seen again), and the informative few (a ball of
    the cue's colour among the pads, seen again; the other pads, seen for the first time) would be
    a fraction of a percent of the loss."""
    mask = valid[:, :, None].expand_as(labels)
    target = labels.to(scores.dtype)
    losses = F.binary_cross_entropy_with_logits(scores, target, reduction="none")[mask]
    if losses.numel() == 0:
        return scores.sum() * 0.0, None
    pair = (values * 2 + labels.long())[mask]
    counts = losses.new_zeros(2 * vocab_size).index_add_(0, pair, torch.ones_like(losses))
    present = counts > 0

    def pair_mean(x: Tensor) -> Tensor:
        return (x.new_zeros(2 * vocab_size).index_add_(0, pair, x)[present] / counts[present]).mean()

    correct = ((scores.detach() > 0).to(scores.dtype) == target)[mask].to(scores.dtype)
    return pair_mean(losses), pair_mean(correct)
