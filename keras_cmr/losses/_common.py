"""The helpers that keras_cmr/losses/mrl.py imports, at their former path.

They are defined in the modules of their jobs; import them from there: `DictLossWrapper`,
`unpack` (base.py), `l2_normalize` (distances.py), `check_embeddings`, `check_labels`
(inputs.py), `label_vectors` (labels.py), `check_positive` (options.py).
"""

from keras_cmr.losses.base import DictLossWrapper, unpack
from keras_cmr.losses.distances import l2_normalize
from keras_cmr.losses.inputs import check_embeddings, check_labels
from keras_cmr.losses.labels import label_vectors
from keras_cmr.losses.options import check_positive

__all__ = ["DictLossWrapper", "check_embeddings", "check_labels", "check_positive",
           "l2_normalize", "label_vectors", "unpack"]
