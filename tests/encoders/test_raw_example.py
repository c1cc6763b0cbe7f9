"""examples/train_raw_pairs.py --demo: folder of images + captions -> trained, saved MET model.

Run in-process (the example's `main`), so the test pays no second Keras / TensorFlow import.
"""

import importlib.util
import os
import re

import numpy as np

from keras_cmr import saving
from keras_cmr.datasets import load_raw_pairs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_example():
    path = os.path.join(REPO_ROOT, "examples", "train_raw_pairs.py")
    spec = importlib.util.spec_from_file_location("train_raw_pairs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_trains_saves_and_reloads_the_target(tmp_path, capsys):
    output = tmp_path / "target.keras"
    load_example().main(["--demo", str(tmp_path / "demo"), "--epochs", "1",
                         "--embedding-dim", "8", "--quiet", "--output", str(output)])
    printed = capsys.readouterr().out
    assert "RawDataset(name='pairs', train=32, val=8, test=8, num_classes=4)" in printed
    figures = re.search(r"avg ([01]\.\d{4})", printed)
    assert figures and 0.0 < float(figures.group(1)) <= 1.0
    assert re.search(r"reloaded, its text embeddings differ by 0\.0e\+00", printed)
    # The saved file is a whole model: raw captions and images in, unit vectors out.
    target = saving.load_model(str(output))
    data = load_raw_pairs(str(tmp_path / "demo" / "pairs"),
                          image_size=target.image_tower.image_shape[:2])
    embeddings = target.encode_image(data.test.read_images())
    assert embeddings.shape == (8, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
