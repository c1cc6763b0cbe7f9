"""The shared protocol options: --label-noise / --label-noise-kind and the experiment file."""

import argparse
import json

import pytest

from keras_cmr.cli import options
from keras_cmr.options import LabelNoise


def parse(argv):
    parser = argparse.ArgumentParser()
    options.add_protocol_options(parser)
    return options.training_config(parser.parse_args(argv))


def test_label_noise_options_set_the_config_and_override_the_file(tmp_path):
    assert parse([]).label_noise is None
    assert parse(["--label-noise", "0.4"]).label_noise == LabelNoise(0.4, "symmetric")
    config = parse(["--label-noise", "0.2", "--label-noise-kind", "asymmetric"])
    assert config.label_noise == LabelNoise(0.2, "asymmetric")
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps({"label_noise": {"rate": 0.3, "seed": 7},
                                      "image_preprocessing": ["l2"]}))
    from_file = parse(["--config", str(experiment)])
    assert from_file.label_noise == LabelNoise(0.3, "symmetric", 7)
    assert from_file.image_preprocessing == ("l2",)
    # The kind alone changes the file's noise; a rate on the command line replaces its rate.
    kind_only = parse(["--config", str(experiment), "--label-noise-kind", "asymmetric"])
    assert kind_only.label_noise == LabelNoise(0.3, "asymmetric", 7)
    assert parse(["--config", str(experiment), "--label-noise", "0.1"]).label_noise.rate == 0.1


def test_label_noise_kind_without_a_rate_and_a_bad_rate_are_refused():
    with pytest.raises(ValueError, match="--label-noise-kind needs a rate"):
        parse(["--label-noise-kind", "asymmetric"])
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\]"):
        parse(["--label-noise", "1.5"])
