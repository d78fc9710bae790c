"""How parameters move: the LSTM meta-optimizer and baselines, all optax transformations.

Nothing here knows about tasks: every optimizer takes gradients (and, for ESGD
and Jacobi, the objective as `value_fn`) and returns updates.
"""

from meta_opt.curvature import (CurvatureState, curvature_preconditioner, esgd,
                                hessian_vector_product, jacobi, scale_by_curvature)
from meta_opt.lstm_optimizer import LSTMOptimizer, LSTMOptimizerState, lstm_optimizer
from meta_opt.preprocess import gradient_features, log_sign_features
from meta_opt.registry import OPTIMIZERS, get_optimizer, list_optimizers

__all__ = [
    "CurvatureState", "LSTMOptimizer", "LSTMOptimizerState", "OPTIMIZERS",
    "curvature_preconditioner", "esgd", "get_optimizer", "gradient_features",
    "hessian_vector_product", "jacobi", "list_optimizers", "log_sign_features",
    "lstm_optimizer", "scale_by_curvature",
]
