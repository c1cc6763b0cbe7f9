"""Retrieval evaluation: exact, chunked metrics and a training callback.

Every metric ranks the gallery by cosine similarity, highest first, ties broken by gallery
index: `metrics` holds the definitions and the public functions, `ranking` the chunked engine
behind them (pure ranking maths, no model), `embedding` runs a model over evaluation pairs,
`callback` the `RetrievalEvaluation` callback for early stopping on validation mAP, `collapse`
the chance level and the check that trained embeddings did not collapse.
"""

from keras_cmr.evaluation.callback import RetrievalEvaluation
from keras_cmr.evaluation.collapse import (CHANCE_MARGIN, COLLAPSE_ATOL, chance_map,
                                           check_not_collapsed)
from keras_cmr.evaluation.embedding import evaluate_model
from keras_cmr.evaluation.metrics import (
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
    "CHANCE_MARGIN",
    "COLLAPSE_ATOL",
    "RetrievalEvaluation",
    "chance_map",
    "check_not_collapsed",
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
