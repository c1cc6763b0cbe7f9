"""Retrieval evaluation: exact, chunked metrics and a training callback.

Every metric ranks the gallery by cosine similarity, highest first, ties broken by gallery
index: `metrics` holds the definitions and the public functions, `ranking` the chunked engine
behind them, `callback` the `RetrievalEvaluation` callback for early stopping on validation mAP.
"""

from keras_cmr.evaluation.callback import RetrievalEvaluation
from keras_cmr.evaluation.metrics import (
    evaluate_model,
    evaluate_retrieval,
    map_at_r,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    r_precision,
    recall_at_k,
    retrieval_metrics,
)

__all__ = [
    "RetrievalEvaluation",
    "evaluate_model",
    "evaluate_retrieval",
    "map_at_r",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "r_precision",
    "recall_at_k",
    "retrieval_metrics",
]
