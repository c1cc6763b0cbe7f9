"""Classical closed-form baselines, each returned as a linear `CrossModalEncoder`.

- `fit_cca`: canonical correlation analysis, plain or regularised (Hotelling 1936; used for
  this task on Wikipedia by Rasiwasia et al., ACM MM 2010).
- `fit_label_regression`: each modality ridge-regressed onto its labels, a linear,
  closed-form form of semantic matching (Rasiwasia et al. 2010).

The solvers are scipy / scikit-learn; the towers are `ProjectionTower(hidden_dims=())` whose
kernels and biases hold the solution (centring folded into the bias), so the result embeds,
evaluates with `keras_cmr.evaluation` and saves as `.keras` like any trained encoder.
"""

from keras_cmr.linear.cca import canonical_correlation, fit_cca
from keras_cmr.linear.semantic import fit_label_regression
from keras_cmr.linear.towers import linear_encoder, training_arrays

__all__ = ["canonical_correlation", "fit_cca", "fit_label_regression", "linear_encoder",
           "training_arrays"]
