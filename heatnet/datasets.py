"""Named datasets and their splits, read from a data root in their native layouts.

    load_split("300w", "train", root)  -> RecordSource (or SyntheticFaces for "synthetic")

The data root comes from --data-root or the HEATNET_DATA environment variable. Bad samples
(unreadable annotation, missing image, wrong point count, non-finite coordinates, duplicate
names) are skipped with one warning that counts them, or raise at the first with strict=True.
"""
from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from heatnet.samples import Normaliser, RecordSource, warn_skipped
from heatnet.geometry import landmark_box
from heatnet.formats import (AnnotationError, Record, read_asf, read_dlib_xml, read_kaggle_csv, read_pts,
                             read_wflw, read_ytf_csv)
from heatnet.schemes import IBUG68, IMM58, IMM_NOSE_TIP_INDEX, KAGGLE15, NOSE_TIP, WFLW98
from heatnet.synthetic import SyntheticFaces
from heatnet.errors import HeatnetError


class DatasetError(HeatnetError, ValueError):
    """A dataset or split cannot be loaded; the message says what to do."""


def default_data_root() -> Path:
    root = os.environ.get("HEATNET_DATA")
    if not root:
        raise DatasetError("no data root: pass --data-root PATH or set HEATNET_DATA "
                           "(the README says where to download each dataset)")
    return Path(root)


class BadSamples:
    """Collects skipped samples for one split: warn once with a count (unless `quiet`: a caller
    that lists them itself), or raise when strict. Also collects the images found beside the
    annotations that have none (tools/check_data.py reports them; training ignores them).
    `looked_in` says where the loader read and what it expected there, for the error raised when
    nothing usable is found."""

    def __init__(self, split: str, strict: bool = False, quiet: bool = False):
        self.split, self.strict, self.quiet = split, strict, quiet
        self.problems: list[str] = []
        self.images: list[Path | None] = []  # the image each problem is about, where known
        self.unannotated: list[Path] = []
        self.looked_in = ""

    def report(self, message: str, image: Path | None = None) -> None:
        if self.strict:
            raise DatasetError(message)
        self.problems.append(message)
        self.images.append(image)

    def keep_only(self, belongs: Callable[[Path], bool]) -> None:
        """Forget the problems of images that belong to another split (a bad annotation among the
        training images is not the validation split's): read before the train / val holdout."""
        kept = [(m, i) for m, i in zip(self.problems, self.images) if i is None or belongs(i)]
        self.problems, self.images = [m for m, _ in kept], [i for _, i in kept]
        self.unannotated = [i for i in self.unannotated if belongs(i)]

    def finish(self, records: list[Record]) -> list[Record]:
        """Drop duplicates and records whose image header is unreadable, too small, or whose
        points mostly lie outside it; then warn once with the count (or raise when strict)."""
        seen: set[str] = set()
        usable = []
        for r in records:
            if r.key in seen:
                self.report(f"{r.image_path}: face {r.face} is listed twice in {self.split}", r.image_path)
                continue
            seen.add(r.key)
            problem = _image_problem(r)
            if problem:
                self.report(f"{r.image_path}: {problem}", r.image_path)
                continue
            usable.append(r)
        if not self.quiet:
            warn_skipped(self.split, self.problems)
        if not usable:
            where = f" in {self.looked_in}" if self.looked_in else ""
            found = (f"; {len(self.problems)} skipped, first: {self.problems[0]}" if self.problems
                     else "; nothing was found there")
            raise DatasetError(f"{self.split}: no usable samples{where}{found}")
        return usable


MIN_IMAGE_SIDE = 8
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS  # 89.5 Mpx: a larger image is skipped rather than decoded every epoch
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".bmp")


def _image_problem(record: Record) -> str | None:
    """Why a record's image cannot serve, from its header alone (cheap), or None."""
    if record.pixels is not None:
        size = record.pixels.shape[1::-1]
    else:
        try:
            size = _header_size(record.image_path)
        except FileNotFoundError:
            return "image file not found"
        except (OSError, UnidentifiedImageError) as e:
            return f"cannot read image ({e})"
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        return (f"image is {size[0]} x {size[1]} px, above the {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit for decoding "
                f"(Pillow's decompression-bomb limit); downscale it and its points")
    if min(size) < MIN_IMAGE_SIDE:
        return f"image is {size[0]} x {size[1]} px, smaller than {MIN_IMAGE_SIDE} px"
    visible = record.points[record.visibility > 0]
    # A few points past the border are normal (faces cut by the frame); most of them means the
    # annotation belongs to another image or another scale.
    outside = ((visible < -0.5) | (visible > np.array(size) - 0.5)).any(axis=1)
    if len(visible) and outside.mean() > 0.5:
        return f"{int(outside.sum())} of {len(visible)} points lie outside the {size[0]} x {size[1]} image"
    return None


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image file's header. Pillow's decompression-bomb check is off for
    this read alone (nothing is decoded), so that any size is judged by one rule, with its size."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _image_next_to(annotation: Path) -> Path | None:
    for ext in IMAGE_SUFFIXES:
        if annotation.with_suffix(ext).is_file():
            return annotation.with_suffix(ext)
    return None


