"""Named evaluation suites and the check that an `unseen` suite is unseen (no JAX work)."""

from __future__ import annotations

import dataclasses

import pytest

import tasks.registry
from meta_opt import list_pretrained, pretrained_card
from trainers.config import ConfigError, from_dict
from trainers.config.evaluation_section import EvalTaskConfig
from trainers.config.experiment import ExperimentConfig, load_experiment
from trainers.config.sections import TaskConfig
from trainers.config.suites import list_suites, load_suite
from trainers.errors import RunError
from trainers.evaluation.seen_tasks import check_unseen, meta_training_saw, seen_rows

MIXED = "configs/pretrain_hierarchical_mixed.yaml"  # four families, two kinds


def test_every_family_has_a_known_kind():
    assert set(tasks.registry.FAMILIES) == set(tasks.registry.list_tasks())
    for name in tasks.registry.list_tasks():
        assert tasks.registry.family_kind(name) in tasks.registry.KINDS, name
    assert tasks.registry.family_kind("transformer_lm") == "sequence"
    assert tasks.registry.family_kind("wine_mlp") == tasks.registry.family_kind("digits_mlp")


def test_meta_training_saw_the_task_and_the_extra_tasks_once_each():
    config = load_experiment(MIXED)
    names = [config.task.name, *(t.name for t in config.meta_train.extra_tasks)]
    saw = meta_training_saw(config)
    assert saw["families"] == list(dict.fromkeys(names))
    assert saw["kinds"] == sorted({tasks.registry.family_kind(n) for n in names})
    alone = dataclasses.replace(
        config,
        task=TaskConfig("quadratic", {}),
        meta_train=dataclasses.replace(config.meta_train, extra_tasks=()),
    )
    assert meta_training_saw(alone) == {"families": ["quadratic"], "kinds": ["regression"]}


def test_an_unseen_suite_refuses_an_optimizer_that_met_one_of_its_kinds():
    config = load_experiment(MIXED)  # saw MLP classifiers (digits) and the digits autoencoder
    rows = [
        EvalTaskConfig("wine_mlp", {}, 10, "wine"),  # another MLP classifier: seen
        EvalTaskConfig("char_rnn_lm", {}, 10, "lm"),
        EvalTaskConfig("mnist_autoencoder", {}, 10, "ae"),  # an autoencoder: seen
    ]
    lines = seen_rows(rows, [("mine", config)])
    assert len(lines) == 2
    assert lines[0].startswith("mine: wine is a mlp_classifier task") and "digits_mlp" in lines[0]
    assert lines[1].startswith("mine: ae is a autoencoder task")
    with pytest.raises(RunError, match="marked unseen") as err:
        check_unseen("mine_suite", rows, [("mine", config)])
    assert "wine" in str(err.value) and "lm" not in str(err.value).split("\n")[1]
    check_unseen("ok", rows[1:2], [("mine", config)])  # a sequence model: nothing raised


def test_the_shipped_unseen_suite_is_unseen_for_every_shipped_optimizer():
    name, suite = load_suite("unseen")
    assert name == "unseen" and suite.unseen and len(suite.tasks) >= 8
    shipped = [
        (bundle, from_dict(ExperimentConfig, pretrained_card(bundle)["config"]))
        for bundle in list_pretrained()
    ]
    shipped.append(("hierarchical", load_experiment(MIXED)))
    check_unseen(name, suite.tasks, shipped)
    seen = {kind for _, config in shipped for kind in meta_training_saw(config)["kinds"]}
    assert not seen & {tasks.registry.family_kind(t.name) for t in suite.tasks}


def test_every_shipped_suite_loads_with_steps_and_labels_filled_in():
    assert {"unseen", "broad"} <= set(list_suites())
    for name in list_suites():
        _, suite = load_suite(name)
        labels = [t.label for t in suite.tasks]
        assert all(labels) and len(set(labels)) == len(labels), name
        assert all(t.steps == (t.steps or suite.steps) and t.steps >= 1 for t in suite.tasks)
    _, broad = load_suite("broad")
    kinds = {tasks.registry.family_kind(t.name) for t in broad.tasks}
    assert kinds == set(tasks.registry.KINDS)  # one task of every kind


def test_a_suite_file_with_bad_content_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown suite 'nope'.*unseen"):
        load_suite("nope")
    bad_task = tmp_path / "bad.yaml"
    bad_task.write_text("tasks:\n  - {name: digits_mlp}\n  - {name: no_such_task}\n")
    with pytest.raises(ConfigError) as err:
        load_suite(str(bad_task))
    assert err.value.key == "tasks[1].name" and "no_such_task" in str(err.value)
    bad_option = tmp_path / "option.yaml"
    bad_option.write_text("tasks:\n  - {name: char_rnn_lm, options: {cell: transformer}}\n")
    with pytest.raises(ConfigError, match="cell"):
        load_suite(str(bad_option))
    twice = tmp_path / "twice.yaml"
    twice.write_text("tasks:\n  - {name: quadratic}\n  - {name: quadratic}\n")
    with pytest.raises(ConfigError, match="repeated"):
        load_suite(str(twice))
    empty = tmp_path / "empty.yaml"
    empty.write_text("description: nothing\n")
    with pytest.raises(ConfigError, match="at least one task"):
        load_suite(str(empty))
