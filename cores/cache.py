"""Reuse of tensors derived from parameters (effective biases, orthogonal matrices) at inference.

While autograd records, the derived tensor must be rebuilt so gradients reach the parameters. With
autograd off (actors, evaluation) it only changes when a parameter does, which the key detects: an
optimiser step or ``load_state_dict`` bumps the version counter, ``.to()`` moves the storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class InferenceCache:
    """Holds one derived tensor, rebuilt whenever autograd is on or a source parameter changed."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Tensor | None = None

    def get(self, sources: Iterable[Tensor], build: Callable[[], Tensor]) -> Tensor:
        if torch.is_grad_enabled():
            return build()
        key = tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in sources)
        if key != self._key:
            self._value = build()
            self._key = key
        return self._value
