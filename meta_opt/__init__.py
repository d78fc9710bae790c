"""How parameters move: the LSTM meta-optimizer and baselines, all optax transformations.

Nothing here knows about tasks: every optimizer takes gradients (and, for ESGD
and Jacobi, the objective as `value_fn`) and returns updates. Exports are lazy
(`common.lazy`): `meta_opt.options` can be imported without JAX.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "CurvatureState": "curvature",
    "curvature_preconditioner": "curvature",
    "esgd": "curvature",
    "hessian_vector_product": "curvature",
    "jacobi": "curvature",
    "scale_by_curvature": "curvature",
    "InnerCarry": "inner_step",
    "init_carry": "inner_step",
    "inner_step": "inner_step",
    "task_objective": "inner_step",
    "LSTMOptimizerState": "lstm_optimizer",
    "lstm_optimizer": "lstm_optimizer",
    "LSTMv2State": "lstm_v2",
    "lstm_v2_transformation": "lstm_v2",
    "LSTMOptimizer": "options",
    "ARCHITECTURES": "architectures",
    "LearnedOptimizerConfig": "architectures",
    "architecture_class": "architectures",
    "architecture_from_fields": "architectures",
    "LSTMv1Config": "lstm_v1_config",
    "LSTMv2Config": "lstm_v2_config",
    "check_hparams": "options",
    "gradient_features": "preprocess",
    "log_sign_features": "preprocess",
    **{
        name: "pretrained_bundles"
        for name in (
            "PretrainedError",
            "list_pretrained",
            "load_pretrained",
            "pretrained",
            "pretrained_card",
            "save_pretrained",
        )
    },
    "OPTIMIZERS": "registry",
    "get_optimizer": "registry",
    "list_optimizers": "registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