def _pts_folder(folders: list[Path], bad: BadSamples) -> list[Record]:
    records = []
    bad.looked_in = f"{', '.join(map(str, folders))} (expected .pts files, each beside its image)"
    for folder in folders:
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder not found (see the README for the 300-W layout)")
        for pts in sorted(folder.glob("*.pts")):
            try:
                points = read_pts(pts, IBUG68.num_points)
            except AnnotationError as e:
                bad.report(str(e), pts)
                continue
            image = _image_next_to(pts)
            if image is None:
                bad.report(f"{pts}: no image beside it", pts)
                continue
            records.append(Record(image, points, np.ones(len(points), np.float32)))
        bad.unannotated += _images_without(folder, ".pts")
    return records


def _images_without(folder: Path, annotation_suffix: str, people: range | None = None) -> list[Path]:
    """Images in `folder` with no annotation file of the same stem (of the given IMM people)."""
    return [image for image in sorted(folder.iterdir())
            if image.suffix in IMAGE_SUFFIXES and not image.with_suffix(annotation_suffix).is_file()
            and (people is None or _imm_person(image) in people)]


# Validation splits are a fixed part of the training images: the groups (an identity, or an image
# with all its faces) whose CRC-32 is 0 mod 10, about a tenth. A group never straddles train and
# val, and adding images elsewhere does not move the others between the two.
VAL_MODULUS = 10
HOLDOUT_SPLITS = ("train", "val", "trainval")  # train = trainval minus val


def is_validation_group(group: str) -> bool:
    return zlib.crc32(group.encode()) % VAL_MODULUS == 0


def holdout(records: list[Record], split: str, group: Callable[[Path], str], bad: BadSamples) -> list[Record]:
    """The `train` (without val), `val` or `trainval` (all) part of a dataset's training records;
    `bad` keeps the problems of that part only. `group` names an image's group from its path."""
    if split == "trainval":
        return records

    def belongs(image: Path) -> bool:
        return is_validation_group(group(image)) == (split == "val")

    bad.keep_only(belongs)
    return [r for r in records if belongs(r.image_path)]


def _image_group(image: Path) -> str:
    """300-W: an image with all its faces (afw's `<image>_<face>.pts`), named with its folder."""
    return f"{image.parent.name}/{re.sub(r'_[0-9]{1,2}$', '', image.stem)}"


def _identity(image: Path) -> str:
    """ytf68: the person (frames are named `<First_Last>_<frame>.jpg`)."""
    return re.sub(r"_[0-9]+$", "", image.stem)


def _image_file(base: Path) -> Callable[[Path], str]:
    """dlib, WFLW: an image file, named relative to the dataset's own folder (never by where the
    data root happens to be)."""
    return lambda image: str(image.relative_to(base)) if image.is_relative_to(base) else image.name


W300_TRAIN = ["afw", "helen/trainset", "lfpw/trainset"]
W300_SPLITS = {
    **{split: W300_TRAIN for split in HOLDOUT_SPLITS},
    "test": ["lfpw/testset"],  # the part of the common set in ../shared/datasets
    "common": ["helen/testset", "lfpw/testset"],
    "challenge": ["ibug"],
    "full": ["helen/testset", "lfpw/testset", "ibug"],
}


def _w300(root: Path, split: str, bad: BadSamples) -> RecordSource:
    records = _pts_folder([root / "300w" / f for f in W300_SPLITS[split]], bad)
    if split in HOLDOUT_SPLITS:
        records = holdout(records, split, _image_group, bad)
    return RecordSource(bad.finish(records), IBUG68)


# Kaggle's 15 keypoints from iBUG's 68 (0-based; Kaggle's left is the person's left, the image's right).
KAGGLE15_FROM_IBUG68 = [(42, 43, 44, 45, 46, 47), (36, 37, 38, 39, 40, 41), (42,), (45,), (39,), (36,), (22,), (26,),
                        (21,), (17,), (30,), (54,), (48,), (51,), (57,)]  # eye centres: the mean of six points
KAGGLE_SPARSE_POINTS = (0, 1, 10, 14)  # eye centres, nose tip, bottom lip: all a sparse Kaggle row has


