"""The README's Python example runs as written (with fewer epochs and a temporary output)."""

import ast
import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_examples_run(wikipedia_dir, tmp_path, capsys):
    with open(os.path.join(REPO_ROOT, "README.md")) as stream:
        code, out_of_fold = re.findall(r"```python\n(.*?)```", stream.read(), re.S)[:2]
    assert "epochs=200" in code and '"target.keras"' in code and "../shared" in code
    code = (code.replace("epochs=200", "epochs=2")
            .replace('"target.keras"', repr(str(tmp_path / "target.keras")))
            .replace("../shared/data/wikipedia_sift_lda", wikipedia_dir))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    figures = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {"i2t_map", "t2i_map", "avg_map"}
    assert 0.0 < figures["avg_map"] <= 1.0
    assert (tmp_path / "target.keras").is_file()
    # The out-of-fold example continues the first one.
    # Fewer folds and epochs: the suite's time, not the example's behaviour.
    assert out_of_fold.count("epochs=200") == 2 and out_of_fold.count("source_folds=5") == 1
    out_of_fold = out_of_fold.replace("epochs=200", "epochs=2").replace("source_folds=5",
                                                                        "source_folds=2")
    exec(compile(out_of_fold, "README.md", "exec"), namespace)
    folds, train = namespace["folds"], namespace["data"].train
    assert folds.image.shape == (train.num_pairs, 256) and len(folds.encoders) == 2
    assert len(namespace["transfer"].history.history["loss"]) <= 2


def test_readme_scaling_out_example_runs(tmp_path, capsys, monkeypatch):
    with open(os.path.join(REPO_ROOT, "README.md")) as stream:
        text = stream.read()
    section = text[text.index("## Scaling out"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    figures = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {"map@10", "precision@1", "precision@10", "recall@1", "recall@10"}
    assert all(0.0 <= value <= 1.0 for value in figures.values())
    from keras_cmr.retrieval import load_index

    index = load_index(str(tmp_path / "gallery_index"))
    assert (index.ntotal, index.dim) == (40_000, 256)


def test_readme_own_method_and_label_noise_example_runs(capsys):
    """The registry example registers a method, compares it under label noise, pairs seeds."""
    from keras_cmr import methods

    with open(os.path.join(REPO_ROOT, "README.md")) as stream:
        text = stream.read()
    section = text[text.index("## Your own method, label noise"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert "epochs=200" in code and "seeds=3" in code
    # Fewer epochs and seeds: the suite's time, not the example's behaviour.
    code = code.replace("epochs=200", "epochs=3").replace("seeds=3", "seeds=2")
    namespace = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        methods.unregister("triplet_all")
    results = namespace["results"]
    assert sorted({(r.method, r.seed) for r in results}) == [
        (m, s) for m in ("control", "met", "triplet_all") for s in (0, 1)]
    assert all(r.label_noise["rate"] == 0.4 for r in results if not r.failed)
    paired = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert paired["n"] == 2 and paired["verdict"] in ("better", "tie", "worse")
