"""One learner update, shared by every runtime: re-run the network over unrolls, compute the loss
(IMPALA or A2C), clip gradients, step the optimiser and the learning-rate schedule.

An update that meets a non-finite value raises ``NonFiniteError`` naming where it came from: the
batch's rewards, a loss term or a gradient (then the optimiser does not step, and the weights stay as
they were), or a weight after the step (then the model is spoiled and must not be saved).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from .losses import LossTerms, Transitions, a2c_loss, impala_loss
from .novelty import first_sightings, first_views
from .recognition import Targets, has_scores, recognition_loss, targets_of
from .rollout import Unroll

DEFAULT_EPOCHS = {"impala": 3, "a2c": 1}
"""Optimiser steps per batch when the config says 0: V-trace lets impala reuse a batch; a2c is
on-policy. Three steps cut the shuffled recall's plateau about in half (docs/AGENTS.md)."""


@dataclass
class LearnerSettings:
    """The learner's share of the agent config (same field names as ``configs.AgentConfig``)."""

    agent: str = "impala"  # impala | a2c
    discount: float = 0.99
    baseline_cost: float = 0.5
    entropy_cost: float = 0.01
    td_lambda: float = 0.95
    clip_rho: float = 1.0
    clip_pg_rho: float = 1.0
    clip_c: float = 1.0
    max_grad_norm: float = 40.0
    epochs: int = 1
    action_value_cost: float = 0.0
    recognition_cost: float = 0.0
    novelty_bonus: float = 0.0
    view_novelty_bonus: float = 0.0
    advantage_norm: bool = False


def learner_settings(agent_config) -> LearnerSettings:
    """Pick the learner's fields out of an agent config (any object with those attributes); ``epochs``
    0 becomes the agent's default (``DEFAULT_EPOCHS``)."""
    settings = {f.name: getattr(agent_config, f.name) for f in fields(LearnerSettings)}
    settings["epochs"] = settings["epochs"] or DEFAULT_EPOCHS[settings["agent"]]
    return LearnerSettings(**settings)


def transitions_of(unroll: Unroll, discount: float) -> Transitions:
    """The ``T`` transitions of an unroll (see ``agents.rollout`` for the layout)."""
    return Transitions(
        actions=unroll.action[:-1],
        rewards=unroll.reward[1:],
        discounts=discount * (~unroll.terminated[1:]).float(),
        mask=~unroll.is_first[1:],  # the action at x_t was ignored if x_{t+1} is a reset
        behaviour_logits=unroll.behaviour_logits[:-1],
        policy_mask=~unroll.is_first[1:] & ~unroll.repeated[:-1],
    )


class NonFiniteError(ArithmeticError):
    """An update met a non-finite value; ``where`` names it, ``update`` is the update's number."""

    def __init__(self, where: str, update: int):
        super().__init__(f"{where} at update {update}")
        self.where, self.update = where, update


def first_non_finite(named_tensors) -> str | None:
    """The name of the first tensor of ``(name, tensor)`` pairs holding a NaN or an infinity, or None."""
    named = [(name, tensor) for name, tensor in named_tensors if tensor is not None]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named]).tolist()  # one sync
    return next((name for (name, _), ok in zip(named, finite, strict=True) if not ok), None)