def _w300_kaggle15(root: Path, split: str, bad: BadSamples) -> RecordSource:
    """300-W's faces with Kaggle's 15 keypoints and, in train / val / trainval, Kaggle's missing
    labels: 7 images in 10 (by name) keep only the 4 points of a sparse row, as 4909 of the 7049
    rows of training.csv do. Crops and inter-ocular normalisers come from the full 68 points, as
    every Kaggle image is the same kind of face crop whatever its labels."""
    sparse = np.isin(np.arange(KAGGLE15.num_points), KAGGLE_SPARSE_POINTS).astype(np.float32)
    full = _w300(root, split, bad).records
    records = []
    for r in full:
        points = np.stack([r.points[list(group)].mean(0) for group in KAGGLE15_FROM_IBUG68]).astype(np.float32)
        hidden = split in HOLDOUT_SPLITS and zlib.crc32(r.name.encode()) % 10 < 7
        records.append(Record(r.image_path, points, sparse.copy() if hidden else np.ones(len(points), np.float32)))
    return RecordSource(records, KAGGLE15, normalisers=[Normaliser.INTER_OCULAR.of(r.points, r.visibility, IBUG68) for r in full],
                        boxes=[landmark_box(r.points, r.visibility) for r in full], normaliser=Normaliser.INTER_OCULAR)


def _ytf68(root: Path, split: str, bad: BadSamples) -> RecordSource:
    folder = "test" if split == "test" else "training"
    csv_path = root / "ytf68" / f"{folder}_frames_keypoints.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: not found (see the README for the ytf68 layout)")
    bad.looked_in = f"{csv_path} (expected a row per image of {root / 'ytf68' / folder})"
    records = read_ytf_csv(csv_path, root / "ytf68" / folder, on_error=bad.report)
    listed = {r.image_path for r in records}
    images = sorted((root / "ytf68" / folder).iterdir()) if (root / "ytf68" / folder).is_dir() else []
    bad.unannotated += [image for image in images if image.suffix in IMAGE_SUFFIXES and image not in listed]
    if split in HOLDOUT_SPLITS:
        records = holdout(records, split, _identity, bad)
    return RecordSource(bad.finish(records), IBUG68)


IMM_PEOPLE = {"train": range(1, 29), "val": range(29, 33), "trainval": range(1, 33), "test": range(33, 41),
              "all": range(1, 41)}


def _imm_records(root: Path, split: str, bad: BadSamples) -> list[Record]:
    people = IMM_PEOPLE[split]
    records = []
    folder = root / "imm"
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found (see the README for the IMM layout)")
    bad.looked_in = f"{folder} (expected <person>-<pose>.asf files of people {people.start:02d}-{people.stop - 1:02d}, each beside its image)"
    for asf in sorted(folder.glob("*.asf")):
        person = _imm_person(asf)
        if person is None:
            bad.report(f"{asf}: name is not '<person>-<pose>.asf'", asf)
            continue
        if person not in people:
            continue
        try:
            points, image_name = read_asf(asf)
        except AnnotationError as e:
            bad.report(str(e), asf)
            continue
        if len(points) != IMM58.num_points:
            bad.report(f"{asf}: expected {IMM58.num_points} points, found {len(points)}", asf)
            continue
        records.append(Record(folder / image_name, points, np.ones(len(points), np.float32)))
    bad.unannotated += _images_without(folder, ".asf", people)
    return bad.finish(records)


def _imm_person(path: Path) -> int | None:
    """The person number of an IMM file named <person>-<pose>.<ext>."""
    head = path.stem.split("-")[0]
    return int(head) if head.isdigit() else None


def _imm(root: Path, split: str, bad: BadSamples) -> RecordSource:
    return RecordSource(_imm_records(root, split, bad), IMM58)


def _imm_nose(root: Path, split: str, bad: BadSamples) -> RecordSource:
    full = _imm_records(root, split, bad)
    nose = [Record(r.image_path, r.points[IMM_NOSE_TIP_INDEX : IMM_NOSE_TIP_INDEX + 1],
                   r.visibility[IMM_NOSE_TIP_INDEX : IMM_NOSE_TIP_INDEX + 1]) for r in full]
    # One point has no extent: crop and normalise by the full 58-point face it came from.
    return RecordSource(nose, NOSE_TIP, normalisers=[Normaliser.INTER_OCULAR.of(r.points, r.visibility, IMM58) for r in full],
                        boxes=[landmark_box(r.points, r.visibility) for r in full], normaliser=Normaliser.INTER_OCULAR)


def _kaggle(root: Path, split: str, bad: BadSamples) -> RecordSource:
    csv_path = root / "kaggle" / "training.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: not found (download training.csv of Kaggle's facial-keypoints-detection)")
    bad.looked_in = str(csv_path)
    records = read_kaggle_csv(csv_path, on_error=bad.report)
    # The competition's test.csv has no labels: rows 8 and 9 of every ten are val and test.
    part = {"val": (8,), "test": (9,), "train": tuple(range(8)), "trainval": tuple(range(9))}[split]
    return RecordSource(bad.finish([r for i, r in enumerate(records) if i % 10 in part]), KAGGLE15)


