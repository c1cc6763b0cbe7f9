"""Cross-modal data: validated containers, loaders, seeded splits and batches for `fit`.

Data flows as `CrossModalDataset` (train / optional val / test `CrossModalSplit`s of paired
image and text features with labels) -> `PairBatches` (a `keras.utils.PyDataset`); every batch
source takes its rows from an `EpochOrder`.
"""

from keras_cmr.datasets.batching import PairBatches, RowBatches
from keras_cmr.datasets.container import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.digits import load_digits_two_view
from keras_cmr.datasets.npz import load_npz, save_npz
from keras_cmr.datasets.order import EpochOrder
from keras_cmr.datasets.raw import RawDataset, RawSplit, load_raw_pairs
from keras_cmr.datasets.spec import load_dataset
from keras_cmr.datasets.splits import carve_validation, stratified_folds
from keras_cmr.datasets.wikipedia import load_wikipedia

__all__ = [
    "CrossModalDataset",
    "CrossModalSplit",
    "EpochOrder",
    "PairBatches",
    "RawDataset",
    "RawSplit",
    "RowBatches",
    "carve_validation",
    "stratified_folds",
    "load_dataset",
    "load_digits_two_view",
    "load_npz",
    "load_raw_pairs",
    "load_wikipedia",
    "save_npz",
]