AGENTS = ("impala", "a2c")  # the losses Learner.loss knows
OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(name: str, parameters, learning_rate: float,
                   adam_eps: float = 1e-8) -> torch.optim.Optimizer:
    """``adam`` (torch's betas, epsilon ``adam_eps``) or ``rmsprop`` (IMPALA's settings: alpha 0.99,
    eps 0.01)."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate, eps=adam_eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=learning_rate, alpha=0.99, eps=0.01)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


class Learner:
    """Holds the model, optimiser and schedule; ``update(unroll)`` returns scalar statistics."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 settings: LearnerSettings):
        self.model, self.optimizer, self.scheduler, self.settings = model, optimizer, scheduler, settings
        self.updates = 0
        self.recognition = settings.recognition_cost > 0 and has_scores(model)  # else the loss is off
        self.novelty = settings.novelty_bonus > 0 and has_scores(model)  # else no bonus

    def bonus(self, unroll: Unroll, targets: Targets | None = None) -> torch.Tensor | None:
        """The novelty bonus of each step of ``unroll``, ``[T + 1, B]`` (``agents.novelty``: new
        element values and new views, each with its weight), or None where both are off;
        ``targets`` lends its element ids."""
        bonus = None
        if self.novelty:
            ids = targets.ids if targets is not None else self.model.element_values(unroll.obs)
            sightings = first_sightings(ids, unroll.is_first, self.model.view_match.vocab_size)
            bonus = self.settings.novelty_bonus * sightings
        if self.settings.view_novelty_bonus > 0:
            views = self.settings.view_novelty_bonus * first_views(unroll.obs, unroll.is_first)
            bonus = views if bonus is None else bonus + views
        return bonus

    def loss(self, unroll: Unroll, targets: Targets | None = None,
             bonus: torch.Tensor | None = None) -> tuple[LossTerms, dict]:
        """The loss terms of ``unroll`` and their extras; ``targets``: the unroll's recognition targets,
        ``bonus``: its novelty bonus ``[T + 1, B]`` (each built here when needed and not given)."""
        s = self.settings
        out, _ = self.model.unroll(unroll.obs, unroll.last_action, unroll.reward, unroll.is_first,
                                   unroll.initial_state)
        batch = transitions_of(unroll, s.discount)
        bonus = bonus if bonus is not None else self.bonus(unroll, targets)
        if bonus is not None:  # paid with the transition that brought the new value into view
            batch = batch._replace(rewards=batch.rewards + bonus[1:])
        logits, values, bootstrap = out.logits[:-1], out.values[:-1], out.values[-1]
        q = out.action_values[:-1] if out.action_values is not None else None
        if s.agent == "impala":
            terms = impala_loss(logits, values, bootstrap, batch, s.baseline_cost, s.entropy_cost,
                                s.clip_rho, s.clip_pg_rho, s.clip_c, s.td_lambda, q, s.action_value_cost,
                                s.advantage_norm)
        elif s.agent == "a2c":
            terms = a2c_loss(logits, values, bootstrap, batch, s.baseline_cost, s.entropy_cost,
                             s.td_lambda, q, s.action_value_cost, s.advantage_norm)
        else:
            raise ValueError(f"unknown agent {s.agent!r}; expected one of {', '.join(AGENTS)}")
        extra = {"values_mean": values.detach().mean().item()}
        if self.recognition:
            t = targets if targets is not None else targets_of(self.model, unroll.obs, unroll.is_first)
            recognition, accuracy = recognition_loss(out.match_scores, t.labels, t.valid, t.ids, t.vocab_size)
            terms = terms._replace(total=terms.total + s.recognition_cost * recognition,
                                   recognition=recognition)
            if accuracy is not None:
                extra["recognition_accuracy"] = accuracy.item()
        return terms, extra

    def update(self, unroll: Unroll) -> dict[str, float]:
        """``settings.epochs`` optimiser steps on ``unroll`` (one learning-rate schedule step; counts as
        one update); the statistics are those of the last. ``NonFiniteError`` (see the module) where a
        value is not finite."""
        number = self.updates + 1
        targets = (targets_of(self.model, unroll.obs, unroll.is_first)
                   if self.recognition else None)
        bonus = self.bonus(unroll, targets)
        for _ in range(self.settings.epochs):
            terms, extra, grad_norm = self._step(unroll, number, targets, bonus)
        if self.scheduler is not None:
            self.scheduler.step()
        self.updates += 1
        stats = {} if terms.action_value is None else {"losses/action_value": terms.action_value.item()}
        if terms.recognition is not None:
            stats["losses/recognition"] = terms.recognition.item()
        if "recognition_accuracy" in extra:
            stats["losses/recognition_accuracy"] = extra["recognition_accuracy"]
        if bonus is not None:
            stats["losses/novelty_bonus"] = bonus[1:].mean().item()  # per transition
        return stats | {
            "losses/total": terms.total.item(), "losses/policy": terms.policy.item(),
            "losses/baseline": terms.baseline.item(), "losses/entropy": terms.entropy.item(),
            "losses/grad_norm": grad_norm.item(), "losses/values_mean": extra["values_mean"],
            "losses/learning_rate": self.optimizer.param_groups[0]["lr"],
        }

    def _step(self, unroll: Unroll, number: int, targets: Targets | None = None,
              bonus: torch.Tensor | None = None) -> tuple[LossTerms, dict, torch.Tensor]:
        """One optimiser step: the loss terms, their extras and the gradient norm before clipping."""
        terms, extra = self.loss(unroll, targets, bonus)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        checks = [("reward", unroll.reward), *((f"loss term {name!r}", getattr(terms, name))
                                              for name in ("policy", "baseline", "entropy",
                                                           "action_value", "recognition", "total")),
                  ("gradient norm", grad_norm)]
        bad = first_non_finite(checks)
        if bad is not None:  # before the step: the weights stay as they were
            if bad == "reward":
                bad = "reward in the batch (from the env)"
            elif bad == "gradient norm":
                name = first_non_finite((name, p.grad) for name, p in self.model.named_parameters())
                bad = f"gradient of parameter {name!r}" if name else bad
            raise NonFiniteError(f"non-finite {bad}", number)
        self.optimizer.step()
        bad = first_non_finite(self.model.named_parameters())
        if bad is not None:
            raise NonFiniteError(f"non-finite weight {bad!r} after the optimiser step", number)
        return terms, extra, grad_norm
