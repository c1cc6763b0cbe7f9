"""The data setting of one run: label noise, validation carving and preprocessing, in order.

`prepare_dataset(dataset, config, seed)` applies `config`'s data settings, once per run
(`keras_cmr.experiment.Run`):

1. label noise (`config.label_noise`; seed: its "seed", else the run's) on the training
   pairs, before validation is carved, so validation is carved from the noisy training
   pairs, as noisy as training: selection sees the labels one would have. The test split is
   never touched.
2. validation carving (`with_validation(config.validation_fraction, seed)`; a data set with
   a validation split keeps it).
3. preprocessing (`config.image_preprocessing`, `config.text_preprocessing`), fitted on the
   carved training split only and applied to every split: fitting before the carving would
   let the validation pairs shape the transform.

A run's `RunResult` records `label_noise` and `preprocessing` (None when unset).
A prepared data set is not prepared again: its noise or preprocessing would be refused.
"""


def prepare_dataset(dataset, config, seed=0):
    """`dataset` with `config`'s label noise, a validation split and its preprocessing.

    Args:
        dataset: a `CrossModalDataset` (clean labels, not preprocessed yet).
        config: the `TrainingConfig`.
        seed: the run's seed: validation carving, and the noise when `label_noise` has no
            "seed" of its own.

    Returns:
        A `CrossModalDataset` with a validation split; unchanged training labels and features
        when `config` sets neither noise nor preprocessing.

    Raises:
        ValueError: as `with_label_noise` (noisy or multi-hot data set) and `preprocessed`
            (a preprocessed data set).
    """
    noise = config.noise_options(seed)
    if noise is not None:
        # A data set that comes with a validation split keeps it; with_label_noise then
        # flips the pooled train + val pairs, so validation is as noisy as train again.
        dataset = dataset.with_label_noise(noise.rate, seed=noise.seed, kind=noise.kind)
    dataset = dataset.with_validation(config.validation_fraction, seed=seed)
    if config.image_preprocessing or config.text_preprocessing:
        dataset = dataset.preprocessed(image=config.image_preprocessing,
                                       text=config.text_preprocessing)
    return dataset


def setting_entries(dataset):
    """The `RunResult` fields recording a prepared data set's setting ({} when it has none)."""
    entries = {}
    if dataset.label_noise is not None:
        entries["label_noise"] = dict(dataset.label_noise)
    if dataset.preprocessing is not None:
        entries["preprocessing"] = dict(dataset.preprocessing)
    return entries
