"""`TrainingFailure`: training produced no usable model.

A run whose loss became NaN or infinite (`keras_cmr.callbacks.StopOnNonFiniteLoss`), or
whose encoder maps every input to one point or ranks no better than chance
(`keras_cmr.evaluation.check_not_collapsed`), raises it; the command line turns it into a
non-zero exit and saves no model. A leaf module: it imports nothing, so the command line can
catch the error without loading a framework.
"""


class TrainingFailure(RuntimeError):
    """Training produced no usable model: a NaN / infinite loss, or collapsed embeddings."""
