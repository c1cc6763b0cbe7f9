"""The method registry: a user's method runs through `compare` like a built-in one."""

import dataclasses

import pytest

from keras_cmr import experiment, methods
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.evaluation import evaluate_retrieval
from keras_cmr.experiment import TrainingConfig

FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)
BUILT_IN = ["source", "source_pcl", "source_regression", "source_pcl_gce", "source_pcl_sce",
            "contrastive", "triplet", "infonce", "supervised_infonce", "naive_sum", "dscmr",
            "kim", "met", "met_selective", "control", "cca", "label_regression", "mrl"]


@pytest.fixture
def registered():
    """Registers methods for one test and removes them afterwards."""
    names = []

    def register(name, *args, **kwargs):
        names.append(name)
        return methods.register(name, *args, **kwargs)

    yield register
    for name in names:
        methods.unregister(name)


def build_margin_contrastive(encoder, num_classes, config, source):
    from keras_cmr import losses
    from keras_cmr.models import PairwiseModel

    return PairwiseModel(encoder, losses.ContrastiveLoss(margin=0.5))


def build_cosine_source(encoder, num_classes, config, source):
    from keras_cmr.models import SourceModel

    return SourceModel(encoder, num_classes, head="cosine", scale=4.0)


def test_a_registered_method_runs_through_compare_and_serves_as_source(registered):
    with pytest.raises(ValueError, match="source_method"):
        TrainingConfig(source_method="cosine_scale4")
    registered("cosine_scale4", build_cosine_source, "class-wise only: cosine CE at scale 4",
               serves_as_source=True)
    assert methods.available() == BUILT_IN + ["cosine_scale4"]
    assert "cosine_scale4" in methods.sources()
    config = dataclasses.replace(FAST, source_method="cosine_scale4", epochs=1)
    results = experiment.compare(["cosine_scale4", "met"], load_digits_two_view(), config,
                                 seeds=1, log=None)
    table = experiment.summarize(results)
    assert list(table) == ["cosine_scale4", "met"]
    for method, result in zip(table, results):
        assert result.epochs == len(result.history[method]["val_avg_map"]) == 1
        assert 0.0 < table[method]["avg_map"] <= 1.0
    # MET transferred from the listed user method's model instead of training its own.
    assert "source" not in results[1].history


def test_a_method_with_its_own_fit_replaces_the_protocol_fit(registered):
    """A method that is not trained by `model.fit` (e.g. a closed-form baseline)."""
    seen = {}

    def fit_untrained(model, dataset, config, callbacks, source):
        val = dataset.val
        seen["val_pairs"], seen["source"] = val.num_pairs, source
        figures = evaluate_retrieval(model.encode_image(val.image), model.encode_text(val.text),
                                     val.labels)
        return {"val_avg_map": [figures["avg_map"]]}

    registered("untrained", build_margin_contrastive, "random towers, never trained",
               fit=fit_untrained)
    data = load_digits_two_view()
    model, result = experiment.run_method("untrained", data, FAST, seed=1)
    val = data.with_validation(FAST.validation_fraction, seed=1).val
    assert seen == {"val_pairs": val.num_pairs, "source": None}
    assert result.epochs == 1 and result.history["untrained"]["loss"] == []
    expected = evaluate_retrieval(model.encode_image(val.image), model.encode_text(val.text),
                                  val.labels)["avg_map"]
    assert result.best_val_avg_map == pytest.approx(expected)


@dataclasses.dataclass(frozen=True)
class NoDefault:
    scale: float


@pytest.mark.parametrize("call, error, match", [
    (lambda: methods.get("clip"), ValueError, "unknown method 'clip'; choose from .*'met'"),
    (lambda: methods.register("met", build_margin_contrastive, "again"), ValueError,
     "already registered"),
    (lambda: methods.register("a,b", build_margin_contrastive, "x"), ValueError, "commas"),
    (lambda: methods.register("new", None, "x"), TypeError, "`build` of method 'new'"),
    (lambda: methods.register("new", build_margin_contrastive, "two\nlines"), ValueError,
     "one non-empty line"),
    (lambda: methods.register("new", build_margin_contrastive, "x", fit=3), TypeError, "`fit`"),
    (lambda: methods.unregister("nothing"), ValueError, "unknown method 'nothing'"),
    (lambda: methods.register("new", build_margin_contrastive, "x", options=dict), TypeError,
     "options of method 'new' must be a frozen dataclass type"),
    (lambda: methods.register("new", build_margin_contrastive, "x", options=NoDefault),
     TypeError, r"every option of method 'new' needs a default; \['scale'\] have none"),
])
def test_bad_registrations_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert methods.available() == BUILT_IN
