"""SoftContrastiveOptions: the one check of the soft contrastive loss' options, framework-free.

The options are checked once, where they enter (the options type, built by the loss' constructor
or once per call of a public function), with the messages of `soft_contrastive`; the computation
computes the label similarity once per call."""

import dataclasses
import functools
import importlib
import inspect
import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import SoftContrastiveLoss, SoftContrastiveOptions, soft_contrastive
from keras_cmr.options import options_from_mapping

# The package exports functions of the same names as these modules.
soft_contrastive_module = importlib.import_module("keras_cmr.losses.soft_contrastive")
soft_labels_module = importlib.import_module("keras_cmr.losses.soft_labels")
N, E = 6, 4
CLASS_LABELS = np.array([0, 1, 0, 2, 1, 0])
NON_DEFAULT = {"sigma": "median", "delta": 0.8, "margin": "fixed", "relative_distance": False,
               "label_mix": 0.3, "intra_modal_weight": 0.2, "form": "infonce",
               "temperature": 0.2, "source_temperature": 0.3, "label_weights": "hard",
               "calibration": "rank", "trust_temperature": 0.5}
# (options, the message of today's checks): each is refused by the type, the function and the
# loss class alike.
BAD_OPTIONS = [
    ({"sigma": 0.0}, 'sigma must be a positive number or "median"; received 0.0'),
    ({"sigma": "mean"}, "sigma must be a positive number or \"median\"; received 'mean'"),
    ({"sigma": True}, 'sigma must be a positive number or "median"; received True'),
    ({"delta": -0.1}, "delta must be >= 0; received delta=-0.1"),
    ({"delta": "1.5"}, "delta must be a finite number >= 0; received delta='1.5'"),
    ({"margin": "soft"}, "margin must be one of ('relaxed', 'fixed'); received margin='soft'"),
    ({"form": "cosine"}, "form must be one of ('margin', 'infonce'); received form='cosine'"),
    ({"label_mix": 1.5}, "label_mix must be in [0, 1]; received label_mix=1.5"),
    ({"label_mix": None}, "label_mix must be a finite number in [0, 1]; received label_mix=None"),
    ({"intra_modal_weight": -1.0},
     "intra_modal_weight must be >= 0; received intra_modal_weight=-1.0"),
    ({"intra_modal_weight": math.nan},
     "intra_modal_weight must be a finite number >= 0; received intra_modal_weight=nan"),
    ({"temperature": 0.0}, "temperature must be > 0; received temperature=0.0"),
    ({"temperature": math.inf}, "temperature must be a finite number > 0; received "
                                "temperature=inf"),
    ({"source_temperature": -1.0}, "source_temperature must be > 0; received "
                                   "source_temperature=-1.0"),
    ({"label_weights": "soft"}, "label_weights must be one of ('relaxed', 'hard'); received "
                                "label_weights='soft'"),
    ({"calibration": "softmax"}, "calibration must be one of ('none', 'row', 'rank'); received "
                                 "calibration='softmax'"),
    ({"relative_distance": "yes"}, "relative_distance must be True or False; received "
                                   "relative_distance='yes'"),
    ({"trust": "label"}, "trust must be one of ('global', 'agreement'); received "
                         "trust='label'"),
    ({"trust": None}, "trust must be one of ('global', 'agreement'); received trust=None"),
    ({"trust_temperature": 0.0}, "trust_temperature must be > 0; received "
                                 "trust_temperature=0.0"),
    ({"trust_temperature": "0.1"}, "trust_temperature must be a finite number > 0; received "
                                   "trust_temperature='0.1'"),
    ({"trust": "agreement", "form": "infonce"},
     "trust=\"agreement\" has the margin form only; received form='infonce'"),
]


@pytest.fixture
def inputs(rng):
    return [rng.normal(size=(N, E)).astype("float32") for _ in range(4)]


def test_defaults_are_those_of_the_function_and_the_class():
    defaults = SoftContrastiveOptions().to_dict()
    assert list(defaults) == list(SoftContrastiveOptions.names())
    for callable_ in (soft_contrastive, SoftContrastiveLoss.__init__):
        parameters = inspect.signature(callable_).parameters
        assert {name: parameters[name].default for name in defaults} == defaults
    assert {key: value for key, value in SoftContrastiveLoss().get_config().items()
            if key in defaults} == defaults


@pytest.mark.parametrize("options, message", BAD_OPTIONS)
def test_each_bad_option_gets_the_same_message_everywhere(inputs, options, message):
    u, v, s, t = inputs
    for build in (lambda: SoftContrastiveOptions(**options),
                  lambda: SoftContrastiveLoss(**options),
                  lambda: soft_contrastive(u, v, s, t, CLASS_LABELS, **options)):
        with pytest.raises(ValueError) as error:
            build()
        assert str(error.value) == message