def _dlib(root: Path, split: str, bad: BadSamples) -> RecordSource:
    xml = root / "dlib" / f"labels_ibug_300W_{'test' if split == 'test' else 'train'}.xml"
    if not xml.is_file():
        raise DatasetError(f"{xml}: not found (dlib's ibug_300W_large_face_landmark_dataset)")
    try:
        bad.looked_in = str(xml)
        records = [r for r in read_dlib_xml(xml, IBUG68.num_points) if r.visibility.any()]
    except AnnotationError as e:
        raise DatasetError(str(e)) from None
    if split in HOLDOUT_SPLITS:
        records = holdout(records, split, _image_file(root / "dlib"), bad)
    return RecordSource(bad.finish(records), IBUG68)


def _wflw(root: Path, split: str, bad: BadSamples) -> RecordSource:
    name = "test" if split == "test" else "train"
    txt = root / "wflw" / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{name}.txt"
    if not txt.is_file():
        raise DatasetError(f"{txt}: not found (see the README for the WFLW layout)")
    bad.looked_in = f"{txt} (images under {root / 'wflw' / 'WFLW_images'})"
    records = read_wflw(txt, root / "wflw" / "WFLW_images", on_error=bad.report)
    if split in HOLDOUT_SPLITS:
        records = holdout(records, split, _image_file(root / "wflw" / "WFLW_images"), bad)
    return RecordSource(bad.finish(records), WFLW98)


def _synthetic(root: Path | None, split: str, bad: BadSamples) -> SyntheticFaces:
    size, seed = SYNTHETIC_SPLITS[split]
    return SyntheticFaces(size, seed=seed)


SYNTHETIC_SPLITS = {"train": (4000, 0), "val": (300, 1), "test": (500, 2)}

# name -> (loader, splits). A plain table: add a dataset by writing a loader and a row here.
DATASETS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "synthetic": (_synthetic, tuple(SYNTHETIC_SPLITS)),
    "ytf68": (_ytf68, (*HOLDOUT_SPLITS, "test")),
    "300w": (_w300, tuple(W300_SPLITS)),
    "imm": (_imm, tuple(IMM_PEOPLE)),
    "imm_nose": (_imm_nose, tuple(IMM_PEOPLE)),
    "kaggle": (_kaggle, (*HOLDOUT_SPLITS, "test")),
    "300w_kaggle15": (_w300_kaggle15, tuple(W300_SPLITS)),
    "dlib": (_dlib, (*HOLDOUT_SPLITS, "test")),
    "wflw": (_wflw, (*HOLDOUT_SPLITS, "test")),
}


def load_folder(folder: Path, strict: bool = False, bad: BadSamples | None = None) -> RecordSource:
    """A labelled folder of one's own (68 points, iBUG layout) as a test set: .pts files beside
    the images, or one dlib XML file (image paths relative to it), or one CSV in the ytf68 layout
    (a row per image of the folder: its name, then x0, y0, x1, y1, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    bad = bad or BadSamples(folder.name, strict)
    if any(folder.glob("*.pts")):
        return RecordSource(bad.finish(_pts_folder([folder], bad)), IBUG68)
    xmls, csvs = sorted(folder.glob("*.xml")), sorted(folder.glob("*.csv"))
    if len(xmls) + len(csvs) != 1:
        raise DatasetError(f"{folder}: expected .pts files beside the images, or one dlib XML file, or one CSV in the "
                           f"ytf68 layout; found no .pts, {len(xmls)} XML and {len(csvs)} CSV file(s)")
    if xmls:
        bad.looked_in = str(xmls[0])
        try:
            records = [r for r in read_dlib_xml(xmls[0], IBUG68.num_points) if r.visibility.any()]
        except AnnotationError as e:
            raise DatasetError(str(e)) from None
    else:
        bad.looked_in = f"{csvs[0]} (expected a row per image of {folder})"
        records = read_ytf_csv(csvs[0], folder, on_error=bad.report)
    return RecordSource(bad.finish(records), IBUG68)


def load_split(name: str, split: str, root: Path | None = None, strict: bool = False, bad: BadSamples | None = None):
    """A source (sequence of heatnet.samples.Sample) for one split of a named dataset; `bad`
    collects what was skipped (default: a warning with the count)."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    loader, splits = DATASETS[name]
    if split not in splits:
        raise DatasetError(f"dataset {name!r} has no split {split!r}; choose one of: {', '.join(splits)}")
    if name != "synthetic":
        root = Path(root) if root is not None else default_data_root()
        if not root.is_dir():
            raise DatasetError(f"data root {root} is not a folder (set --data-root or HEATNET_DATA)")
    return loader(root, split, bad or BadSamples(f"{name}/{split}", strict))
