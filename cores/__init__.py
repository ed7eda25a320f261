"""Pluggable recurrent cores: the gating family of Gu et al. (ICML 2020), GORU, scan-trainable cores
(minGRU, minLSTM, their UR variants, LRU), and an MLP control.

    >>> from cores import make_core
    >>> core = make_core("ur_lstm", input_size=64, hidden_size=128)
    >>> y, state = core(x, core.initial_state(batch_size), is_first)   # x [T, B, 64] -> y [T, B, 128]
"""

from .base import Core, State, map_state, rebuild_state, select_state
from .goru import GORUCore, modrelu
from .gru import GRUCore, GRUState
from .lru import LRUCore, LRUState
from .lstm import LSTMCore, LSTMState
from .min_rnn import MinGRUCore, MinLSTMCore, MinRNNState
from .mlp import MLPCore
from .registry import CORES, available_cores, core_factory, make_core, register_core, with_defaults
from .scan import linear_scan

__all__ = [
    "CORES",
    "Core",
    "GORUCore",
    "GRUCore",
    "GRUState",
    "LRUCore",
    "LRUState",
    "LSTMCore",
    "LSTMState",
    "MLPCore",
    "MinGRUCore",
    "MinLSTMCore",
    "MinRNNState",
    "State",
    "available_cores",
    "core_factory",
    "linear_scan",
    "make_core",
    "map_state",
    "modrelu",
    "rebuild_state",
    "register_core",
    "select_state",
    "with_defaults",
]
