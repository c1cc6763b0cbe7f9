"""The shared training protocol's settings (`TrainingConfig`); imports no framework."""

import dataclasses

from keras_cmr import methods

# Keys an experiment file (`keras-cmr compare --config`) may hold besides the config's fields.
EXPERIMENT_KEYS = ("data", "methods", "seeds")


@dataclasses.dataclass
class TrainingConfig:
    """The shared protocol (METHOD.md: Adam, beta_1 0.5, patience 10) and method options.

    The learning rate (1e-3), tower width (1024), source (prototype contrastive) and the soft
    contrastive defaults were chosen on the Wikipedia validation split by experiments/search.py
    (METHOD.md's lr 1e-4 was still improving after 200 epochs); see docs/results.md.

    `source_method` names the class-wise model that the transfer methods ("met", "kim": those
    registered with `needs_source`) transfer from; `soft_contrastive` holds
    `SoftContrastiveLoss` arguments for "met" and "kim", and `control_soft_contrastive` those
    of "control" (None: the same as `soft_contrastive`). `source_folds` > 1 makes the transfer
    methods learn from out-of-fold source embeddings (`out_of_fold_source`) instead of one
    source that saw every training pair. It stays 1 by default: on the Wikipedia validation
    split 5 folds gained 0.002 validation avg mAP over 5 seeds (`experiments/wikipedia.json`
    uses them), inside the seed spread, for 5 more source trainings.

    Issue 15's settings, each off by default (training is then exactly as before):

    - `label_noise`: None, or {"rate": r, "kind": "symmetric" | "asymmetric", "seed": s}
      ("seed" optional: default the run's seed), noise put on the training labels before
      validation is carved (`keras_cmr.experiment.setting.prepare_dataset`; definitions in
      `keras_cmr.datasets.noise`).
    - `image_preprocessing`, `text_preprocessing`: step names of
      `keras_cmr.datasets.preprocessing`, fitted on the carved training split only.
    - `weight_decay`: 0 gives Adam; > 0 gives AdamW (Loshchilov and Hutter, ICLR 2019:
      decoupled decay, not an L2 term whose gradient Adam's per-weight scaling would distort),
      with the same learning rate and beta_1 (`optimizer()`).
    - `input_dropout`: dropout rate on each tower's input features (`ProjectionTower`).

    `jit_compile` is `compile`'s: "auto" (Keras' choice: XLA on JAX, a graph without XLA on
    TensorFlow without a GPU, eager PyTorch), True or False. On the protocol's short fits
    "auto" is faster; True pays on long ones (benchmarks/README.md, issue 16).
    """

    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    patience: int = 10
    embedding_dim: int = 256
    hidden_dims: tuple = (1024,)
    dropout: float = 0.1
    validation_fraction: float = 0.1
    scale: float = 16.0
    source_method: str = "source_pcl"
    soft_contrastive: dict = dataclasses.field(default_factory=dict)
    control_soft_contrastive: dict = None
    source_folds: int = 1
    label_noise: dict = None
    image_preprocessing: list = dataclasses.field(default_factory=list)
    text_preprocessing: list = dataclasses.field(default_factory=list)
    weight_decay: float = 0.0
    input_dropout: float = 0.0
    jit_compile: object = "auto"
    verbose: int = 1

    def __post_init__(self):
        # The checks import Keras (keras_cmr.utils), which a config made for `--help` never
        # reaches: the module itself imports no framework.
        from keras_cmr.utils.checks import check_positive_int

        for name in ("epochs", "batch_size", "patience", "embedding_dim"):
            check_positive_int(getattr(self, name), f"`{name}`")
        if int(self.batch_size) < 2:
            raise ValueError(f"`batch_size` must be at least 2: the in-batch losses need 2 "
                             f"pairs per batch, got {self.batch_size!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate!r}.")
        if (isinstance(self.source_folds, bool) or not isinstance(self.source_folds, int)
                or self.source_folds < 1):
            raise ValueError(f"`source_folds` must be 1 (one source) or an integer >= 2 "
                             f"(out-of-fold sources), got {self.source_folds!r}.")
        self.hidden_dims = tuple(self.hidden_dims)
        self._check_issue_15_settings()
        if self.source_method not in methods.sources():
            raise ValueError(f"`source_method` must be one of {methods.sources()}, got "
                             f"{self.source_method!r}.")
        # Fails now, not after the source has trained, on an unknown or bad loss option. The
        # loss needs Keras, which a config made for `--help` never reaches.
        from keras_cmr.losses import SoftContrastiveLoss

        SoftContrastiveLoss(**self.soft_contrastive)
        SoftContrastiveLoss(**self.control_options())

    @classmethod
    def from_experiment(cls, experiment, source=None, **overrides):
        """The config of an experiment file's JSON object, its `EXPERIMENT_KEYS` left out;
        `overrides` replace its fields. An unknown field is an error naming the known ones
        (and `source`, e.g. the file's name, when given)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(experiment) - known - set(EXPERIMENT_KEYS))
        if unknown:
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}unknown field(s) {unknown}; known: "
                             f"{sorted(known | set(EXPERIMENT_KEYS))}")
        fields = {key: value for key, value in experiment.items() if key in known}
        return cls(**{**fields, **overrides})

    def _check_issue_15_settings(self):
        from keras_cmr.datasets.noise import check_noise_arguments
        from keras_cmr.datasets.preprocessing import check_steps

        if self.label_noise is not None:
            if not isinstance(self.label_noise, dict) or "rate" not in self.label_noise:
                raise ValueError(f"`label_noise` must be None or a dict with a \"rate\" (and "
                                 f"optionally \"kind\", \"seed\"), got {self.label_noise!r}.")
            unknown = sorted(set(self.label_noise) - {"rate", "kind", "seed"})
            if unknown:
                raise ValueError(f"`label_noise` has unknown key(s) {unknown}; known: "
                                 "['kind', 'rate', 'seed'].")
            self.label_noise = {"kind": "symmetric", **self.label_noise}
            check_noise_arguments(self.label_noise["rate"], self.label_noise["kind"],
                                  self.label_noise.get("seed", 0))
        self.image_preprocessing = list(check_steps(self.image_preprocessing, "image"))
        self.text_preprocessing = list(check_steps(self.text_preprocessing, "text"))
        for name, upper in (("weight_decay", None), ("input_dropout", 1.0)):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                    or (upper is not None and value >= upper)):
                bounds = f"in [0, {upper})" if upper is not None else ">= 0"
                raise ValueError(f"`{name}` must be a number {bounds}, got {value!r}.")
        if not (isinstance(self.jit_compile, bool) or self.jit_compile == "auto"):
            raise ValueError(f'`jit_compile` must be "auto", true or false, got '
                             f"{self.jit_compile!r}.")

    def noise_options(self, seed):
        """`with_label_noise` arguments of a run with `seed` (None without label noise)."""
        if self.label_noise is None or not self.label_noise["rate"]:
            return None
        return {"rate": self.label_noise["rate"], "kind": self.label_noise["kind"],
                "seed": self.label_noise.get("seed", seed)}

    def optimizer(self):
        """The protocol's optimiser: Adam, or AdamW when `weight_decay` > 0 (Keras)."""
        import keras

        if self.weight_decay > 0:
            return keras.optimizers.AdamW(self.learning_rate, beta_1=self.beta_1,
                                          weight_decay=self.weight_decay)
        return keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1)

    def control_options(self):
        """The `SoftContrastiveLoss` arguments of the no-source control."""
        if self.control_soft_contrastive is None:
            return dict(self.soft_contrastive)
        return dict(self.control_soft_contrastive)


def default(field_name):
    """The default of a `TrainingConfig` field, read without making a config (no Keras)."""
    for field in dataclasses.fields(TrainingConfig):
        if field.name == field_name:
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            return field.default
    raise ValueError(f"TrainingConfig has no field {field_name!r}.")
