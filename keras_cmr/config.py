"""The shared training protocol's settings (`TrainingConfig`); imports no framework.

Every option is checked once, here, when the config is made (from an experiment file, the
command line or Python), and held as a typed value: `SoftContrastiveOptions`, `LabelNoise`,
preprocessing step tuples and each method's own options type (`methods.register(...,
options=)`).
"""

import dataclasses

from keras_cmr import methods
from keras_cmr.options import (LabelNoise, SoftContrastiveOptions, SourceSetting, check_steps,
                               options_from_mapping)
from keras_cmr.options.checks import check_positive_int

# Keys an experiment file (`keras-cmr compare --config`) may hold besides the config's fields.
EXPERIMENT_KEYS = ("data", "methods", "seeds")


@dataclasses.dataclass
class TrainingConfig:
    """The shared protocol (METHOD.md: Adam, beta_1 0.5, patience 10) and method options.

    The learning rate (1e-3), tower width (1024), source (prototype contrastive) and the soft
    contrastive defaults were chosen on the Wikipedia validation split by experiments/search.py
    (METHOD.md's lr 1e-4 was still improving after 200 epochs); see docs/results.md.

    `source_method` names the model (a registered `serves_as_source` method: class-wise, the
    naive sum, supervised InfoNCE or MRL) that the transfer methods ("met", "kim": those
    registered with `needs_source`) transfer from; `soft_contrastive` holds the
    `SoftContrastiveOptions` of "met", "kim" and "met_selective" (which sets trust="agreement";
    a dict of them is read into that type).
    `method_options` maps a method name to its own options (its registered options type, or a
    dict of them), e.g. {"control": {"delta": 3.0}}; a method without an entry uses its
    defaults (`options_for`). `source_folds` > 1 makes the transfer methods learn from
    out-of-fold source embeddings (`out_of_fold_source`) instead of one source that saw every
    training pair. It stays 1 by default: on the Wikipedia validation split 5 folds gained
    0.002 validation avg mAP over 5 seeds (`experiments/wikipedia.json` uses them), inside the
    seed spread, for 5 more source trainings.
    `source_candidates` lists other sources to choose from (`SourceSetting`s, or a method
    name, or a dict {"method": name, "folds": k}): with any, each run trains the
    (`source_method`, `source_folds`) source and every candidate, and the transfer learns from
    the one with the highest best validation avg mAP on the run's own (noisy) validation split
    (for out-of-fold sources the mean over the folds); see `source_settings()`.
    `method_candidates` maps a method to other registered methods it competes with, e.g.
    {"met": ["kim"]}: a run of that method also trains each listed one, on the same source
    when they need one, and keeps the model with the highest best validation avg mAP (the
    method itself wins a tie); its result names the choice (`RunResult.method_choice`).

    The data settings, each off by default:

    - `label_noise`: None, or a `LabelNoise` (or the dict {"rate": r, "kind": "symmetric" |
      "asymmetric", "seed": s}, "kind" and "seed" optional; seed None: the run's seed), noise
      put on the training labels before validation is carved
      (`keras_cmr.experiment.setting.prepare_dataset`; definitions in
      `keras_cmr.datasets.noise`).
    - `image_preprocessing`, `text_preprocessing`: step names of
      `keras_cmr.datasets.preprocessing`, fitted on the carved training split only.
    - `weight_decay`: 0 gives Adam; > 0 gives AdamW (Loshchilov and Hutter, ICLR 2019:
      decoupled decay, not an L2 term whose gradient Adam's per-weight scaling would distort),
      with the same learning rate and beta_1 (`optimizer()`).
    - `input_dropout`: dropout rate on each tower's input features (`ProjectionTower`).

    `jit_compile` is `compile`'s: "auto" (Keras' choice: XLA on JAX, a graph without XLA on
    TensorFlow without a GPU, eager PyTorch), True or False. On the protocol's short fits
    "auto" is faster; True pays on long ones (benchmarks/README.md).
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
    soft_contrastive: SoftContrastiveOptions = dataclasses.field(
        default_factory=SoftContrastiveOptions)
    method_options: dict = dataclasses.field(default_factory=dict)
    source_folds: int = 1
    source_candidates: tuple = ()
    method_candidates: dict = dataclasses.field(default_factory=dict)
    label_noise: LabelNoise = None
    image_preprocessing: tuple = ()
    text_preprocessing: tuple = ()
    weight_decay: float = 0.0
    input_dropout: float = 0.0
    jit_compile: object = "auto"
    verbose: int = 1

    def __post_init__(self):
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
        self._read_data_settings()
        if self.source_method not in methods.sources():
            raise ValueError(f"`source_method` must be one of {methods.sources()}, got "
                             f"{self.source_method!r}.")
        self.source_candidates = self._read_source_candidates(self.source_candidates)
        self.method_candidates = self._read_method_candidates(self.method_candidates)
        if not isinstance(self.soft_contrastive, SoftContrastiveOptions):
            self.soft_contrastive = options_from_mapping(
                SoftContrastiveOptions, self.soft_contrastive, "`soft_contrastive`")
        if not isinstance(self.method_options, dict):
            raise ValueError(f"`method_options` must be a dict of method name -> options, got "
                             f"{self.method_options!r}.")
        self.method_options = {name: self._read_method_options(name, value)
                               for name, value in self.method_options.items()}

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

    def _read_data_settings(self):
        if self.label_noise is not None and not isinstance(self.label_noise, LabelNoise):
            if not isinstance(self.label_noise, dict) or "rate" not in self.label_noise:
                raise ValueError(f"`label_noise` must be None or a dict with a \"rate\" (and "
                                 f"optionally \"kind\", \"seed\"), got {self.label_noise!r}.")
            unknown = sorted(set(self.label_noise) - {"rate", "kind", "seed"})
            if unknown:
                raise ValueError(f"`label_noise` has unknown key(s) {unknown}; known: "
                                 "['kind', 'rate', 'seed'].")
            self.label_noise = LabelNoise(**self.label_noise)
        self.image_preprocessing = check_steps(self.image_preprocessing, "image")
        self.text_preprocessing = check_steps(self.text_preprocessing, "text")
        for name, upper in (("weight_decay", None), ("input_dropout", 1.0)):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                    or (upper is not None and value >= upper)):
                bounds = f"in [0, {upper})" if upper is not None else ">= 0"
                raise ValueError(f"`{name}` must be a number {bounds}, got {value!r}.")
        if not (isinstance(self.jit_compile, bool) or self.jit_compile == "auto"):
            raise ValueError(f'`jit_compile` must be "auto", true or false, got '
                             f"{self.jit_compile!r}.")

    def _read_source_candidates(self, candidates):
        if isinstance(candidates, (str, dict, SourceSetting)):
            raise ValueError(f"`source_candidates` must be a list of sources, e.g. "
                             f"[{candidates!r}], got a single one.")
        read = []
        for candidate in candidates:
            if isinstance(candidate, str):
                candidate = SourceSetting(candidate)
            elif not isinstance(candidate, SourceSetting):
                candidate = options_from_mapping(SourceSetting, candidate,
                                                 "`source_candidates`")
            if candidate.method not in methods.sources():
                raise ValueError(f"`source_candidates`: {candidate.method!r} cannot serve as "
                                 f"a source; the sources are {methods.sources()}.")
            if candidate in read or candidate == SourceSetting(self.source_method,
                                                               self.source_folds):
                raise ValueError(f"`source_candidates`: {candidate.label()!r} is listed twice "
                                 f"(`source_method` with `source_folds` is a candidate too).")
            read.append(candidate)
        return tuple(read)

    @staticmethod
    def _read_method_candidates(candidates):
        if not isinstance(candidates, dict):
            raise ValueError(f"`method_candidates` must be a dict of method name -> list of "
                             f"methods, got {candidates!r}.")

        def registered(name):
            try:
                return methods.get(name)
            except ValueError as error:
                raise ValueError(f"`method_candidates`: {error}") from None

        read = {}
        for method, others in candidates.items():
            entry = registered(method)
            if isinstance(others, str) or not isinstance(others, (list, tuple)) or not others:
                raise ValueError(f"`method_candidates` of {method!r} must be a non-empty list "
                                 f"of methods, e.g. [{others!r}], got {others!r}.")
            for other in others:
                if other == method or list(others).count(other) > 1:
                    raise ValueError(f"`method_candidates` of {method!r}: {other!r} is listed "
                                     f"twice ({method!r} itself is a candidate too).")
                if registered(other).needs_source != entry.needs_source:
                    raise ValueError(f"`method_candidates` of {method!r}: {other!r} must need a "
                                     f"source exactly when {method!r} does, so that both learn "
                                     f"from the same one.")
            read[method] = tuple(others)
        return read

    def candidates_of(self, method):
        """`method` and the methods it competes with on validation (`method_candidates`)."""
        return (method,) + self.method_candidates.get(method, ())

    def source_settings(self):
        """The sources a run may transfer from: (`source_method`, `source_folds`) first, then
        `source_candidates`, as `SourceSetting`s."""
        return (SourceSetting(self.source_method, self.source_folds),) + self.source_candidates

    def with_source(self, setting):
        """This config with `setting` (a `SourceSetting`) as its only source."""
        return dataclasses.replace(self, source_method=setting.method,
                                   source_folds=setting.folds, source_candidates=())

    @staticmethod
    def _read_method_options(name, value):
        """`value` as method `name`'s registered options type (a dict of them is read)."""
        options_type = methods.get(name).options
        if options_type is None:
            raise ValueError(f"`method_options`: method {name!r} takes no options.")
        if isinstance(value, options_type):
            return value
        return options_from_mapping(options_type, value, f"`method_options` of {name!r}")

    def options_for(self, method):
        """The options of `method`: its `method_options` entry, else its type's defaults."""
        options_type = methods.get(method).options
        if options_type is None:
            raise ValueError(f"method {method!r} takes no options.")
        return self.method_options.get(method, options_type())

    def noise_options(self, seed):
        """The `LabelNoise` of a run with `seed` (its own seed, else `seed`); None without
        label noise or at rate 0."""
        if self.label_noise is None or not self.label_noise.rate:
            return None
        if self.label_noise.seed is not None:
            return self.label_noise
        return dataclasses.replace(self.label_noise, seed=seed)

    def optimizer(self):
        """The protocol's optimiser: Adam, or AdamW when `weight_decay` > 0 (Keras)."""
        import keras

        if self.weight_decay > 0:
            return keras.optimizers.AdamW(self.learning_rate, beta_1=self.beta_1,
                                          weight_decay=self.weight_decay)
        return keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1)


def default(field_name):
    """The default of a `TrainingConfig` field, read without making a config (no Keras)."""
    for field in dataclasses.fields(TrainingConfig):
        if field.name == field_name:
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            return field.default
    raise ValueError(f"TrainingConfig has no field {field_name!r}.")
