"""The option types: read once from plain values, framework-free, clear errors."""

import dataclasses
import os
import subprocess
import sys

import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.options import (LabelNoise, SoftContrastiveOptions, check_steps,
                               options_from_mapping)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_config_reads_every_option_into_its_type_once():
    config = TrainingConfig(soft_contrastive={"delta": 2.0},
                            method_options={"control": {"label_mix": 0.5}},
                            label_noise={"rate": 0.4, "kind": "asymmetric"},
                            image_preprocessing=["standardize", "l2"])
    assert config.soft_contrastive == SoftContrastiveOptions(delta=2.0)
    assert config.method_options == {"control": SoftContrastiveOptions(label_mix=0.5)}
    assert config.label_noise == LabelNoise(0.4, "asymmetric")
    assert config.image_preprocessing == ("standardize", "l2")
    # A typed value is kept as it is; replacing a field reads only what changed.
    again = dataclasses.replace(config, epochs=3)
    assert again.soft_contrastive is config.soft_contrastive
    assert again.method_options == config.method_options
    # The noise of a run: its own seed when it has one, else the run's.
    assert config.noise_options(7) == LabelNoise(0.4, "asymmetric", 7)
    assert dataclasses.replace(config, label_noise={"rate": 0.4, "seed": 2}).noise_options(
        7) == LabelNoise(0.4, "symmetric", 2)
    assert dataclasses.replace(config, label_noise={"rate": 0.0}).noise_options(7) is None


def test_options_for_a_method_are_its_entry_else_its_defaults():
    from keras_cmr.methods.robust import MRLOptions

    assert TrainingConfig().options_for("mrl") == MRLOptions()
    assert TrainingConfig(method_options={"mrl": MRLOptions(beta=0.2)}).options_for(
        "mrl").beta == 0.2
    with pytest.raises(ValueError, match="method 'met' takes no options"):
        TrainingConfig().options_for("met")
    with pytest.raises(ValueError, match="unknown method 'clip'"):
        TrainingConfig(method_options={"clip": {}})
    with pytest.raises(ValueError, match="`method_options` must be a dict"):
        TrainingConfig(method_options=[("control", {})])


@pytest.mark.parametrize("call, error, match", [
    (lambda: LabelNoise(1.5), ValueError, r"rate must be a number in \[0, 1\]"),
    (lambda: LabelNoise(0.2, "pairflip"), ValueError, "kind must be one of"),
    (lambda: LabelNoise(0.2, seed=1.5), TypeError, "seed must be an integer"),
    (lambda: check_steps("l2", "image"), TypeError, r"\['l2'\], not a single string"),
    (lambda: check_steps(["whiten"], "text"), ValueError, "unknown text preprocessing step"),
    (lambda: options_from_mapping(LabelNoise, {"rate": 0.1, "sort": 1}, "here"), ValueError,
     r"here: unknown option\(s\) \['sort'\]; known: \['kind', 'rate', 'seed'\]"),
    (lambda: options_from_mapping(LabelNoise, {"rate": 2.0}, "here"), ValueError,
     r"here: label noise rate must be"),
])
def test_bad_options_are_refused_naming_the_option(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_options_and_configs_are_made_without_a_framework():
    # The keras_cmr package's own __init__ (which imports Keras) held back, as the command
    # line does for --help.
    code = "\n".join([
        "import importlib.util, sys",
        "sys.modules['keras_cmr'] = importlib.util.module_from_spec(",
        "    importlib.util.find_spec('keras_cmr'))",
        "from keras_cmr.config import TrainingConfig",
        "TrainingConfig(method_options={'control': {'delta': 2.0}}, label_noise={'rate': 0.2},",
        "               soft_contrastive={'sigma': 'median'})",
        "print(sorted({'keras', 'numpy', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_loss_options_from_a_functions_arguments_take_only_the_options():
    arguments = {**SoftContrastiveOptions(label_mix=0.5).to_dict(), "labels": None, "n": 3}
    assert SoftContrastiveOptions.from_arguments(arguments) == SoftContrastiveOptions(
        label_mix=0.5)
    with pytest.raises(KeyError, match="delta"):  # the first option missing
        SoftContrastiveOptions.from_arguments({"sigma": 1.0})
