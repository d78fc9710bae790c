"""Pretrained bundles: save, list, load as an optax transformation, refuse corrupt ones; export and
evaluate one from a tiny training run end to end."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import meta_opt
from meta_opt import (
    LSTMOptimizer,
    PretrainedError,
    list_pretrained,
    load_pretrained,
    pretrained_card,
)
from meta_opt.pretrained_bundles import save_pretrained
from trainers.config import from_dict
from trainers.config.experiment import ExperimentConfig
from trainers.evaluation.seen_tasks import meta_training_saw

CONFIG = LSTMOptimizer(hidden_sizes=(4,), output_scale=0.05, features=("gradient", "momentum"))
PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -0.25])}


def quadratic_loss(params):
    return sum(jnp.sum((x - 0.3) ** 2) for x in jax.tree_util.tree_leaves(params))


def run(tx, steps=5):
    params, state, losses = PARAMS, tx.init(PARAMS), []
    for _ in range(steps):
        loss, grads = jax.value_and_grad(quadratic_loss)(params)
        updates, state = tx.update(grads, state, params)
        params, losses = optax.apply_updates(params, updates), losses + [float(loss)]
    return params, losses


@pytest.fixture
def bundle_dir(tmp_path):
    meta_params = CONFIG.init(jax.random.PRNGKey(7))
    save_pretrained("toy", CONFIG, meta_params, {"meta_steps": 3}, "# toy\n", tmp_path)
    return tmp_path, meta_params


def test_a_saved_bundle_lists_loads_and_steps_like_its_weights(bundle_dir):
    folder, meta_params = bundle_dir
    assert list_pretrained(folder) == ["toy"]
    config, loaded = load_pretrained("toy", folder)
    assert config == CONFIG
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, meta_params)
    card = pretrained_card("toy", folder)
    assert card["meta_steps"] == 3 and card["name"] == "toy" and card["lstm"]["hidden_sizes"] == [4]
    from_bundle, _ = run(meta_opt.pretrained("toy", folder))
    from_weights, _ = run(CONFIG.transformation(meta_params))
    jax.tree_util.tree_map(np.testing.assert_array_equal, from_bundle, from_weights)
    assert (folder / "toy" / "README.md").read_text() == "# toy\n"


def test_unknown_names_and_damaged_bundles_are_refused_by_name(bundle_dir):
    folder, _ = bundle_dir
    with pytest.raises(PretrainedError, match=r"no pretrained optimizer 'nope'.*known: toy"):
        load_pretrained("nope", folder)
    weights = folder / "toy" / "weights.npz"
    original = weights.read_bytes()
    weights.write_bytes(original[:-10] + bytes(10))
    with pytest.raises(PretrainedError, match="checksum"):
        load_pretrained("toy", folder)
    weights.write_bytes(original)
    card_path = folder / "toy" / "card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "lstm": {**card["lstm"], "hidden_sizes": [8]}}))
    with pytest.raises(PretrainedError, match="do not fit"):
        load_pretrained("toy", folder)
    card_path.write_text(json.dumps({**card, "lstm": {**card["lstm"], "bogus": 1}}))
    with pytest.raises(PretrainedError, match="not a learned-optimizer configuration"):
        load_pretrained("toy", folder)
    card_path.write_text(json.dumps({**card, "format": 99}))
    with pytest.raises(PretrainedError, match="format-1"):
        load_pretrained("toy", folder)


TRAIN = [
    "meta_train.num_meta_steps=2",
    "meta_train.unroll.horizon=10",
    "meta_train.unroll.unroll_length=5",
    "meta_train.num_instances=2",
    "meta_train.validate_every=0",
    "meta_train.checkpoint_every=1",
    "meta_train.lstm.hidden_sizes=[4]",
    "evaluation.seeds=2",
    "evaluation.tuning_seeds=1",
    "evaluation.steps=6",
    "evaluation.record_points=3",
    "evaluation.learning_rates=[0.1]",
    "evaluation.baselines=[adam]",
    "logging.mode=disabled",
]


@pytest.mark.slow
def test_export_then_evaluate_pretrained_equals_evaluating_the_run(tmp_path, monkeypatch, capsys):
    from trainers.commands.cli import main

    config = pathlib.Path(__file__).parents[1] / "configs" / "digits_mlp.yaml"
    run_dir, shipped = tmp_path / "train", tmp_path / "shipped"
    assert (
        main(["train", "--config", str(config), "--out", str(run_dir), "--no-progress", *TRAIN])
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run_dir),
                "--out",
                str(tmp_path / "eval_run"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(run_dir),
                "--name",
                "tiny",
                "--to",
                str(shipped),
                "--evaluation",
                str(tmp_path / "eval_run"),
                "--notes",
                "two meta-steps",
            ]
        )
        == 0
    )
    card = pretrained_card("tiny", shipped)
    assert card["meta_steps"] == 2 and card["config"]["task"]["name"] == "digits_mlp"
    early = run_dir / "checkpoints" / "ckpt-00000001"  # a run stopped before its launch setting
    assert (
        main(["export", "--checkpoint", str(early), "--name", "early", "--to", str(shipped)]) == 0
    )
    early_card = pretrained_card("early", shipped)
    assert early_card["meta_steps"] == early_card["config"]["meta_train"]["num_meta_steps"] == 1
    assert early_card["launched_meta_steps"] == 2
    assert card["evaluation"][0]["optimizers"][0]["optimizer"] == "lstm"
    readme = (shipped / "tiny" / "README.md").read_text()
    assert (
        "meta_opt.pretrained('tiny')" in readme
        and "two meta-steps" in readme
        and "| lstm" in readme
    )
    assert "permute_labels" in readme  # the family's default task variation is on the card
    assert card["meta_training_saw"] == {"families": ["digits_mlp"], "kinds": ["mlp_classifier"]}
    assert "task kinds seen (an `unseen` suite refuses tasks of these): mlp_classifier" in readme

    # the shipped-bundle folder is meta_opt's; point it at the exported one
    monkeypatch.setattr("meta_opt.pretrained_bundles.PRETRAINED_DIR", shipped)
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                "pretrained:tiny",
                "--out",
                str(tmp_path / "eval_bundle"),
                "--no-progress",
            ]
        )
        == 0
    )
    from_run = json.loads((tmp_path / "eval_run" / "results.json").read_text())[0]["optimizers"]
    from_bundle = json.loads((tmp_path / "eval_bundle" / "results.json").read_text())[0][
        "optimizers"
    ]
    assert [o["optimizer"] for o in from_bundle] == ["tiny", "adam"]
    np.testing.assert_allclose(from_bundle[0]["final_loss"], from_run[0]["final_loss"], rtol=1e-6)

    capsys.readouterr()
    assert main(["pretrained"]) == 0 and capsys.readouterr().out.split() == ["early", "tiny"]
    assert (
        main(["pretrained", "tiny"]) == 0
        and "# Pretrained optimizer `tiny`" in capsys.readouterr().out
    )
    assert main(["pretrained", "nope"]) == 2 and "known: early, tiny" in capsys.readouterr().err
    assert (
        main(["export", "--checkpoint", str(run_dir), "--name", "tiny", "--to", str(shipped)]) == 2
    )
    assert "--force" in capsys.readouterr().err
    assert (
        main(["export", "--checkpoint", str(run_dir), "--name", "Bad Name", "--to", str(shipped)])
        == 2
    )
    assert "lower-case" in capsys.readouterr().err


def test_the_card_names_every_meta_training_family_and_the_horizon_range():
    from trainers.config.experiment import load_experiment
    from trainers.pipelines.export import training_summary

    configs = pathlib.Path(__file__).parents[1] / "configs"
    mixed = training_summary(load_experiment(configs / "pretrain_v2_mixed.yaml"), 250)
    tasks_line = next(line for line in mixed if line.startswith("- tasks: "))
    assert [part.split("`")[1] for part in tasks_line.removeprefix("- tasks: ").split("; ")] == [
        "digits_mlp",
        "digits_mlp",
        "mnist_mlp",
        "digits_autoencoder",
    ]
    assert '"activation": "relu"' in tasks_line and '"hidden_sizes": [32, 32]' in tasks_line
    assert any(
        "250 meta-steps of 4 instances of each of the 4 task families" in line
        and "horizons drawn log-uniformly from [20, 100]" in line
        for line in mixed
    )
    assert any(
        "param_scale_range" in line and "each family takes the options it has" in line
        for line in mixed
    )
    single = training_summary(load_experiment(configs / "pretrain_v2.yaml"), 1000)
    assert single[0].startswith("- task: `digits_mlp`")
    assert any(
        "1000 meta-steps of 8 instances, unrolls of 20 steps, horizon 100," in line
        for line in single
    )


@pytest.mark.parametrize(
    "name, task_name",
    [
        ("v2_digits", "digits_mlp"),
        ("v2_digits", "wine_mlp"),
        ("v2_mixed", "digits_mlp"),
        ("v2_mixed", "wine_mlp"),
    ],
)
def test_the_shipped_optimizers_train_a_fresh_task_deterministically(name, task_name):
    import tasks

    assert name in list_pretrained(), (
        f"the shipped optimizer {name} is missing from meta_opt/pretrained_optimizers"
    )
    tx = meta_opt.pretrained(name)
    task = tasks.get_family(task_name, hidden_sizes=(16,), batch_size=32).instance(
        jax.random.PRNGKey(11)
    )

    @jax.jit
    def train(key):
        params = task.init(key)

        def step(carry, batch_key):
            params, state = carry
            loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(batch_key))
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, 100))
        return task.eval_loss(task.init(key)), task.eval_loss(params)

    before, after = train(jax.random.PRNGKey(0))
    assert float(after) < 0.5 * float(before), (float(before), float(after))
    again = train(jax.random.PRNGKey(0))
    assert float(again[1]) == float(after)  # deterministic on CPU


def test_every_shipped_card_says_the_meta_steps_it_ran():
    from meta_opt import list_pretrained

    for name in list_pretrained():
        card = pretrained_card(name)
        assert card["config"]["meta_train"]["num_meta_steps"] == card["meta_steps"], name
        assert card.get("launched_meta_steps", card["meta_steps"]) >= card["meta_steps"], name
        trained = from_dict(ExperimentConfig, card["config"])
        assert card["meta_training_saw"] == meta_training_saw(trained), name
