"""`keras-cmr extract-features`: a raw folder -> a features .npz that the whole pipeline reads."""

import json

import keras
import numpy as np
import pytest

from keras_cmr.cli.main import main
from keras_cmr.datasets import load_dataset, load_raw_pairs
from keras_cmr.encoders import clip_towers, extract_features

CAPTIONS = ("a red cat", "the blue dog runs", "a cat on the mat", "the red dog sits")


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory):
    """Ten pairs over two classes: train 6, val 2, test 2; one image per pair, 20x24."""
    folder = tmp_path_factory.mktemp("raw_pairs")
    rng = np.random.default_rng(0)
    lines = []
    for row in range(10):
        name = f"image_{row}.png"
        keras.utils.save_img(str(folder / name), rng.integers(0, 256, (20, 24, 3), np.uint8))
        split = "train" if row < 6 else ("val" if row < 8 else "test")
        lines.append({"image": name, "caption": CAPTIONS[row % 4], "label": row % 2,
                      "split": split})
    (folder / "captions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_cli_writes_the_pooled_backbone_features_of_every_split(clip_preset, raw_folder,
                                                                 tmp_path, capsys):
    out = tmp_path / "features.npz"
    code = main(["extract-features", "--preset", clip_preset, "--data", str(raw_folder),
                 "--out", str(out), "--batch-size", "4", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert f"--data npz:{out}" in capsys.readouterr().out
    features = load_dataset(f"npz:{out}")
    assert {name: split.num_pairs for name, split in features.splits.items()} == \
        {"train": 6, "val": 2, "test": 2}
    assert features.num_classes == 2 and features.name == raw_folder.name
    # Independently: the backbones' own outputs (CLS token, end-token state) on the
    # preprocessed pairs, all splits in one eager call (the CLI ran padded batches of 4).
    image_tower, text_tower = clip_towers(clip_preset)
    raw = load_raw_pairs(str(raw_folder), image_size=image_tower.image_shape[:2])
    names = ("train", "val", "test")
    pixels = np.concatenate([image_tower.preprocess(raw.splits[name].read_images())
                             for name in names])
    tokens = np.concatenate([text_tower.preprocess(raw.splits[name].captions)
                             for name in names])
    vision = keras.ops.convert_to_numpy(image_tower.backbone({"images": pixels},
                                                             training=False))[:, 0, :]
    words = keras.ops.convert_to_numpy(text_tower.backbone({"token_ids": tokens},
                                                           training=False))
    words = words[np.arange(len(tokens)), tokens.argmax(axis=1)]  # CLIP: end token = top id
    np.testing.assert_allclose(np.concatenate([features.splits[name].image for name in names]),
                               vision, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([features.splits[name].text for name in names]),
                               words, rtol=1e-4, atol=1e-5)
    for name in names:
        np.testing.assert_array_equal(features.splits[name].labels, raw.splits[name].labels)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        extract_features(raw, image_tower, text_tower, batch_size=0)


def test_cli_errors_name_the_problem(clip_preset, raw_folder, tmp_path, capsys):
    out = str(tmp_path / "features.npz")
    assert main(["extract-features", "--data", str(raw_folder), "--out", out]) == 2
    assert "give --preset (one CLIP preset), or both" in capsys.readouterr().err
    assert main(["extract-features", "--preset", clip_preset, "--data", str(raw_folder),
                 "--out", str(tmp_path / "features.txt")]) == 2
    assert "--out must name a .npz file" in capsys.readouterr().err
    assert main(["extract-features", "--preset", str(tmp_path / "nowhere"), "--data",
                 str(raw_folder), "--out", out]) == 2
    assert "nowhere" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "captions.jsonl").write_text(
        (raw_folder / "captions.jsonl").read_text() +
        json.dumps({"image": "missing.png", "caption": "a cat", "label": 0,
                    "split": "train"}) + "\n")
    for line in (raw_folder / "captions.jsonl").read_text().splitlines():
        name = json.loads(line)["image"]
        (bad / name).write_bytes((raw_folder / name).read_bytes())
    assert main(["extract-features", "--preset", clip_preset, "--data", str(bad), "--out",
                 out]) == 2
    assert "line 11" in capsys.readouterr().err
    assert not (tmp_path / "features.npz").exists()  # nothing written on failure
