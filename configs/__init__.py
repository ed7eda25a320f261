"""Training configuration: dataclasses, YAML presets (``configs/*.yaml``), validation."""

from .config import (
    AgentConfig,
    ConfigError,
    CoreConfig,
    EnvConfig,
    RunConfig,
    TrainConfig,
    as_flags,
    field_docs,
    field_owners,
    key_values,
    load_config,
    load_run_config,
    presets,
    safe_yaml,
)

__all__ = [
    "AgentConfig",
    "ConfigError",
    "CoreConfig",
    "EnvConfig",
    "RunConfig",
    "TrainConfig",
    "as_flags",
    "field_docs",
    "field_owners",
    "key_values",
    "load_config",
    "load_run_config",
    "presets",
    "safe_yaml",
]
