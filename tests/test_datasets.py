"""Named datasets: splits, what is skipped and where it is counted, and errors that say where
heatnet looked and what it expected there."""
import warnings

import pytest

from conftest import add_300w_face
from heatnet.datasets import BadSamples, DatasetError, is_validation_group, load_split


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
