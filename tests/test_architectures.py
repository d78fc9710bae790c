"""The learned-optimizer architecture registry: kinds, pre-registry data, the v2 input table."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from meta_opt import features
from meta_opt.architectures import (
    ARCHITECTURES,
    LearnedOptimizerConfig,
    architecture_class,
    architecture_from_fields,
    resolve,
)
from meta_opt.lstm_v1_config import LSTMv1Config
from meta_opt.lstm_v2_config import INPUT_TABLE, INPUTS, LSTMv2Config
from meta_opt.pretrained_bundles import list_pretrained, load_pretrained, pretrained_card
from trainers.config import from_dict, to_dict
from trainers.config.experiment import ExperimentConfig
from trainers.config.typed import ConfigError
from trainers.io.checkpoint import save_checkpoint

# Every field the pre-registry `LSTMOptimizer` class wrote, at its defaults (v1: inputs empty).
PRE_REGISTRY = {
    "hidden_sizes": [20, 20],
    "preprocess_p": 10.0,
    "output_scale": 0.1,
    "features": ["gradient"],
    "momentum_decay": 0.9,
    "inputs": [],
    "momentum_decays": [0.5, 0.9, 0.99, 0.999],
    "rms_decay": 0.999,
    "rms_eps": 1e-12,
    "step_timescales": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0],
    "horizon": None,
    "magnitude_scale": 1.0,
    "relative_update": False,
    "relative_floor": 0.001,
}


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_each_registered_kind_is_a_config_class_with_an_implementation(kind):
    cls = architecture_class(kind)
    assert issubclass(cls, LearnedOptimizerConfig) and dataclasses.is_dataclass(cls)
    config = cls()
    assert config.kind == kind and kind in config.summary
    module = importlib.import_module(cls.implementation)
    assert callable(module.init_meta_params) and callable(module.transformation)
    params = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    meta_params = config.init(jax.random.PRNGKey(0))
    tx = config.transformation(meta_params)
    updates, _ = tx.update(params, tx.init(params), params)
    assert jax.tree_util.tree_map(np.shape, updates) == jax.tree_util.tree_map(np.shape, params)
    assert from_dict(LearnedOptimizerConfig, to_dict(config)) == config


def test_configuration_modules_load_without_jax():
    names = sorted({ref.partition(":")[0] for ref in ARCHITECTURES.values()})
    code = (
        "import importlib, sys; "
        + "; ".join(f"importlib.import_module({n!r})" for n in names)
        + "; print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'haiku'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_an_unknown_kind_or_another_kinds_field_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"lstm\.kind: unknown architecture 'lstm_v9'"):
        from_dict(LearnedOptimizerConfig, {"kind": "lstm_v9"}, path="lstm")
    with pytest.raises(ConfigError, match=r"lstm\.inputs: unknown key"):
        from_dict(LearnedOptimizerConfig, {"kind": "lstm_v1", "inputs": ["momenta"]}, path="lstm")
    with pytest.raises(ConfigError, match=r"lstm\.features: only used by lstm_v1"):
        from_dict(
            LearnedOptimizerConfig,
            {"inputs": ["momenta"], "features": ["gradient", "momentum"]},
            path="lstm",
        )
    with pytest.raises(ValueError, match="^inputs"):
        LSTMv2Config(inputs=())


def test_pre_registry_data_loads_as_the_version_it_was():
    assert architecture_from_fields(PRE_REGISTRY) == LSTMv1Config()
    v2 = {**PRE_REGISTRY, "inputs": ["momenta", "param"], "relative_update": True}
    assert architecture_from_fields(v2) == LSTMv2Config(
        inputs=("momenta", "param"), relative_update=True
    )
    assert from_dict(LearnedOptimizerConfig, v2) == architecture_from_fields(v2)
    with pytest.raises(ValueError, match="^horizon: only used by lstm_v2"):
        architecture_from_fields({**PRE_REGISTRY, "horizon": 100})


@pytest.mark.parametrize("name", ["v2_digits", "v2_mixed"])
def test_the_shipped_bundles_written_before_the_registry_load_as_lstm_v2(name):
    assert name in list_pretrained()
    card = pretrained_card(name)
    assert "kind" not in card["lstm"]  # written before the registry
    config, meta_params = load_pretrained(name)
    expected = LSTMv2Config(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in card["lstm"].items()
            if k not in ("features", "momentum_decay")
        }
    )
    assert config == expected and config.inputs == tuple(card["lstm"]["inputs"])
    shapes = jax.tree_util.tree_map(np.shape, meta_params)
    assert shapes == jax.tree_util.tree_map(np.shape, config.init(jax.random.PRNGKey(1)))


def test_a_format_2_checkpoint_with_a_pre_registry_config_loads(tmp_path):
    from trainers.config.task_families import build_family
    from trainers.pipelines.learned_checkpoints import load_learned
    from trainers.pipelines.train import initial_meta_state

    config = ExperimentConfig(name="pre_registry")
    plain = to_dict(config)
    plain["meta_train"]["lstm"] = {**PRE_REGISTRY, "hidden_sizes": [4]}  # no kind, both versions
    config = from_dict(ExperimentConfig, plain)
    assert config.meta_train.lstm == LSTMv1Config(hidden_sizes=(4,))
    state = initial_meta_state(config, build_family(config))
    save_checkpoint(tmp_path, 3, state, {"config": plain})
    learned = load_learned(tmp_path)
    assert learned.config.meta_train.lstm == LSTMv1Config(hidden_sizes=(4,))
    assert learned.path.name == "ckpt-00000003" and learned.run_folder == tmp_path
    same = jax.tree_util.tree_map(np.array_equal, learned.meta_params, state.meta_params)
    assert all(jax.tree_util.tree_leaves(same))


def test_the_input_table_has_one_computation_per_row_and_fixes_the_widths():
    assert tuple(features.COMPUTE) == INPUTS == tuple(spec.name for spec in INPUT_TABLE)
    config = LSTMv2Config(inputs=INPUTS, horizon=10, momentum_decays=(0.9, 0.99))
    n, grad = 5, jax.numpy.linspace(-1.0, 1.0, 5)
    segments = features.segments_of({"a": np.zeros(2), "b": np.zeros(3)})
    momenta, second = features.update_moments(config, np.zeros((n, 2)), np.zeros(n), grad)
    raw = features.raw_inputs(config, grad, momenta, second, np.int32(0), grad, segments)
    assert {k: v.shape for k, v in raw.items()} == {
        k: (n, w) for k, w in config.input_widths.items()
    }
    assert features.feature_matrix(config, raw, segments).shape == (n, config.num_features)
    assert resolve("meta_opt.lstm_v2_config:INPUTS") is INPUTS
