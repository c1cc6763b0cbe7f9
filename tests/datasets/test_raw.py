"""load_raw_pairs / RawSplit / RawDataset: the .jsonl and .tsv formats, decoding, bad lines."""

import json
import os

import keras
import numpy as np
import pytest

from keras_cmr.datasets import RawDataset, RawSplit, load_raw_pairs

COLOURS = [(220, 30, 30), (30, 200, 60), (40, 60, 210)]  # class c -> colour
# (class, split) of image i, in file order: 6 train, 3 val, 3 test pairs, each split
# holding every class.
PAIRS = [(i % 3, ("train", "train", "val", "test")[i // 3]) for i in range(12)]


def save_solid(path, colour, shape=(16, 16)):
    keras.utils.save_img(path, np.full((*shape, 3), colour, dtype=np.uint8), scale=False)


@pytest.fixture
def folder(tmp_path):
    """12 solid-colour 16x16 images (image 11 a JPEG, in a sub-folder), colour = class."""
    os.mkdir(tmp_path / "img")
    for i, (label, _) in enumerate(PAIRS):
        suffix = "jpg" if i == 11 else "png"
        save_solid(str(tmp_path / "img" / f"{i}.{suffix}"), COLOURS[label])
    return tmp_path


def image_name(i):
    return f"img/{i}.{'jpg' if i == 11 else 'png'}"


def caption(i):
    return f"a square of colour {PAIRS[i][0]}, number {i}"


def records():
    return [{"image": image_name(i), "caption": caption(i), "label": label, "split": split}
            for i, (label, split) in enumerate(PAIRS)]


def write_jsonl(path, rows, extra_lines=()):
    lines = [json.dumps(row) for row in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tsv(path, rows, extra_lines=(), newline="\n"):
    lines = ["image\tcaption\tlabel\tsplit"]
    for row in rows:
        label = row["label"] if "label" in row else ",".join(str(c) for c in row["labels"])
        lines.append(f"{row['image']}\t{row['caption']}\t{label}\t{row['split']}")
    path.write_bytes((newline.join(lines + list(extra_lines)) + newline).encode("utf-8"))
    return path


@pytest.mark.parametrize("writer, file_name", [(write_jsonl, "captions.jsonl"),
                                               (write_tsv, "captions.tsv")])
def test_both_formats_load_pairs_in_file_order(folder, writer, file_name):
    path = writer(folder / file_name, records())
    data = load_raw_pairs(str(path), image_size=(8, 12))
    assert isinstance(data, RawDataset) and list(data.splits) == ["train", "val", "test"]
    assert data.num_classes == 3 and not data.is_multilabel and data.name == folder.name
    header = 1 if file_name.endswith(".tsv") else 0
    for split_name, split in data.splits.items():
        rows = [i for i, (_, s) in enumerate(PAIRS) if s == split_name]
        assert split.num_pairs == len(rows) and split.name == split_name
        assert split.captions == [caption(i) for i in rows]
        assert split.labels.dtype == np.int64
        np.testing.assert_array_equal(split.labels, [PAIRS[i][0] for i in rows])
        assert split.image_paths == [os.path.join(str(folder), image_name(i)) for i in rows]
        assert split.origins == [f"{file_name} line {i + 1 + header}" for i in rows]
        images = split.read_images()
        assert images.dtype == np.uint8 and images.shape == (len(rows), 8, 12, 3)
        for image, i in zip(images, rows):
            expected = np.broadcast_to(COLOURS[PAIRS[i][0]], image.shape)
            tolerance = 4 if image_name(i).endswith(".jpg") else 0  # JPEG is lossy
            np.testing.assert_allclose(image, expected, atol=tolerance)


def test_iter_batches_and_ranges_agree_with_the_whole_split(folder):
    split = load_raw_pairs(write_jsonl(folder / "c.jsonl", records()), (6, 6)).train
    everything = split.read_images()
    batches = list(split.iter_batches(5))
    assert [len(images) for images, _, _ in batches] == [5, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), everything)
    assert sum((b[1] for b in batches), []) == split.captions
    np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), split.labels)
    np.testing.assert_array_equal(split.read_images(2, 5), everything[2:5])
    np.testing.assert_array_equal(split.read_images(-1), everything[-1:])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(split.iter_batches(0))


def test_decoding_keeps_orientation_and_converts_grey_to_rgb(tmp_path):
    two_tone = np.zeros((16, 24, 3), dtype=np.uint8)
    two_tone[:8] = (255, 0, 0)  # top half red, bottom half black
    keras.utils.save_img(str(tmp_path / "two_tone.png"), two_tone, scale=False)
    keras.utils.save_img(str(tmp_path / "grey.png"), np.full((5, 7, 1), 90, np.uint8),
                         scale=False)
    split = RawSplit([str(tmp_path / "two_tone.png"), str(tmp_path / "grey.png")],
                     ["two tone", "grey"], [0, 1], image_size=(4, 6), interpolation="nearest")
    images = split.read_images()
    assert images.shape == (2, 4, 6, 3)
    np.testing.assert_array_equal(images[0, :2], np.broadcast_to((255, 0, 0), (2, 6, 3)))
    np.testing.assert_array_equal(images[0, 2:], 0)
    np.testing.assert_array_equal(images[1], 90)


@pytest.mark.parametrize("writer", [write_jsonl, write_tsv])
def test_multi_label_gives_multi_hot_over_the_whole_file(folder, writer):
    label_sets = [[0, 3], [1], [2, 1], [0], [1, 2], [3]] * 2
    rows = [{**row, "labels": labels} for row, labels in zip(records(), label_sets)]
    for row in rows:
        del row["label"]
    rows[1] = {**rows[1], "label": 1}  # a single index in a multi-label file: a one-label set
    del rows[1]["labels"]
    path = writer(folder / f"c.{'jsonl' if writer is write_jsonl else 'tsv'}", rows)
    if writer is write_tsv:  # a comma anywhere makes the file multi-label
        assert "0,3" in path.read_text()
    data = load_raw_pairs(path, (4, 4))
    assert data.is_multilabel and data.num_classes == 4
    for split_name, split in data.splits.items():
        indices = [i for i, (_, s) in enumerate(PAIRS) if s == split_name]
        expected = np.zeros((len(indices), 4), dtype=np.int64)
        for row, i in enumerate(indices):
            for label in label_sets[i]:
                expected[row, label] = 1
        assert split.labels.dtype == np.int64
        np.testing.assert_array_equal(split.labels, expected)


def test_num_classes_widens_the_label_space_and_bounds_it(folder):
    path = write_jsonl(folder / "c.jsonl", records())
    assert load_raw_pairs(path, (4, 4), num_classes=5).num_classes == 5
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        load_raw_pairs(path, (4, 4), num_classes=0)
    rows = records()
    rows[4]["label"] = 5
    with pytest.raises(ValueError, match=r"c\.jsonl line 5: label 5 is outside \[0, 5\)"):
        load_raw_pairs(write_jsonl(folder / "c.jsonl", rows), (4, 4), num_classes=5)


JSONL_BAD_LINES = [
    ('{"image": "img/missing.png", "caption": "x", "label": 0, "split": "train"}',
     "image 'img/missing.png' not found"),
    ('{"image": "img/0.png", "caption": "", "label": 0, "split": "train"}', "caption is empty"),
    ('{"image": "img/0.png", "caption": " \\t ", "label": 0, "split": "train"}',
     "caption is empty"),
    ('{"image": "img/0.png", "caption": 7, "label": 0, "split": "train"}',
     "caption must be a string"),
    ('{"image": "", "caption": "x", "label": 0, "split": "train"}',
     "image must be a non-empty path"),
    ('{"image": "img/0.png", "caption": "x", "split": "train"}',
     r"missing key\(s\) label \(or labels\)"),
    ('{"caption": "x", "label": 0}', r"missing key\(s\) image, split"),
    ('{"image": "img/0.png", "caption": "x", "label": "1", "split": "train"}',
     "label '1' is not a class index"),
    ('{"image": "img/0.png", "caption": "x", "label": 1.0, "split": "train"}',
     "label 1.0 is not a class index"),
    ('{"image": "img/0.png", "caption": "x", "label": true, "split": "train"}',
     "label True is not a class index"),
    ('{"image": "img/0.png", "caption": "x", "label": -2, "split": "train"}',
     "label -2 is not a class index"),
    ('{"image": "img/0.png", "caption": "x", "labels": [], "split": "train"}',
     "labels is empty"),
    ('{"image": "img/0.png", "caption": "x", "labels": 2, "split": "train"}',
     "'labels' must be a list"),
    ('{"image": "img/0.png", "caption": "x", "label": 0, "labels": [0], "split": "train"}',
     "has both 'label' and 'labels'"),
    ('{"image": "img/0.png", "caption": "x", "label": 0, "split": "dev"}',
     "split 'dev' is not one of train, val, test"),
    ('{"image": "img/0.png", "caption": "x", "label": 0, "split": "train"', "not valid JSON"),
    ('["img/0.png", "x", 0, "train"]', "expected a JSON object, got list"),
]


@pytest.mark.parametrize("line, problem", JSONL_BAD_LINES)
def test_each_bad_jsonl_line_is_named_with_its_number(folder, line, problem):
    path = write_jsonl(folder / "captions.jsonl", records(), extra_lines=["", line])
    with pytest.raises(ValueError, match=rf"1 bad line\(s\)[\s\S]*captions\.jsonl line 14: "
                                         rf"{problem}"):
        load_raw_pairs(path, (4, 4))


TSV_BAD_LINES = [
    ("img/0.png\tx\t0", r"expected 4 tab-separated fields \(image, caption, label, split\), "
                        "got 3"),
    ("img/0.png\tx\ty\t0\ttrain", "expected 4 tab-separated fields"),
    ("img/missing.png\tx\t0\ttrain", "image 'img/missing.png' not found"),
    ("img/0.png\t  \t0\ttrain", "caption is empty"),
    ("img/0.png\tx\t\ttrain", "label '' is not a class index"),
    ("img/0.png\tx\t1.5\ttrain", "label '1.5' is not a class index"),
    ("img/0.png\tx\t0,-1\ttrain", "label '-1' is not a class index"),
    ("img/0.png\tx\t0\tTest", "split 'Test' is not one of"),
]


@pytest.mark.parametrize("line, problem", TSV_BAD_LINES)
def test_each_bad_tsv_line_is_named_with_its_number(folder, line, problem):
    # CRLF line ends and a blank line: still counted as lines, never as pairs.
    path = write_tsv(folder / "captions.tsv", records(), extra_lines=["", line], newline="\r\n")
    with pytest.raises(ValueError, match=rf"captions\.tsv line 15: {problem}"):
        load_raw_pairs(path, (4, 4))


def test_a_wrong_tsv_header_is_refused(folder):
    path = folder / "captions.tsv"
    path.write_text("image\tcaption\tlabels\tsplit\nimg/0.png\tx\t0\ttrain\n")
    with pytest.raises(ValueError, match="line 1: the header must be"):
        load_raw_pairs(path, (4, 4))


def test_invalid_utf8_is_a_bad_line(folder):
    path = write_jsonl(folder / "captions.jsonl", records())
    path.write_bytes(path.read_bytes() + b'{"image": "img/0.png", "caption": "\xff"}\n')
    with pytest.raises(ValueError, match="captions.jsonl line 13: not valid UTF-8"):
        load_raw_pairs(path, (4, 4))


def test_all_bad_lines_are_listed_in_one_error_capped_at_twenty(folder):
    bad = ['{"image": "img/0.png", "caption": "", "label": 0, "split": "train"}'] * 25
    path = write_jsonl(folder / "captions.jsonl", records(), extra_lines=bad)
    with pytest.raises(ValueError) as caught:
        load_raw_pairs(path, (4, 4))
    message = str(caught.value)
    assert message.startswith(f"25 bad line(s) in {str(path)!r}")
    listed = [f"captions.jsonl line {n}: caption is empty" for n in range(13, 38)]
    assert all(line in message for line in listed[:20])
    assert listed[20] not in message and message.endswith("... and 5 more")


def test_skip_drops_bad_lines_with_a_warning_listing_them(folder):
    rows = records()
    rows[0]["caption"] = ""
    rows[5]["image"] = "img/missing.png"
    path = write_jsonl(folder / "captions.jsonl", rows, extra_lines=["{"])
    with pytest.warns(UserWarning, match=r"skipped 3 bad line\(s\)[\s\S]*line 1: caption is "
                                         r"empty[\s\S]*line 6: image[\s\S]*line 13: not valid"):
        data = load_raw_pairs(path, (4, 4), on_bad_rows="skip")
    assert data.train.num_pairs == 4 and data.val.num_pairs == 3 and data.test.num_pairs == 3
    assert caption(0) not in data.train.captions and caption(5) not in data.train.captions
    with pytest.raises(ValueError, match="on_bad_rows must be one of"):
        load_raw_pairs(path, (4, 4), on_bad_rows="ignore")


def test_a_corrupt_image_is_named_by_its_annotation_line(folder):
    (folder / "img" / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(300))
    rows = records()
    rows[4]["image"] = "img/corrupt.png"  # train, line 5
    path = write_jsonl(folder / "captions.jsonl", rows)
    train = load_raw_pairs(path, (4, 4)).train  # the file exists: decoding is deferred
    pattern = r"captions\.jsonl line 5: image '.*corrupt\.png' could not be read"
    with pytest.raises(ValueError, match=pattern):
        train.read_images()
    with pytest.raises(ValueError, match=pattern):
        list(train.iter_batches(4))
    assert train.read_images(0, 4).shape == (4, 4, 4, 3)  # a range without it still decodes
    with pytest.raises(ValueError, match=r"1 bad line\(s\)[\s\S]*line 5: image "
                                         r"'img/corrupt\.png' could not be read"):
        load_raw_pairs(path, (4, 4), verify_images=True)
    with pytest.warns(UserWarning, match="line 5"):
        data = load_raw_pairs(path, (4, 4), verify_images=True, on_bad_rows="skip")
    assert data.train.num_pairs == 5 and data.train.read_images().shape == (5, 4, 4, 3)


def test_missing_file_wrong_extension_and_folder_lookup(folder):
    with pytest.raises(FileNotFoundError, match="no annotation file or folder at .*absent"):
        load_raw_pairs(folder / "absent.jsonl")
    with pytest.raises(FileNotFoundError, match="no annotation file or folder"):
        load_raw_pairs(folder / "absent")
    (folder / "captions.csv").write_text("image,caption,label,split\n")
    with pytest.raises(ValueError, match=r"extension must be one of \('\.jsonl', '\.tsv'\)"):
        load_raw_pairs(folder / "captions.csv")
    with pytest.raises(ValueError, match=r"exactly one annotation file.*found \[\]"):
        load_raw_pairs(folder)
    write_jsonl(folder / "captions.jsonl", records())
    assert load_raw_pairs(folder, (4, 4)).train.num_pairs == 6
    write_tsv(folder / "captions.tsv", records())
    with pytest.raises(ValueError, match=r"found \['captions.jsonl', 'captions.tsv'\]"):
        load_raw_pairs(folder)


def test_val_is_optional_but_train_and_test_are_required(folder):
    no_val = [row for row in records() if row["split"] != "val"]
    assert load_raw_pairs(write_jsonl(folder / "c.jsonl", no_val), (4, 4)).val is None
    no_test = [row for row in records() if row["split"] != "test"]
    with pytest.raises(ValueError, match="has no 'test' pairs; train and test are required"):
        load_raw_pairs(write_jsonl(folder / "c.jsonl", no_test), (4, 4))
    (folder / "e.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="has no 'train' pairs"):
        load_raw_pairs(folder / "e.jsonl", (4, 4))


def test_a_val_or_test_class_absent_from_train_is_refused_unless_allowed(folder):
    rows = records()
    rows[11]["label"] = 3  # the last test pair: class 3, never in train
    path = write_jsonl(folder / "c.jsonl", rows)
    with pytest.raises(ValueError, match=r"c\.jsonl line 12: split 'test' has class 3, which "
                                         r"no training pair has.*allow_unseen_classes"):
        load_raw_pairs(path, (4, 4))
    data = load_raw_pairs(path, (4, 4), allow_unseen_classes=True)
    assert data.num_classes == 4 and data.test.labels[-1] == 3


def test_raw_split_and_dataset_validate_hand_built_input(folder):
    paths = [str(folder / image_name(i)) for i in range(3)]
    with pytest.raises(ValueError, match="3 image paths, 2 captions, 3 labels"):
        RawSplit(paths, ["a", "b"], [0, 1, 2])
    with pytest.raises(ValueError, match="split 'train' row 1: the caption is empty"):
        RawSplit(paths, ["a", " ", "c"], [0, 1, 2], name="train")
    with pytest.raises(TypeError, match="image_size must be two integers"):
        RawSplit(paths, ["a", "b", "c"], [0, 1, 2], image_size=(4.0, 4))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        RawSplit(paths, ["a", "b", "c"], [0, 1, 2], interpolation="cubic")
    split = RawSplit(paths, ["a", "b", "c"], [0, 1, 2], name="train")
    with pytest.raises(ValueError, match=r"split 'test' row 0: split 'test' has label 3, "
                                         r"outside \[0, 3\)"):
        RawDataset(split, RawSplit(paths[:1], ["a"], [3], name="test"), num_classes=3)
    with pytest.raises(TypeError, match="test must be a RawSplit"):
        RawDataset(split, None)
    missing = RawSplit([str(folder / "gone.png")], ["a"], [0], name="train")
    with pytest.raises(ValueError, match="split 'train' row 0: image .*gone.png"):
        missing.read_images()
