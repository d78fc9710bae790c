"""Evaluation: vmapped runs, baseline tuning, summaries, verdicts and the task list."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import meta_opt
import tasks
from tasks.base import Task, TaskFamily
from trainers.config.sections import EvalTaskConfig, EvaluationConfig
from trainers.core.trajectories import make_run, recorded_steps, run_grid
from trainers.evaluation.contenders import baseline, grid_runs, learned_contender, tune
from trainers.evaluation.evaluate import adam_reference, evaluate_task, evaluation_keys
from trainers.evaluation.statistics import (
    best_baseline,
    mean_and_se,
    steps_to_target,
    summarize,
    tuning_score,
)
from trainers.evaluation.task_list import generalization_tasks, real_mnist_dir, resolve_tasks
from trainers.evaluation.verdicts import paired_verdict
from trainers.reporting import evaluation_report as eval_report
from trainers.reporting.evaluation_report import loss_ratio
from trainers.reporting.tables import format_mean_se


def diagonal_quadratic(curvatures) -> TaskFamily:
    """f(theta) = 0.5 sum_i h_i theta_i^2, deterministic: gradient descent is solvable by hand."""
    h = jnp.asarray(curvatures, jnp.float32)

    def make_task(key):
        loss = lambda params: 0.5 * jnp.sum(h * params["theta"] ** 2)
        return Task(
            "diag_quadratic",
            init=lambda k: {"theta": jnp.ones_like(h) + 0 * jax.random.normal(k, h.shape)},
            loss=lambda params, batch: loss(params),
            sample_batch=lambda k: {},
            eval_loss=loss,
        )

    return TaskFamily("diag_quadratic", None, make_task)


def gd_final_loss(curvatures, lr, steps) -> float:
    """Closed form: theta_i <- (1 - lr h_i) theta_i from theta = 1."""
    h = np.asarray(curvatures, np.float64)
    return float(0.5 * np.sum(h * (1 - lr * h) ** (2 * steps)))


def test_recorded_steps_include_start_and_end():
    assert recorded_steps(100, 50).tolist() == list(range(0, 101, 2))
    assert recorded_steps(7, 3).tolist() == [0, 3, 6, 7]
    assert recorded_steps(5, 50).tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="num_steps"):
        recorded_steps(0, 3)


def test_tuning_picks_the_best_learning_rate_of_a_quadratic_with_known_curvature():
    # Curvatures 1 and 3: after many steps SGD's best rate is 2 / (1 + 3) = 0.5 (contraction
    # max|1 - lr h| = 0.5); 0.7 diverges along h = 3 (|1 - 2.1| > 1).
    curvatures, steps = (1.0, 3.0), 40
    grid = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    contender = baseline("sgd", grid)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    tuning = tune(diagonal_quadratic(curvatures), contender, keys, steps, record_points=4)
    expected = [gd_final_loss(curvatures, lr, steps) for lr in grid]
    np.testing.assert_allclose(tuning.scores, expected, rtol=1e-3, atol=1e-30)
    assert tuning.chosen == {"learning_rate": pytest.approx(0.5)}
    assert int(np.argmin(expected)) == tuning.best
    assert tuning.at_edge() == []


def test_a_diverging_setting_scores_inf_and_an_edge_choice_is_flagged():
    # h = 4: lr = 1/h reaches the minimum in one step; lr = 5 multiplies theta by -19 per step
    # and overflows float32 within 20 steps.
    contender = baseline("sgd", [0.05, 0.25, 5.0])
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    tuning = tune(diagonal_quadratic([4.0]), contender, keys, 20, record_points=2)
    assert tuning.chosen["learning_rate"] == pytest.approx(0.25)
    assert math.isinf(tuning.scores[2])
    edge = tune(diagonal_quadratic([4.0]), baseline("sgd", [0.01, 0.02]), keys, 10, record_points=2)
    assert edge.chosen["learning_rate"] == pytest.approx(0.02) and edge.at_edge() == [
        "learning_rate"
    ]


def test_esgd_is_tuned_over_learning_rate_and_damping_jointly():
    contender = baseline("esgd", [0.1, 1.0], [1e-3, 1e-1])
    assert len(contender.grid["learning_rate"]) == len(contender.grid["damping"]) == 4
    assert sorted(
        zip(contender.grid["learning_rate"].tolist(), contender.grid["damping"].tolist())
    ) == sorted(
        (a, b) for a in np.float32([0.1, 1.0]).tolist() for b in np.float32([1e-3, 1e-1]).tolist()
    )


def test_tuning_score_is_the_mean_and_inf_when_any_seed_diverges():
    finals = np.array([[1.0, 3.0], [0.5, np.nan], [2.0, np.inf]])
    np.testing.assert_array_equal(tuning_score(finals), [2.0, np.inf, np.inf])


def test_run_grid_matches_a_python_loop_with_the_same_keys():
    family = tasks.get_family("quadratic", dim=4, batch_noise=0.1)
    lrs = np.array([0.01, 0.03], np.float32)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    runs = run_grid(
        family, lambda hp: optax.adam(hp["lr"]), {"lr": jnp.asarray(lrs)}, keys, 7, record_points=3
    )
    assert runs.curves.shape == (2, 2, 4) and runs.batch_losses.shape == (2, 2, 7)
    for g, lr in enumerate(lrs):
        for k, key in enumerate(keys):
            instance_key, init_key, batch_key = jax.random.split(key, 3)
            task = family.instance(instance_key)
            params, tx = task.init(init_key), optax.adam(float(lr))
            state, curve, losses = tx.init(params), [float(task.eval_loss(params))], []
            for step, step_key in enumerate(jax.random.split(batch_key, 7), start=1):
                batch = task.sample_batch(step_key)
                loss, grads = jax.value_and_grad(task.loss)(params, batch)
                updates, state = tx.update(grads, state, params)
                params = optax.apply_updates(params, updates)
                losses.append(float(loss))
                if step in (3, 6, 7):
                    curve.append(float(task.eval_loss(params)))
            np.testing.assert_allclose(runs.curves[g, k], curve, rtol=1e-4)
            np.testing.assert_allclose(runs.batch_losses[g, k], losses, rtol=1e-4)


def test_the_adam_reference_is_the_envelope_of_each_learning_rate_run_alone():
    family = tasks.get_family("quadratic", dim=4, batch_noise=0.1)
    adam = baseline("adam", [1e-3, 0.1, 30.0])  # too slow, good, diverging
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    reference = adam_reference(family, adam, keys, 12, record_points=4)
    grid = grid_runs(family, adam, keys, 12, record_points=4)
    assert grid.curves.shape[:2] == (3, 3)
    np.testing.assert_array_equal(reference.steps, recorded_steps(12, 4))
    means = []
    for lr in (1e-3, 0.1, 30.0):  # each setting alone, as its own grid of one
        alone = run_grid(
            family, lambda hp: optax.adam(hp["lr"]), {"lr": jnp.array([lr])}, keys, 12, 4
        )
        curve = alone.curves[0]
        means.append(np.where(np.isfinite(curve).all(0), curve.mean(0), np.inf))
    np.testing.assert_allclose(reference.mean_curve, np.min(means, axis=0), rtol=1e-5)
    assert reference.mean_curve[-1] < reference.mean_curve[0]


def test_run_grid_tunes_a_convolutional_task(tiny_data_dir):
    # A tuning grid on a conv net once raised NotImplementedError (jax could not batch the
    # weight gradient's grouped convolution a second time); each setting's runs must equal
    # that setting run alone, on the same keys.
    family = tasks.get_family("mnist_cnn", channels=(2,), batch_size=4, data_dir=str(tiny_data_dir))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    lrs = np.array([0.01, 0.1], np.float32)
    runs = run_grid(
        family, lambda hp: optax.sgd(hp["lr"]), {"lr": jnp.asarray(lrs)}, keys, 4, record_points=2
    )
    assert runs.curves.shape == (2, 2, 3) and np.isfinite(runs.curves).all()
    for g, lr in enumerate(lrs):
        alone = run_grid(
            family, lambda hp, lr=float(lr): optax.sgd(lr), {}, keys, 4, record_points=2
        )
        np.testing.assert_allclose(runs.curves[g], alone.curves[0], rtol=1e-5)
    assert not np.allclose(runs.curves[0], runs.curves[1])  # the settings did differ
    batched = run_grid(
        family,
        lambda hp: optax.sgd(hp["lr"]),
        {"lr": jnp.asarray(lrs)},
        keys,
        4,
        record_points=2,
        parallel_runs=3,
    )  # 4 runs, in batches of 3 (the last one padded)
    np.testing.assert_allclose(batched.curves, runs.curves, rtol=1e-5)
    np.testing.assert_allclose(batched.batch_losses, runs.batch_losses, rtol=1e-5)


def test_make_run_gives_curvature_optimizers_the_objective():
    # ESGD needs value_fn; make_run passes it, so a run neither fails nor stays at its start.
    family = tasks.get_family("quadratic", dim=3)
    run = make_run(
        family,
        lambda hp: meta_opt.get_optimizer("esgd", learning_rate=hp["lr"], update_interval=2),
        10,
        2,
    )
    out = jax.jit(run)({"lr": jnp.float32(0.05)}, jax.random.PRNGKey(0))
    assert float(out["curve"][-1]) < float(out["curve"][0])


def test_mean_and_se_against_the_formula():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(3.5)
    assert se == pytest.approx(np.sqrt(np.sum((values - 3.5) ** 2) / 3) / 2)
    assert math.isnan(mean_and_se(np.array([2.0]))[1])


def test_steps_to_target_takes_the_first_crossing_per_run():
    steps = np.array([0, 10, 20, 30])
    curves = np.array([[5.0, 2.0, 0.9, 0.5], [5.0, 0.8, 2.0, 0.1], [5.0, 4.0, 3.0, 2.0]])
    np.testing.assert_array_equal(steps_to_target(steps, curves, 1.0), [20.0, 10.0, np.nan])


def test_evaluation_keys_separate_tuning_from_held_out_and_tasks():
    tuning, held_out = evaluation_keys(0, 0, 4, 8)
    other_task = evaluation_keys(0, 1, 4, 8)[1]
    rows = {tuple(np.asarray(k).tolist()) for k in [*tuning, *held_out, *other_task]}
    assert len(rows) == 20
    np.testing.assert_array_equal(held_out, evaluation_keys(0, 0, 4, 8)[1])  # deterministic


def test_evaluate_task_pairs_seeds_and_summarizes_against_independent_numbers(tmp_path):
    family = diagonal_quadratic([1.0, 3.0])
    tuning_keys, held_out_keys = evaluation_keys(0, 0, 2, 3)
    lstm = meta_opt.LSTMOptimizer(hidden_sizes=(4,))
    contenders = [
        learned_contender("learned", lstm, lstm.init(jax.random.PRNGKey(0))),
        baseline("sgd", [0.2, 0.5]),
        baseline("momentum", [0.01, 0.1]),
    ]
    result = evaluate_task(
        family,
        contenders,
        12,
        tuning_keys=tuning_keys,
        held_out_keys=held_out_keys,
        record_points=4,
    )
    sgd = result.results[1]
    np.testing.assert_allclose(
        sgd.final_losses, [gd_final_loss([1.0, 3.0], 0.5, 12)] * 3, rtol=1e-3
    )
    assert result.results[0].tuning is None and result.results[0].learned
    # default target: the worst baseline's mean final loss, which every baseline reaches
    means = [np.mean(r.final_losses) for r in result.results[1:]]
    assert result.target_loss == pytest.approx(max(means))
    rows = summarize(result)
    assert [r["optimizer"] for r in rows] == ["learned", "sgd", "momentum"]
    assert rows[1]["final_loss"][0] == pytest.approx(np.mean(sgd.final_losses))
    assert rows[1]["chosen"] == {"learning_rate": pytest.approx(0.5)}
    for row, contender in zip(rows, result.results):  # censored median: misses count as slowest
        hits = steps_to_target(contender.runs.steps, contender.runs.curves[0], result.target_loss)
        assert row["median_steps_to_target"] == np.median(np.nan_to_num(hits, nan=np.inf))
        # wall clock: the held-out call's measured time over its 12 steps, and the median
        # steps to target times that (inf where half the seeds or more never get there)
        assert 0 < contender.runs.seconds < 60
        assert row["step_seconds"] == pytest.approx(contender.runs.seconds / 12)
        assert row["seconds_to_target"] == pytest.approx(
            row["median_steps_to_target"] * row["step_seconds"]
        )
    assert (
        best_baseline(result).label
        == min(result.results[1:], key=lambda r: np.mean(r.final_losses)).label
    )
    # the curves plot shows each optimizer's mean over seeds, ending at the table's final loss
    figure = eval_report.plot_curves(result, tmp_path / "curves.png")
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    for row, contender in zip(rows, result.results):
        np.testing.assert_allclose(lines[row["optimizer"]].get_xdata(), contender.runs.steps)
        np.testing.assert_allclose(
            lines[row["optimizer"]].get_ydata()[-1], row["final_loss"][0], rtol=1e-6
        )
    np.testing.assert_allclose(
        lines["sgd"].get_ydata()[0], gd_final_loss([1.0, 3.0], 0.5, 0), rtol=1e-5
    )


def test_paired_verdict():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    assert paired_verdict(base * 0.5, base)[1] == "wins"
    assert paired_verdict(base * 2.0, base)[1] == "loses"
    assert paired_verdict(base + np.array([0.1, -0.1, 0.1, -0.1]), base)[1] == "inconclusive"
    assert paired_verdict(np.array([1.0, np.nan, 1.0, 1.0]), base)[1] == "diverges"
    assert paired_verdict(base, np.array([1.0, np.inf, 1.0, 1.0]))[1] == "wins"
    # the rule is the t interval, not 2 SE: a mean difference of 2.5 SE is beyond 2 SE but
    # inside t(0.975, 3) = 3.18 SE, so on 3 degrees of freedom it is inconclusive
    d = np.array([-1.0, 1.0, -1.0, 1.0]) * 0.5
    se = np.std(d, ddof=1) / 2
    interval, verdict = paired_verdict(base + d + 2.5 * se, base)
    assert verdict == "inconclusive" and interval.dof == 3
    t_975_df3 = 3.182446305284263  # tables: t(0.975, 3)
    assert interval.lower == pytest.approx(2.5 * se - t_975_df3 * se)
    assert paired_verdict(base + d + 3.5 * se, base)[1] == "loses"
    assert loss_ratio(base * 0.5, base) == pytest.approx(0.5)
    assert math.isinf(loss_ratio(np.array([1.0, np.nan, 1.0, 1.0]), base))
    assert math.isnan(loss_ratio(base, np.array([1.0, np.inf, 1.0, 1.0])))


def test_format_mean_se():
    assert format_mean_se((0.05639, 0.00296)) == "0.0564 ± 0.0030"
    assert format_mean_se((12.34, 0.5)) == "12.3 ± 0.5"
    assert format_mean_se((math.inf, math.nan)) == "∞"
    assert format_mean_se((math.nan, math.nan)) == "—"


def test_resolve_tasks_defaults_to_the_training_task_and_fits_options_to_other_families():
    options = {"hidden_sizes": [20], "activation": "sigmoid", "batch_size": 64}
    default = resolve_tasks(EvaluationConfig(), "digits_mlp", options, horizon=100)
    assert default == [EvalTaskConfig("digits_mlp", options, 100, "digits_mlp")]
    listed = resolve_tasks(
        EvaluationConfig(steps=30),
        "digits_mlp",
        options,
        100,
        extra_names=["digits_mlp", "digits_autoencoder"],
    )
    assert [(t.name, t.steps) for t in listed] == [("digits_mlp", 30), ("digits_autoencoder", 30)]
    assert listed[1].options == {"activation": "sigmoid", "batch_size": 64}  # no hidden_sizes there
    configured = EvaluationConfig(tasks=(EvalTaskConfig("quadratic", {"dim": 3}, 7, ""),))
    assert resolve_tasks(configured, "digits_mlp", options, 100) == [
        EvalTaskConfig("quadratic", {"dim": 3}, 7, "quadratic")
    ]


def test_generalization_variants(tmp_path):
    options = {"hidden_sizes": [20], "activation": "sigmoid"}
    assert real_mnist_dir(str(tmp_path)) is None  # no MNIST files in tmp_path
    variants = generalization_tasks("digits_mlp", options, 100, mnist_dir=None)
    by_label = {v.label: v for v in variants}
    assert (
        by_label["digits_mlp 2x steps"].steps == 200
        and by_label["digits_mlp 10x steps"].steps == 1000
    )
    assert by_label["digits_mlp wider (40)"].options["hidden_sizes"] == [40]
    assert by_label["digits_mlp deeper (20-20)"].options["hidden_sizes"] == [20, 20]
    assert by_label["digits_mlp relu"].options["activation"] == "relu"
    assert not any(v.name == "mnist_mlp" for v in variants)
    for variant in variants:
        tasks.validate_options(variant.name, variant.options)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    assert real_mnist_dir(str(tmp_path)) == str(tmp_path)
    mnist = [
        v
        for v in generalization_tasks("digits_mlp", options, 100, mnist_dir=str(tmp_path))
        if v.name == "mnist_mlp"
    ]
    assert mnist[0].options == {
        "hidden_sizes": [20],
        "activation": "sigmoid",
        "data_dir": str(tmp_path),
        "source": "test_only",
    }
    assert [v.label for v in generalization_tasks("quadratic", {}, 10, mnist_dir=str(tmp_path))][
        :2
    ] == ["quadratic 2x steps", "quadratic 10x steps"]


def test_evaluation_config_rejects_bad_values():
    with pytest.raises(ValueError, match="seeds >= 2"):
        EvaluationConfig(seeds=1)
    with pytest.raises(ValueError, match="unknown baseline"):
        EvaluationConfig(baselines=("adam", "adamw"))
    with pytest.raises(ValueError, match="learning_rates"):
        EvaluationConfig(learning_rates=(0.1, -1.0))


TWO_DEVICES = """
import sys, jax, numpy as np, optax, tasks
from trainers.core.trajectories import run_grid
family = tasks.get_family("quadratic", dim=4, batch_noise=0.1)
keys = jax.random.split(jax.random.PRNGKey(0), 4)
runs = run_grid(family, lambda hp: optax.adam(hp["lr"]), {"lr": np.float32([0.01, 0.1])}, keys, 6, 3)
np.savez(sys.argv[1], curves=runs.curves, n=jax.device_count())
"""


@pytest.mark.slow
def test_two_host_devices_give_the_same_runs(tmp_path):
    import subprocess
    import sys

    from tests.host_devices import host_devices_env

    results = []
    for devices in (1, 2):
        env = host_devices_env(devices)
        out = tmp_path / f"runs{devices}.npz"
        subprocess.run(
            [sys.executable, "-c", TWO_DEVICES, str(out)], check=True, env=env, capture_output=True
        )
        results.append(np.load(out))
    assert int(results[0]["n"]) == 1 and int(results[1]["n"]) == 2
    np.testing.assert_allclose(results[0]["curves"], results[1]["curves"], rtol=1e-5)


def test_verdict_summary_names_where_the_learned_optimizer_wins_and_diverges():
    rows = [
        ["digits_mlp", "100", "lstm", "", "adam", "", "0.50x", "wins"],
        ["digits_mlp 10x steps", "1000", "lstm", "", "adam", "", "∞", "diverges"],
    ]
    assert eval_report.verdict_summary(rows) == (
        "**Wins:** lstm on digits_mlp. **Diverges:** lstm on digits_mlp 10x steps."
    )


def test_a_cosine_baseline_decays_over_the_evaluated_run_length():
    """adam_cosine's contender gets decay_steps = the run's length; without a length it refuses."""
    with pytest.raises(ValueError, match="needs the run's length"):
        baseline("adam_cosine", [0.1])
    family, keys = diagonal_quadratic([1.0]), jax.random.split(jax.random.PRNGKey(0), 1)
    cosine = run_grid(
        family,
        baseline("adam_cosine", [0.1], num_steps=8).build,
        {"learning_rate": jnp.array([0.1])},
        keys,
        8,
        record_points=8,
    )
    by_hand = optax.adam(optax.cosine_decay_schedule(0.1, 8))
    manual = run_grid(family, lambda h: by_hand, {}, keys, 8, record_points=8)
    np.testing.assert_allclose(cosine.curves, manual.curves, rtol=1e-6)