def test_options_are_frozen_and_compare_by_value():
    options = SoftContrastiveOptions(**NON_DEFAULT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.delta = 2.0
    assert options == SoftContrastiveOptions(**NON_DEFAULT) != SoftContrastiveOptions()
    assert dataclasses.replace(options, delta=2.0).delta == 2.0
    with pytest.raises(ValueError, match="delta must be >= 0"):
        dataclasses.replace(options, delta=-2.0)


def test_a_learned_temperature_tensor_is_accepted_unchecked():
    learned = ops.convert_to_tensor(0.5)
    assert SoftContrastiveOptions(temperature=learned).temperature is learned


def test_options_are_read_from_an_experiment_object_naming_the_known_keys():
    read = functools.partial(options_from_mapping, SoftContrastiveOptions)
    assert read({}) == SoftContrastiveOptions()
    # NON_DEFAULT sets every option but trust, whose "agreement" has the margin form only.
    assert read(NON_DEFAULT).to_dict() == {**NON_DEFAULT, "trust": "global"}
    assert read({"trust": "agreement"}) == SoftContrastiveOptions(trust="agreement")
    with pytest.raises(ValueError) as error:
        read({"sigma": 1.0, "lable_mix": 0.5, "beta": 1},
             where="experiment.json: soft_contrastive")
    assert str(error.value) == (
        "experiment.json: soft_contrastive: unknown option(s) ['beta', "
        f"'lable_mix']; known: {sorted(SoftContrastiveOptions.names())}")
    with pytest.raises(ValueError) as error:
        read({"label_mix": 2.0}, where="method_options of 'control'")
    assert str(error.value) == ("method_options of 'control': label_mix must be in [0, 1]; "
                                "received label_mix=2.0")
    with pytest.raises(ValueError, match="must be a JSON object .* received list"):
        read([["sigma", 1.0]])


def test_the_loss_holds_its_options_and_is_built_from_them(inputs):
    u, v, s, t = inputs
    options = SoftContrastiveOptions(**NON_DEFAULT)
    loss = SoftContrastiveLoss.from_options(options, name="transfer", reduction="sum")
    assert loss.options == options and (loss.name, loss.reduction) == ("transfer", "sum")
    assert loss.get_config() == SoftContrastiveLoss(**NON_DEFAULT, name="transfer",
                                                    reduction="sum").get_config()
    assert all(getattr(loss, name) == value for name, value in NON_DEFAULT.items())
    y_pred = {"image": u, "text": v, "source_image": s, "source_text": t}
    expected = ops.sum(soft_contrastive(u, v, s, t, CLASS_LABELS, **NON_DEFAULT))
    np.testing.assert_allclose(ops.convert_to_numpy(loss(CLASS_LABELS, y_pred)),
                               ops.convert_to_numpy(expected), rtol=1e-6)
    with pytest.raises(TypeError, match="options must be a SoftContrastiveOptions; received dict"):
        SoftContrastiveLoss.from_options(NON_DEFAULT)


def test_a_config_of_plain_keyword_arguments_loads():
    # The config a .keras file holds: the options as plain keyword arguments.
    config = {"name": "soft_contrastive", "reduction": "sum_over_batch_size",
              "dtype": "float32", **NON_DEFAULT}
    loss = SoftContrastiveLoss.from_config(config)
    assert loss.options == SoftContrastiveOptions(**NON_DEFAULT)
    # A config without "trust" (a file saved before the option existed) gets the global trust.
    assert loss.get_config() == {**config, "trust": "global"}


def counting(monkeypatch, owner, name):
    """Count the calls of `owner.name` (a function or a method) from now on."""
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("form", ["margin", "infonce"])
def test_options_are_checked_and_labels_compared_once_per_call(inputs, monkeypatch, form):
    u, v, s, t = inputs
    options = {"form": form, "intra_modal_weight": 0.3, "label_weights": "hard",
               "label_mix": 0.5}
    loss = SoftContrastiveLoss(**options)
    checks = counting(monkeypatch, SoftContrastiveOptions, "__post_init__")
    similarities = counting(monkeypatch, soft_contrastive_module, "label_similarity")
    soft_labels_calls = counting(monkeypatch, soft_labels_module, "label_similarity")
    soft_contrastive(u, v, s, t, CLASS_LABELS, **options)
    assert (len(checks), len(similarities), len(soft_labels_calls)) == (1, 1, 0)
    loss(CLASS_LABELS, {"image": u, "text": v, "source_image": s, "source_text": t})
    assert (len(checks), len(similarities), len(soft_labels_calls)) == (1, 2, 0)
