"""The core registry: names to classes and presets, plus ``package.module:ClassName`` imports."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
from typing import Any

from .base import Core
from .goru import GORUCore
from .gru import GRUCore
from .lru import LRUCore
from .lstm import LSTMCore
from .min_rnn import MinGRUCore, MinLSTMCore
from .mlp import MLPCore

#: Horizon of the chrono presets (c_lstm, c_gru); override with ``t_max=...``.
DEFAULT_T_MAX = 500

UNIFORM_REFINE = {"gate_init": "uniform", "aux_gate": "refine"}

#: name -> (class, preset options). Options given to ``make_core`` override the preset.
CORES: dict[str, tuple[type[Core], dict[str, Any]]] = {
    "mlp": (MLPCore, {}),
    "lstm": (LSTMCore, {}),
    "u_lstm": (LSTMCore, {"gate_init": "uniform"}),
    "r_lstm": (LSTMCore, {"aux_gate": "refine"}),
    "ur_lstm": (LSTMCore, UNIFORM_REFINE),
    "c_lstm": (LSTMCore, {"gate_init": "chrono", "t_max": DEFAULT_T_MAX}),
    "o_lstm": (LSTMCore, {"gate_init": "ordered"}),
    "on_lstm": (LSTMCore, {"aux_gate": "master"}),
    "gru": (GRUCore, {}),
    "u_gru": (GRUCore, {"gate_init": "uniform"}),
    "r_gru": (GRUCore, {"aux_gate": "refine"}),
    "ur_gru": (GRUCore, UNIFORM_REFINE),
    "c_gru": (GRUCore, {"gate_init": "chrono", "t_max": DEFAULT_T_MAX}),
    "o_gru": (GRUCore, {"gate_init": "ordered"}),
    "goru": (GORUCore, {}),
    "min_gru": (MinGRUCore, {}),
    "min_lstm": (MinLSTMCore, {}),
    "ur_min_gru": (MinGRUCore, UNIFORM_REFINE),
    "ur_min_lstm": (MinLSTMCore, UNIFORM_REFINE),
    "lru": (LRUCore, {}),
}


def available_cores() -> list[str]:
    """Registered core names, in registry order."""
    return list(CORES)


def register_core(name: str, cls: type[Core], **preset: Any) -> None:
    """Add ``name`` to the registry (a ``Core`` subclass taking ``(input_size, hidden_size, **opts)``)."""
    _check_core_class(cls, name)
    CORES[name] = (cls, dict(preset))


def make_core(name: str, input_size: int, hidden_size: int, **options: Any) -> Core:
    """Build a core by registry name or ``package.module:ClassName``.

    Raises ``ValueError`` naming the problem for an unknown name, an unimportable class, or an option
    the core does not take.
    """
    if ":" in name:
        cls, preset = _import_core(name), {}
    elif name in CORES:
        cls, preset = CORES[name]
    else:
        close = difflib.get_close_matches(name, CORES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown core {name!r}{hint}; available: {', '.join(CORES)}, "
            "or 'package.module:ClassName' for your own Core subclass"
        )
    _check_options(cls, name, options)
    for key, value in options.items():  # t_max=.nan would build a core whose outputs are all NaN
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"core option {key} must be a finite number, got {value!r}")
    return cls(input_size, hidden_size, **{**preset, **options})


def with_defaults(name: str, options: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """``options`` plus each of ``defaults`` (the program's, e.g. ``refine_bias``) that core ``name``
    names in its constructor and ``options`` does not set. A ``**kwargs`` catch-all does not count:
    nothing is passed to a core on a guess. An unknown name adds nothing (``make_core`` says why)."""
    try:
        cls = _import_core(name) if ":" in name else CORES[name][0]
    except (KeyError, ValueError):
        return dict(options)
    params = inspect.signature(cls.__init__).parameters
    return {**{k: v for k, v in defaults.items() if k in params}, **options}


def core_factory(name: str, hidden_size: int, options: dict[str, Any], **defaults: Any):
    """``input_size -> Core``: ``make_core`` of ``name`` with ``options`` and those of the program's
    ``defaults`` the core takes (``with_defaults``); what ``agents.networks.ActorCritic.build`` wants."""
    return functools.partial(make_core, name, hidden_size=hidden_size,
                             **with_defaults(name, options, **defaults))


def _import_core(path: str) -> type[Core]:
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import core {path!r}: {error}") from None
    except Exception as error:  # the user's module itself fails: name it and its error, in one line
        raise ValueError(f"importing core {path!r} raised {type(error).__name__}: {error}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"cannot import core {path!r}: module {module_name!r} has no {class_name!r}")
    _check_core_class(cls, path)
    return cls


def _check_core_class(cls: Any, name: str) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, Core)):
        raise ValueError(f"core {name!r} is {cls!r}, not a subclass of cores.Core")


def _check_options(cls: type[Core], name: str, options: dict[str, Any]) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [k for k, p in params.items()
               if k not in ("self", "input_size", "hidden_size")
               and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"unknown option {key!r} for core {name!r}; allowed: {', '.join(allowed) or 'none'}"
            )
