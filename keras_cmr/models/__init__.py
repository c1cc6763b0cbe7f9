"""Models: the two-tower encoder, the source (class-wise), transfer (MET) and baselines."""

from keras_cmr.models.closed_form import ClosedFormModel
from keras_cmr.models.dscmr import DSCMRModel
from keras_cmr.models.encoder import CrossModalEncoder, CrossModalTrainer
from keras_cmr.models.inputs import DeviceBatches, default_steps_per_execution
from keras_cmr.models.mrl import MRLModel
from keras_cmr.models.pairwise import PairwiseModel
from keras_cmr.models.source import SourceModel
from keras_cmr.models.transfer import TransferModel

__all__ = ["ClosedFormModel", "CrossModalEncoder", "CrossModalTrainer", "DSCMRModel",
           "DeviceBatches", "MRLModel", "PairwiseModel", "SourceModel", "TransferModel",
           "default_steps_per_execution"]
