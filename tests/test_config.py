"""Tests of the config layer: schema checks, overrides, YAML files, ExperimentConfig."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

import tasks
from trainers.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    parse_override,
    replace_path,
    save_config,
    to_dict,
)
from trainers.config.experiment import (
    ExperimentConfig,
    TaskConfig,
    build_family,
    load_experiment,
    task_variation,
)
from trainers.config.sections import MetaTrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 4
    kind: Literal["relu", "sigmoid"] = "relu"
    sizes: tuple[int, ...] = (8,)


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    lr: float = 0.1
    note: str | None = None
    shape: tuple[int, str] = (1, "a")
    steps: tuple[int, ...] = ()
    flags: dict[str, bool] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    verbose: bool = False
    inner: Inner = dataclasses.field(default_factory=Inner)
    maybe: Inner | None = None


def _write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def test_from_dict_converts_nested_data():
    data = {
        "name": "r",
        "lr": 1,
        "note": None,
        "shape": [2, "b"],
        "steps": [1, 2],
        "flags": {"a": True},
        "extra": {"xs": [1, 2]},
        "inner": {"width": 7, "kind": "sigmoid", "sizes": [3, 4]},
    }
    config = from_dict(Outer, data)
    assert config == Outer(
        "r",
        1.0,
        None,
        (2, "b"),
        (1, 2),
        {"a": True},
        {"xs": [1, 2]},
        False,
        Inner(7, "sigmoid", (3, 4)),
    )
    assert type(config.lr) is float
    assert type(config.inner.sizes) is tuple and type(config.steps) is tuple
    assert from_dict(Outer, {"name": "r"}) == Outer("r")  # defaults fill the rest
    assert hash(from_dict(Inner, {"sizes": [1]})) == hash(Inner(sizes=(1,)))
    data["extra"]["new"] = 1  # a fresh dict: no aliasing of the input mapping
    assert "new" not in config.extra


def test_to_dict_round_trips():
    config = from_dict(Outer, {"name": "r", "shape": [2, "b"], "extra": {"o": {"p": [1]}}})
    data = to_dict(config)
    assert data["shape"] == [2, "b"] and data["inner"] == {"width": 4, "kind": "relu", "sizes": [8]}
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    assert from_dict(Outer, data) == config
    assert to_dict(Outer("r", extra={"t": (1, (2,))}))["extra"] == {"t": [1, [2]]}


def test_unknown_nested_key_names_dotted_key_valid_keys_and_file(tmp_path):
    path = _write(tmp_path, "name: r\ninner:\n  widht: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    message = str(info.value)
    assert "inner.widht" in message and str(path) in message
    assert "width, kind, sizes" in message
    assert info.value.key == "inner.widht"


def test_missing_required_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"exp\.yaml: name: missing required key"):
        load_config(Outer, _write(tmp_path, "lr: 0.5\n"))


@pytest.mark.parametrize(
    "data, key, expected",
    [
        ({"inner": {"width": "three"}}, "inner.width", "expected int, got str 'three'"),
        ({"inner": {"width": True}}, "inner.width", "expected int, got bool True"),
        ({"lr": "fast"}, "lr", "expected float, got str 'fast'"),
        ({"lr": False}, "lr", "expected float"),
        ({"verbose": 1}, "verbose", "expected bool, got int 1"),
        ({"note": 3}, "note", "expected str | None"),
        ({"inner": {"sizes": [1, "x"]}}, "inner.sizes[1]", "expected int"),
        ({"inner": {"sizes": "12"}}, "inner.sizes", "expected tuple[int, ...]"),
        ({"shape": [1, 2, 3]}, "shape", "2 items"),
        ({"flags": {"a": "yes"}}, "flags.a", "expected bool"),
        ({"extra": [1]}, "extra", "expected Mapping"),
        ({"inner": 5}, "inner", "expected a mapping for Inner"),
        ({"maybe": 5}, "maybe", "expected a mapping for Inner | None"),
        ({"maybe": {"width": 1.5}}, "maybe.width", "expected int, got float 1.5"),
    ],
)
def test_wrong_type_names_key_and_expected_type(data, key, expected):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, {"name": "r", **data}, source="src.yaml")
    assert info.value.key == key
    assert str(info.value).startswith(f"src.yaml: {key}: ")
    assert expected in str(info.value)


@dataclasses.dataclass(frozen=True)
class Checked:
    """A schema with a `__post_init__` check and an optional nested section."""

    low: int = 0
    high: int = 1
    inner: Inner | None = None

    def __post_init__(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")


@dataclasses.dataclass(frozen=True)
class Either:
    value: int | str = 0


def test_post_init_error_and_mapping_keys_are_located():
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, {"name": "r", "maybe": {"widht": 1}})
    assert info.value.key == "maybe.widht"  # an optional section's own problem, not its type
    with pytest.raises(ConfigError, match=r"^<dict>: sec: low \(2\) must not exceed high \(1\)$"):
        from_dict(Checked, {"low": 2}, path="sec")
    with pytest.raises(ConfigError, match=r"^<dict>: flags \(key 3\): expected str, got int 3$"):
        from_dict(Outer, {"name": "r", "flags": {3: True}})
    assert from_dict(Checked, {"low": 1, "inner": None}) == Checked(1, 1)


def test_unions_other_than_optional_are_a_schema_error():
    with pytest.raises(TypeError, match=r"X \| None unions only"):
        from_dict(Either, {"value": 1})


def test_literal_violation_lists_allowed_values():
    with pytest.raises(
        ConfigError,
        match=r"inner\.kind: expected one of 'relu', 'sigmoid', "
        r"got str 'tanh'",
    ):
        from_dict(Outer, {"name": "r", "inner": {"kind": "tanh"}})


@pytest.mark.parametrize(
    "text, path, value",
    [
        ("a.b.c=3", ["a", "b", "c"], 3),
        ("lr=1e-3", ["lr"], 1e-3),
        ("lr=-2E5", ["lr"], -2e5),
        ("lr=1.5e3", ["lr"], 1500.0),
        ("sizes=[32, 32]", ["sizes"], [32, 32]),
        ("flag=true", ["flag"], True),
        ("x=null", ["x"], None),
        ("s=abc", ["s"], "abc"),
        ("s=a=b", ["s"], "a=b"),
    ],
)
def test_parse_override_values(text, path, value):
    parsed_path, parsed = parse_override(text)
    assert parsed_path == path
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["seed", "=3", "a..b=1", "a.=1", "x=[1,"])
def test_bad_override_syntax_names_override(text):
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [text])
    assert repr(text) in str(info.value)


def test_apply_overrides_returns_new_dict():
    data = {"name": "r", "inner": {"width": 1}}
    result = apply_overrides(data, ["inner.width=2", "inner.kind=sigmoid", "new.deep.key=1"])
    assert result == {
        "name": "r",
        "inner": {"width": 2, "kind": "sigmoid"},
        "new": {"deep": {"key": 1}},
    }
    assert data == {"name": "r", "inner": {"width": 1}}
    assert apply_overrides(data, ["inner.width=2", "inner.width=3"])["inner"]["width"] == 3


def test_override_below_non_mapping_is_rejected():
    with pytest.raises(ConfigError, match=r"seed \(from override 'seed\.x=1'\).*int 3"):
        apply_overrides({"seed": 3}, ["seed.x=1"])


def test_overrides_apply_on_top_of_file(tmp_path):
    path = _write(tmp_path, "name: r\nlr: 1e-3\ninner: {width: 2}\n")
    config = load_config(Outer, path, ["inner.width=64", "inner.sizes=[32, 32]", "lr=2"])
    assert config.inner == Inner(64, "relu", (32, 32))
    assert config.lr == 2.0
    assert load_config(Outer, path).lr == 1e-3  # YAML-1.1 "1e-3" read as a float


def test_float_override_for_int_names_key_and_override(tmp_path):
    path = _write(tmp_path, "name: r\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path, ["inner.width=1e-3"])
    message = str(info.value)
    assert "inner.width" in message and "expected int, got float 0.001" in message
    assert "from override 'inner.width=1e-3'" in message and str(path) in message


def test_override_on_typo_key_says_it_came_from_override(tmp_path):
    path = _write(tmp_path, "name: r\n")
    with pytest.raises(
        ConfigError,
        match=r"inner\.widht \(from override 'inner\.widht=3'\): "
        r"unknown key",
    ):
        load_config(Outer, path, ["lr=0.5", "inner.widht=3"])
    with pytest.raises(ConfigError, match=r"inner\.bad \(from override 'inner=\{bad: 1\}'\)"):
        load_config(Outer, path, ["inner={bad: 1}"])


def test_error_from_file_does_not_blame_unrelated_override(tmp_path):
    path = _write(tmp_path, "name: r\nlr: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path, ["inner.width=2"])
    assert info.value.key == "lr" and "override" not in str(info.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path, "name: r\ninner:\n  width: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path.name}: invalid YAML at line \d+"):
        load_config(Outer, path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config file"):
        load_config(Outer, tmp_path / "nope.yaml")


def test_top_level_list_is_rejected_and_empty_file_means_defaults(tmp_path):
    with pytest.raises(ConfigError, match=r"top level must be a mapping"):
        load_config(Outer, _write(tmp_path, "- name: r\n"))
    assert load_config(Inner, _write(tmp_path, "", "empty.yaml")) == Inner()


def test_save_load_round_trip_is_plain_yaml_and_atomic(tmp_path):
    config = from_dict(
        Outer,
        {
            "name": "r",
            "lr": 1e-10,
            "shape": [2, "b"],
            "extra": {"o": {"p": [1, 2]}},
            "inner": {"sizes": [1, 2]},
        },
    )
    path = tmp_path / "run" / "config.yaml"
    save_config(config, path)
    assert load_config(Outer, path) == config
    text = path.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == to_dict(config)
    assert text.startswith("name: r\n")  # field order kept (sort_keys=False)
    assert os.listdir(path.parent) == ["config.yaml"]  # no temp file left behind


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    save_config(Outer("old"), path)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(yaml.YAMLError):  # not plain data: cannot be written as safe YAML
        save_config(Outer("new", extra={"x": object()}), path)

    def crash(src, dst):  # a crash between writing the temp file and moving it in place
        assert Path(src).read_text(encoding="utf-8").startswith("name: new")
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_config(Outer("new"), path)
    with pytest.raises(ConfigError, match=r"inner\.width: expected int"):
        save_config(Outer("new", inner=Inner(width="3")), path)
    assert path.read_text(encoding="utf-8") == before
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_replace_path_changes_one_field_and_validates():
    config = Outer("r")
    changed = replace_path(config, "inner.sizes", [5])
    assert changed == Outer("r", inner=Inner(sizes=(5,)))
    assert config == Outer("r")
    assert replace_path(config, "inner", Inner(width=9)).inner == Inner(width=9)
    with pytest.raises(ConfigError, match=r"inner\.width \(from override .*expected int"):
        replace_path(config, "inner.width", "wide")
    with pytest.raises(ConfigError, match=r"inner\.depth .*unknown key"):
        replace_path(config, "inner.depth", 3)


def test_example_config_loads():
    config = load_experiment(CONFIGS / "digits_mlp.yaml")
    assert config == ExperimentConfig(
        name="digits_mlp",
        seed=0,
        task=TaskConfig(
            "digits_mlp", {"hidden_sizes": [20], "activation": "sigmoid", "batch_size": 128}
        ),
        meta_train=MetaTrainConfig(validate_every=10),
    )
    config = load_experiment(CONFIGS / "digits_mlp.yaml", ["task.options.batch_size=64"])
    assert config.task.options["batch_size"] == 64


def test_experiment_name_is_required(tmp_path):
    with pytest.raises(ConfigError, match=r"exp\.yaml: name: missing required key"):
        load_experiment(_write(tmp_path, "seed: 1\n"))


@pytest.mark.parametrize(
    "overrides, key, problem",
    [
        (["task.name=digitz"], "task.name", "unknown task 'digitz'"),
        (["task.options.hiden=3"], "task.options.hiden", "unknown key"),
        (["task.options.batch_size=-1"], "task.options", "batch_size must be positive"),
        (["task.options.batch_size=abc"], "task.options.batch_size", "expected int"),
        (["task.options.activation=swish"], "task.options.activation", "sigmoid"),
    ],
)
def test_task_registry_errors_name_the_key_file_and_override(overrides, key, problem):
    with pytest.raises(ConfigError) as info:
        load_experiment(CONFIGS / "digits_mlp.yaml", overrides)
    assert info.value.key == key and problem in str(info.value)
    assert f"digits_mlp.yaml: {key} (from override {overrides[0]!r})" in str(info.value)


def test_build_family_passes_the_run_data_dir(tiny_data_dir, tmp_path):
    path = _write(tmp_path, "name: m\ntask: {name: mnist_mlp, options: {batch_size: 4}}\n")
    config = load_experiment(path, [f"data_dir={tiny_data_dir}"])
    family = build_family(config)
    assert family.options.data_dir == str(tiny_data_dir) and family.options.batch_size == 4
    assert build_family(load_experiment(CONFIGS / "digits_mlp.yaml")).options.hidden_sizes == (20,)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_experiment(path)
    assert config.name and config.task.name in tasks.list_tasks()


def test_scoring_on_validation_needs_a_validation_split():
    path = CONFIGS / "digits_mlp.yaml"
    with pytest.raises(ConfigError, match=r"meta_train\.unroll\.score_on .*validation_size > 0"):
        load_experiment(path, ["meta_train.unroll.score_on=validation"])
    config = load_experiment(
        path, ["meta_train.unroll.score_on=validation", "task.options.validation_size=300"]
    )
    assert (
        config.meta_train.unroll.score_on == "validation"
        and config.task.options["validation_size"] == 300
    )


def test_task_variation_defaults_to_the_task_family_s_own():
    path = CONFIGS / "digits_mlp.yaml"
    config = load_experiment(path)
    assert config.meta_train.task_variation is None
    assert task_variation(config) == {"input_scale_range": (0.5, 2.0), "permute_labels": True}
    training = build_family(config, training=True).options
    assert training.permute_labels is True and training.input_scale_range == (0.5, 2.0)
    assert build_family(config).options.permute_labels is False  # evaluation: as configured
    off = load_experiment(path, ["meta_train.task_variation={}"])
    assert (
        task_variation(off) == {}
        and build_family(off, training=True).options.permute_labels is False
    )
    cubic = load_experiment(path, ["task.name=poly_cubic", "task.options={}"])
    assert task_variation(cubic) == {}  # synthetic instances already differ


def test_task_variation_applies_to_the_meta_training_family_only():
    path = CONFIGS / "digits_mlp.yaml"
    config = load_experiment(
        path, ["meta_train.task_variation={permute_labels: true, input_scale_range: [0.5, 2.0]}"]
    )
    assert build_family(config, training=True).options.permute_labels is True
    assert build_family(config, training=True).options.input_scale_range == (0.5, 2.0)
    assert build_family(config).options.permute_labels is False  # evaluation: as configured
    with pytest.raises(ConfigError, match="bogus"):
        load_experiment(path, ["meta_train.task_variation={bogus: 1}"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluation.parallel_runs=-1", "parallel_runs must be >= 0"),
        ("geodesics.spectrum.num_probes=0", "num_probes"),
        ("geodesics.spectrum.trajectory_points=1", "trajectory_points >= 2"),
        ("geodesics.spectrum_optimizers=[{name: nope}]", "geodesics.spectrum_optimizers[0].name"),
    ],
)
def test_new_sections_reject_bad_values_by_name(override, message):
    from trainers.config.experiment import load_experiment

    with pytest.raises(ConfigError) as info:
        load_experiment("configs/digits_mlp.yaml", [override])
    assert message in str(info.value) and override in str(info.value)
