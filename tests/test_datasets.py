"""Named datasets: splits, what is skipped and where it is counted, and errors that say where
heatnet looked and what it expected there."""
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import add_300w_face
from heatnet.datasets import BadSamples, DatasetError, is_validation_group, load_split
from heatnet.formats import Record


def _name(validation: bool, prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(10_000) if is_validation_group(f"trainset/{prefix}{i}") == validation)


def test_an_empty_dataset_folder_names_where_it_looked_and_what_it_expected(tmp_path):
    for folder in ("afw", "helen/trainset", "lfpw/trainset"):
        (tmp_path / "300w" / folder).mkdir(parents=True)
    with pytest.raises(DatasetError) as caught:
        load_split("300w", "train", tmp_path)
    message = str(caught.value)
    assert message.startswith("300w/train: no usable samples in ") and str(tmp_path / "300w/afw") in message
    assert "expected .pts files, each beside its image" in message and "nothing was found there" in message


def test_a_folder_of_images_without_annotations_says_so(w300_root):
    (w300_root / "300w/afw").rename(w300_root / "300w/afw_old")
    (w300_root / "300w/afw").mkdir()
    for image in (w300_root / "300w/afw_old").glob("*.jpg"):
        image.rename(w300_root / "300w/afw" / image.name)
    bad = BadSamples("300w/trainval")
    with pytest.raises(DatasetError, match=r"no usable samples in .*afw.*expected \.pts files"):
        load_split("300w", "trainval", w300_root, bad=bad)
    assert len(bad.unannotated) == 4


def test_bad_annotations_are_counted_in_the_split_their_images_belong_to(w300_root):
    """A bad .pts among the training images is not the validation split's, and vice versa."""
    for validation in (False, False, True):
        add_300w_face(w300_root, _name(validation, "bad" if validation else f"bad{len(list(w300_root.rglob('bad*')))}_"),
                      pts_text="version: 1\n{\n1 2 3\n}\n")
    add_300w_face(w300_root, _name(True, "good_val"))
    counts = {}
    for split in ("train", "val", "trainval"):
        bad = BadSamples(f"300w/{split}", quiet=True)
        load_split("300w", split, w300_root, bad=bad)
        counts[split] = len(bad.problems)
    assert counts == {"train": 2, "val": 1, "trainval": 3}


def test_a_pts_file_with_a_byte_order_mark_is_not_lost(w300_root):
    pts = w300_root / "300w/afw/good0.pts"
    pts.write_bytes(b"\xef\xbb\xbf" + pts.read_bytes().replace(b"\n", b"\r\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no skipped-sample warning
        source = load_split("300w", "trainval", w300_root)
    assert len(source) == 4


def test_named_splits_sizes(data_root):
    sizes = {("300w", "train"): 1839, ("300w", "val"): 173, ("300w", "trainval"): 2012, ("300w", "test"): 224,
             ("ytf68", "train"): 3081, ("ytf68", "val"): 381, ("ytf68", "trainval"): 3462, ("ytf68", "test"): 770,
             ("imm", "train"): 168, ("imm", "val"): 24, ("imm", "test"): 48, ("imm_nose", "test"): 48}
    for (name, split), n in sizes.items():
        assert len(load_split(name, split, data_root)) == n, (name, split)
    nose = load_split("imm_nose", "test", data_root)[0]
    assert nose.points.shape == (1, 2) and nose.box is not None and nose.normaliser > 20


@pytest.mark.parametrize("name", ["300w", "ytf68"])
def test_validation_is_a_fixed_part_of_training_apart_from_test(data_root, name):
    """val and train partition the training images, by whole groups (a ytf68 person, a 300-W
    image with all its faces); the test split shares no file with either."""
    from heatnet.datasets import _identity, _image_group

    group = _identity if name == "ytf68" else _image_group
    parts = {split: load_split(name, split, data_root).records for split in ("train", "val", "trainval", "test")}
    keys = {split: {r.key for r in records} for split, records in parts.items()}
    assert keys["train"] | keys["val"] == keys["trainval"] and not keys["train"] & keys["val"]
    assert not keys["test"] & keys["trainval"]
    assert not {group(r.image_path) for r in parts["train"]} & {group(r.image_path) for r in parts["val"]}
    assert 0.05 < len(keys["val"]) / len(keys["trainval"]) < 0.15


def test_kaggle_dlib_wflw_loaders_on_fixture_layouts(tmp_path):
    from heatnet.formats import write_kaggle_csv
    from heatnet.schemes import KAGGLE15

    rng = np.random.default_rng(0)
    (tmp_path / "kaggle").mkdir()
    records = [Record(Path(f"{i}.png"), rng.uniform(20, 75, (15, 2)).astype(np.float32), np.ones(15, np.float32),
                      pixels=rng.integers(0, 255, (96, 96)).astype(np.uint8)) for i in range(20)]
    write_kaggle_csv(tmp_path / "kaggle/training.csv", records, KAGGLE15.point_names)
    assert [len(load_split("kaggle", split, tmp_path)) for split in ("train", "val", "test", "trainval")] == [16, 2, 2, 18]
    assert load_split("kaggle", "val", tmp_path)[0].image.shape == (96, 96, 3)

    (tmp_path / "dlib").mkdir()
    cv2.imwrite(str(tmp_path / "dlib/a.jpg"), rng.integers(0, 255, (120, 100, 3), dtype=np.uint8))
    parts = "".join(f"<part name='{i:02d}' x='{20 + i % 60}' y='{30 + i % 50}'/>" for i in range(68))
    (tmp_path / "dlib/labels_ibug_300W_test.xml").write_text(
        f"<dataset><images><image file='a.jpg'><box top='1' left='2' width='90' height='90'>{parts}</box>"
        f"<box top='5' left='6' width='80' height='80'>{parts}</box></image></images></dataset>")
    faces = load_split("dlib", "test", tmp_path)  # every face counts: two boxes, two samples
    assert len(faces) == 2 and [faces.name_of(i) for i in range(2)] == ["a.jpg", "a.jpg#1"]
    assert faces[0].points.shape == (68, 2) and list(faces[1].annotation_box) == [6, 5, 86, 85]

    folder = tmp_path / "wflw/WFLW_annotations/list_98pt_rect_attr_train_test"
    folder.mkdir(parents=True)
    (tmp_path / "wflw/WFLW_images/0--Parade").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "wflw/WFLW_images/0--Parade/b.jpg"), rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    coords = " ".join(f"{50 + i % 90} {60 + i % 80}" for i in range(98))
    (folder / "list_98pt_rect_attr_test.txt").write_text(f"{coords} 40 50 150 160 0 0 0 0 0 0 0--Parade/b.jpg\n"
                                                        f"{coords} 30 40 140 150 0 0 0 0 0 0 0--Parade/b.jpg\n")
    faces = load_split("wflw", "test", tmp_path)
    assert len(faces) == 2 and faces[0].points.shape == (98, 2) and faces[0].name == "b.jpg" and faces[1].name == "b.jpg#1"
    assert list(faces[1].annotation_box) == [30, 40, 140, 150]
