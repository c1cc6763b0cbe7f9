"""Train and compare methods under one protocol: same towers, optimiser, budget, selection.

Every method is selected by early stopping on the validation average mAP (never the test
split); the test split is embedded once, by the selected weights. The methods are those of
the registry, `keras_cmr.methods`. A run (`Run`) prepares its data once and starts every
training stage from its seed; an `EpochPlan` gives each stage its epochs; `compare` runs
every method for every seed. Each run's record is a `RunResult` (or a `RunFailure`), written
to JSON by `to_dict` and read back by `result_from_dict`.
"""

from keras_cmr.config import TrainingConfig
from keras_cmr.experiment.compare import compare
from keras_cmr.experiment.compiled import CompiledSteps
from keras_cmr.experiment.epochs import EpochPlan, SeededEpochs, ShuffledEpochs, StageFeed
from keras_cmr.experiment.out_of_fold import out_of_fold_source
from keras_cmr.experiment.protocol import (build_model, fit_selected, make_encoder,
                                           measure_test_split, train_selected)
from keras_cmr.experiment.run import (Run, make_source, method_choice, run_method,
                                      run_with_source)
from keras_cmr.experiment.sources import (ChosenSource, OutOfFoldSource, SourceProvider,
                                          TrainedSource, as_source)
from keras_cmr.experiment.tables import format_progress, format_table, summarize
from keras_cmr.results import RunFailure, RunResult, result_from_dict

__all__ = ["ChosenSource", "CompiledSteps", "EpochPlan", "OutOfFoldSource", "Run", "RunFailure",
           "RunResult", "SeededEpochs", "ShuffledEpochs", "SourceProvider", "StageFeed",
           "TrainedSource", "TrainingConfig", "as_source", "build_model", "compare", "fit_selected",
           "format_progress", "format_table", "make_encoder", "make_source",
           "measure_test_split", "method_choice", "out_of_fold_source", "result_from_dict",
           "run_method", "run_with_source", "summarize", "train_selected"]
