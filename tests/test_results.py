"""`RunResult` and `RunFailure`: their JSON layout, read back by `result_from_dict`."""

import json

import pytest

from keras_cmr.results import RunFailure, RunResult, result_from_dict

TEST = {"i2t_map": 0.5, "t2i_map": 0.25, "avg_map": 0.375}
CURVES = {"recall": [i / 10 for i in range(11)], "i2t": [1.0 - i / 20 for i in range(11)],
          "t2i": [0.9 - i / 20 for i in range(11)]}


def stage(curve):
    return {"epochs": len(curve), "best_val_avg_map": max(curve), "val_avg_map": curve,
            "loss": [1.0 / (i + 1) for i in range(len(curve))]}


def test_a_full_result_writes_the_json_layout_and_reads_back_equal():
    folds = [stage([0.2, 0.3]), stage([0.25])]
    result = RunResult("met", 3, TEST, best_val_avg_map=0.4, epochs=2, seconds=12.5,
                       history={"met": stage([0.35, 0.4])}, test_curves=CURVES,
                       label_noise={"rate": 0.4, "kind": "symmetric", "seed": 3},
                       preprocessing={"image": ["hellinger"], "text": []},
                       source_folds=folds,
                       source_choice={"chosen": "mrl",
                                      "best_val_avg_map": {"source_pcl x5": 0.2, "mrl": 0.3}})
    # The layout of a run in `compare --json` files, entries in this order.
    expected = ('{"method": "met", "seed": 3, "test": ' + json.dumps(TEST)
                + ', "test_curves": ' + json.dumps(CURVES)
                + ', "best_val_avg_map": 0.4, "epochs": 2, "seconds": 12.5, "history": '
                + '{"met": ' + json.dumps(stage([0.35, 0.4])) + '}'
                + ', "label_noise": {"rate": 0.4, "kind": "symmetric", "seed": 3}'
                + ', "preprocessing": {"image": ["hellinger"], "text": []}'
                + ', "source_folds": ' + json.dumps(folds)
                + ', "source_choice": {"chosen": "mrl", "best_val_avg_map": '
                + '{"source_pcl x5": 0.2, "mrl": 0.3}}}')
    assert json.dumps(result.to_dict()) == expected
    assert result_from_dict(json.loads(expected)) == result
    assert not result.failed


def test_a_result_without_its_optional_entries_leaves_them_out():
    result = RunResult("control", 0, TEST, 0.4, 2, 1.0, {"control": stage([0.3, 0.4])})
    assert result.to_dict() == {"method": "control", "seed": 0, "test": TEST,
                                "best_val_avg_map": 0.4, "epochs": 2, "seconds": 1.0,
                                "history": {"control": stage([0.3, 0.4])}}
    assert list(result.to_dict()) == ["method", "seed", "test", "best_val_avg_map", "epochs",
                                      "seconds", "history"]
    read = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert read == result and read.test_curves is None and read.source_folds is None


@pytest.mark.parametrize("label_noise, text", [
    (None, '{"method": "kim", "seed": 1, "failure": "the loss became NaN"}'),
    ({"rate": 0.8, "kind": "asymmetric"},
     '{"method": "kim", "seed": 1, "failure": "the loss became NaN", '
     '"label_noise": {"rate": 0.8, "kind": "asymmetric"}}'),
])
def test_a_failure_writes_its_layout_and_reads_back_equal(label_noise, text):
    failure = RunFailure("kim", 1, "the loss became NaN", label_noise=label_noise)
    assert json.dumps(failure.to_dict()) == text
    read = result_from_dict(json.loads(text))
    assert isinstance(read, RunFailure) and read == failure and read.failed


@pytest.mark.parametrize("missing", ["method", "seed"])
@pytest.mark.parametrize("entries", [
    RunResult("met", 0, TEST, 0.4, 1, 1.0, {"met": stage([0.4])}).to_dict(),
    RunFailure("met", 0, "collapsed").to_dict(),
])
def test_a_run_without_its_method_or_seed_is_refused_by_name(entries, missing):
    with pytest.raises(ValueError, match=f"a run has no '{missing}' entry"):
        result_from_dict({key: value for key, value in entries.items() if key != missing})


@pytest.mark.parametrize("entries, match", [
    ({"method": "met", "seed": 0, "test": TEST, "best_val_avg_map": 0.4, "epochs": 1,
      "seconds": 1.0}, "a run has no 'history' entry"),
    ({"method": "met", "seed": 0, "failure": "collapsed", "variant": "pcl"},
     r"a run of 'met' has unknown entries \['variant'\]"),
    ([["method", "met"]], "a run must be a JSON object, got list"),
])
def test_a_mapping_that_is_no_run_is_refused(entries, match):
    with pytest.raises(ValueError, match=match):
        result_from_dict(entries)


def test_a_figures_file_of_keras_cmr_train_is_read_back():
    # figures.json as `keras-cmr train` writes it: the source's row, then the method's.
    met_history = {"source": stage([0.3, 0.32]), "met": stage([0.4, 0.45, 0.44])}
    text = json.dumps({"data": "digits", "config": {"epochs": 3}, "results": [
        {"method": "source (stage 1)", "seed": 0,
         "test": {"i2t_map": 0.3, "t2i_map": 0.34, "avg_map": 0.32}, "test_curves": CURVES,
         "best_val_avg_map": 0.32, "epochs": 3, "seconds": 40.0, "history": met_history},
        {"method": "met", "seed": 0, "test": TEST, "test_curves": CURVES,
         "best_val_avg_map": 0.45, "epochs": 3, "seconds": 40.0, "history": met_history}]},
        indent=1)
    content = json.loads(text)
    source, met = (result_from_dict(entries) for entries in content["results"])
    assert (source.method, source.test["avg_map"], source.best_val_avg_map) == (
        "source (stage 1)", 0.32, 0.32)
    assert (met.method, met.seed, met.epochs, met.seconds) == ("met", 0, 3, 40.0)
    assert met.test == TEST and met.test_curves == CURVES and met.history == met_history
    assert met.label_noise is None and met.preprocessing is None and met.source_folds is None
    rewritten = {**content, "results": [source.to_dict(), met.to_dict()]}
    assert json.dumps(rewritten, indent=1) == text
