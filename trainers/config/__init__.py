"""Experiment configs: YAML files into frozen dataclasses, checked without JAX or wandb.

`load_experiment(path, overrides)` is what every command calls; the generic
machinery (`load_config`, `save_config`, `replace_path`, overrides) is in
`trainers.config.loader`, the schema in `experiment` and `sections`.
"""

from trainers.config.evaluation_section import EvalTaskConfig, EvaluationConfig
from trainers.config.experiment import (
    ExperimentConfig,
    GeodesicsConfig,
    OptimizerConfig,
    TaskConfig,
    load_experiment,
)
from trainers.config.loader import (
    ConfigError,
    apply_overrides,
    attribute_override,
    from_dict,
    load_config,
    parse_override,
    replace_path,
    save_config,
    to_dict,
)
from trainers.config.sections import (
    EstimatorOptions,
    LoggingConfig,
    MetaTrainConfig,
    OuterOptimizerConfig,
    UnrollOptions,
)
from trainers.config.task_families import build_family, family_for, task_variation

__all__ = [
    "ConfigError",
    "EstimatorOptions",
    "EvalTaskConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "GeodesicsConfig",
    "LoggingConfig",
    "MetaTrainConfig",
    "OptimizerConfig",
    "OuterOptimizerConfig",
    "TaskConfig",
    "UnrollOptions",
    "apply_overrides",
    "attribute_override",
    "build_family",
    "family_for",
    "from_dict",
    "load_config",
    "load_experiment",
    "parse_override",
    "replace_path",
    "save_config",
    "task_variation",
    "to_dict",
]
