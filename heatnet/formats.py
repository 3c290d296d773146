"""Readers and writers for native landmark formats.

Every reader returns points as float32 (K, 2) arrays of (x, y) in 0-based pixels with pixel
centres at integer coordinates, converting from the file's own convention, and raises
`AnnotationError` (naming the file and the problem) on malformed input, never another type.
"""
from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heatnet.errors import HeatnetError


class AnnotationError(HeatnetError, ValueError):
    """An annotation file (or one entry of it) cannot be used; the message names the file."""


@dataclass
class Record:
    """One annotated face: where its image is and its landmarks in original-image pixels."""

    image_path: Path
    points: np.ndarray  # (K, 2) float32, 0-based pixels
    visibility: np.ndarray  # (K,) float32, 0 for missing points
    pixels: np.ndarray | None = None  # inline image (Kaggle CSV) instead of a file
    box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 face box from the annotation, if any
    face: int = 0  # which face of its image (dlib XML and WFLW list several per image)

    @property
    def name(self) -> str:
        """The image's file name, with `#face` for the second and later faces of an image."""
        return self.image_path.name + (f"#{self.face}" if self.face else "")

    @property
    def key(self) -> str:
        """Identifies a sample: its image path and face index."""
        return f"{self.image_path}#{self.face}"


def _check_points(points: np.ndarray, where: str, num_points: int | None) -> np.ndarray:
    if num_points is not None and len(points) != num_points:
        raise AnnotationError(f"{where}: expected {num_points} points, found {len(points)}")
    if not np.isfinite(points).all():
        raise AnnotationError(f"{where}: non-finite coordinates")
    return points.astype(np.float32)


def _floats(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError as e:
        raise AnnotationError(f"{where}: not a number ({e})") from None


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Windows editors) is dropped
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AnnotationError(f"{path}: cannot read CSV ({e})") from None


def _csv_records(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV as {header: value}, after checking the header has `columns`."""
    rows = _csv_rows(path)
    if not rows or not set(columns) <= set(rows[0]):
        raise AnnotationError(f"{path}: expected the columns {', '.join(columns)}")
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def _kaggle_image(text: str, where: str) -> np.ndarray:
    """A Kaggle "Image" cell: 96 x 96 space-separated grey levels -> (96, 96) uint8."""
    pixels = np.array(_floats(text.split(), where))
    if pixels.size != KAGGLE_SIZE * KAGGLE_SIZE or not np.isfinite(pixels).all():
        raise AnnotationError(f"{where}: image has {pixels.size} pixels, expected {KAGGLE_SIZE}x{KAGGLE_SIZE}")
    return np.clip(pixels, 0, 255).astype(np.uint8).reshape(KAGGLE_SIZE, KAGGLE_SIZE)


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig", errors="strict")  # a byte-order mark is dropped
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot read annotation ({e})") from None


# --- 300-W .pts: optional header, then "x y" lines, 1-based ----------------------------------
def read_pts(path: Path, num_points: int | None = None) -> np.ndarray:
    lines = [ln.strip() for ln in _read_text(path).splitlines() if ln.strip()]
    if lines and lines[0].lower().startswith("version"):
        if "{" not in lines or "}" not in lines:
            raise AnnotationError(f"{path}: header without '{{' ... '}}' block")
        lines = lines[lines.index("{") + 1 : lines.index("}")]
    rows = []
    for n, line in enumerate(lines, 1):
        xy = _floats(line.split(), f"{path} point {n}")
        if len(xy) != 2:
            raise AnnotationError(f"{path} point {n}: expected 'x y', got {line!r}")
        rows.append(xy)
    if not rows:
        raise AnnotationError(f"{path}: no points")
    return _check_points(np.array(rows) - 1.0, str(path), num_points)


def write_pts(path: Path, points: np.ndarray) -> None:
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(points, dtype=np.float64))
    Path(path).write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


# --- IMM .asf: relative coordinates (0-1) of the host image ----------------------------------
def read_asf(path: Path, image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    """Return ((K, 2) pixels, host image name). image_size = (width, height); when None it is
    read from the host image's header."""
    lines = [ln.strip() for ln in _read_text(path).splitlines()]
    content = [ln for ln in lines if ln and not ln.startswith("#")]
    if not content:
        raise AnnotationError(f"{path}: empty .asf file")
    try:
        count = int(content[0])
    except ValueError:
        raise AnnotationError(f"{path}: first value should be the point count, got {content[0]!r}") from None
    if count <= 0 or len(content) < count + 2:
        raise AnnotationError(f"{path}: declares {count} points but has {len(content) - 1} data lines")
    rel = []
    for n, line in enumerate(content[1 : count + 1]):
        fields = _floats(line.split(), f"{path} point {n}")
        if len(fields) < 7:  # path, type, x, y, index, from, to [, user fields of later versions]
            raise AnnotationError(f"{path} point {n}: expected at least 7 fields, got {len(fields)}")
        rel.append(fields[2:4])
    image_name = content[count + 1]
    if image_size is None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(Path(path).parent / image_name) as im:
                image_size = im.size
        except (OSError, UnidentifiedImageError) as e:
            raise AnnotationError(f"{path}: cannot read host image {image_name!r} ({e})") from None
    points = np.array(rel) * np.array(image_size, dtype=np.float64)
    return _check_points(points, str(path), None), image_name


# --- YouTube Faces / Udacity P1 CSV: "name,x0,y0,...", 0-based pixels --------------------------
def _raise(message: str, image_path: Path | None = None) -> None:
    raise AnnotationError(message)


def read_ytf_csv(path: Path, image_dir: Path, num_points: int = 68, on_error=_raise) -> list[Record]:
    """on_error(message, image_path) is called for a malformed row (default: raise
    AnnotationError); rows it returns from are skipped. The same holds for the other
    multi-record readers (image_path None where the row names none)."""
    records = []
    rows = _csv_rows(path)
    for n, row in enumerate(rows[1:], 2):
        where = f"{path} line {n}"
        try:
            if len(row) != 1 + 2 * num_points:
                raise AnnotationError(f"{where}: expected {1 + 2 * num_points} columns, got {len(row)}")
            points = _check_points(np.array(_floats(row[1:], where)).reshape(num_points, 2), where, num_points)
        except AnnotationError as e:
            on_error(str(e), Path(image_dir) / row[0] if row else None)
            continue
        records.append(Record(Path(image_dir) / row[0], points, np.ones(num_points, np.float32)))
    return records


def write_ytf_csv(path: Path, records: list[Record]) -> None:
    k = len(records[0].points) if records else 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([""] + [str(i) for i in range(2 * k)])
        for r in records:
            w.writerow([r.name] + [repr(float(v)) for v in r.points.reshape(-1)])


def write_points_csv(path: Path, names: list[str], points: np.ndarray, scores: np.ndarray | None = None) -> None:
    """Predictions, one row per face: name, x0, y0, x1, y1, ... (pixels of the original image),
    then s0, s1, ... when per-point scores are given. points (N, K, 2), scores (N, K)."""
    k = points.shape[1]
    header = ["name"] + [f"{axis}{i}" for i in range(k) for axis in "xy"] + ([f"s{i}" for i in range(k)] if scores is not None else [])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for n, name in enumerate(names):
            extra = [f"{float(v):.4f}" for v in scores[n]] if scores is not None else []
            w.writerow([name] + [f"{float(v):.3f}" for v in points[n].reshape(-1)] + extra)


# --- Kaggle facial keypoints CSV: 30 coordinate columns (blank = missing) + "Image" ------------
KAGGLE_SIZE = 96


def read_kaggle_csv(path: Path, on_error=_raise) -> list[Record]:
    rows = _csv_rows(path)
    if not rows or "Image" not in rows[0]:
        raise AnnotationError(f"{path}: no 'Image' column in the header")
    header = rows[0]
    image_col = header.index("Image")
    coord_cols = [i for i, h in enumerate(header) if h.endswith("_x") or h.endswith("_y")]
    if not coord_cols or len(coord_cols) % 2:
        raise AnnotationError(f"{path}: header needs pairs of '<name>_x', '<name>_y' columns")
    k = len(coord_cols) // 2
    records = []
    for n, row in enumerate(rows[1:], 2):
        where = f"{path} line {n}"
        try:
            if len(row) != len(header):
                raise AnnotationError(f"{where}: expected {len(header)} columns, got {len(row)}")
            values = [math.nan if row[i].strip() == "" else _floats([row[i]], where)[0] for i in coord_cols]
            points = np.array(values, dtype=np.float32).reshape(k, 2)
            if np.isinf(points).any():
                raise AnnotationError(f"{where}: non-finite coordinates")
            image = _kaggle_image(row[image_col], where)
        except AnnotationError as e:
            on_error(str(e))
            continue
        visibility = np.isfinite(points).all(axis=1).astype(np.float32)
        records.append(Record(Path(path).parent / f"{Path(path).stem}_{n - 2}.png",
                              np.nan_to_num(points), visibility, pixels=image))
    return records


def write_kaggle_csv(path: Path, records: list[Record], point_names: tuple[str, ...]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"{name}_{axis}" for name in point_names for axis in "xy"] + ["Image"])
        for r in records:
            coords = [repr(float(v)) if vis else "" for (x, y), vis in zip(r.points, r.visibility) for v in (x, y)]
            w.writerow(coords + [" ".join(str(int(p)) for p in r.pixels.reshape(-1))])


def read_kaggle_test_csv(path: Path) -> list[tuple[int, np.ndarray]]:
    """The competition's test.csv: (ImageId, 96 x 96 uint8 pixels) per row."""
    return [(_image_id(row, f"{path} line {n}"), _kaggle_image(row["Image"], f"{path} line {n}"))
            for n, row in enumerate(_csv_records(path, ("ImageId", "Image")), 2)]


def _image_id(row: dict[str, str], where: str) -> int:
    try:
        return int(row["ImageId"])
    except ValueError:
        raise AnnotationError(f"{where}: ImageId {row['ImageId']!r} is not a whole number") from None


def write_kaggle_submission(path: Path, lookup: Path, points: dict[int, np.ndarray],
                            point_names: tuple[str, ...]) -> int:
    """The competition's submission (RowId, Location), driven by its IdLookupTable.csv (RowId,
    ImageId, FeatureName, Location): each row asks for one coordinate, e.g. `left_eye_center_x`,
    of one image; `points[image_id]` is that image's (K, 2) prediction in its pixels. Locations
    are clipped to the image, as the scorer expects. Returns the number of rows written."""
    columns = {f"{name}_{axis}": (k, a) for k, name in enumerate(point_names) for a, axis in enumerate("xy")}
    out = []
    for n, row in enumerate(_csv_records(lookup, ("RowId", "ImageId", "FeatureName")), 2):
        image_id, feature = _image_id(row, f"{lookup} line {n}"), row["FeatureName"]
        if feature not in columns:
            raise AnnotationError(f"{lookup} line {n}: unknown feature {feature!r}")
        if image_id not in points:
            raise AnnotationError(f"{lookup} line {n}: ImageId {image_id} is not in the test images")
        k, axis = columns[feature]
        out.append((row["RowId"], float(np.clip(points[image_id][k, axis], 0, KAGGLE_SIZE))))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["RowId", "Location"])
        writer.writerows((row_id, f"{location:.4f}") for row_id, location in out)
    return len(out)


# --- dlib XML (imglab): several boxes per image, parts named "00".."67" ------------------------
def read_dlib_xml(path: Path, num_points: int = 68) -> list[Record]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise AnnotationError(f"{path}: cannot parse XML ({e})") from None
    records = []
    for image in root.iter("image"):
        file = image.get("file")
        if not file:
            raise AnnotationError(f"{path}: <image> without a file attribute")
        for face, box in enumerate(image.iter("box")):  # ignored boxes keep their index
            if box.get("ignore") == "1":
                continue
            where = f"{path} image {file}"
            points = np.zeros((num_points, 2), np.float32)
            visibility = np.zeros(num_points, np.float32)
            for part in box.iter("part"):
                try:
                    i = int(part.get("name", ""))
                    xy = (float(part.get("x", "")), float(part.get("y", "")))
                except ValueError:
                    raise AnnotationError(f"{where}: malformed <part> {part.attrib}") from None
                if not 0 <= i < num_points:
                    raise AnnotationError(f"{where}: part index {i} outside 0..{num_points - 1}")
                points[i], visibility[i] = xy, 1.0
            try:
                top, left = float(box.get("top", "")), float(box.get("left", ""))
                width, height = float(box.get("width", "")), float(box.get("height", ""))
            except ValueError:
                raise AnnotationError(f"{where}: <box> needs numeric top/left/width/height") from None
            records.append(Record(Path(path).parent / file, _check_points(points, where, num_points), visibility,
                                  box=np.array([left, top, left + width, top + height], np.float32), face=face))
    return records


# --- WFLW annotation lines: 196 coordinates, 4 box values, 6 attributes, image name -------------
def read_wflw(path: Path, image_dir: Path, num_points: int = 98, on_error=_raise) -> list[Record]:
    records = []
    faces_seen: dict[str, int] = {}  # image name -> faces listed so far (one line per face)
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path} line {n}"
        face = faces_seen.get(fields[-1], 0)
        faces_seen[fields[-1]] = face + 1
        try:
            if len(fields) != 2 * num_points + 11:
                raise AnnotationError(f"{where}: expected {2 * num_points + 11} fields, got {len(fields)}")
            values = _floats(fields[: 2 * num_points + 4], where)
            points = _check_points(np.array(values[: 2 * num_points]).reshape(num_points, 2), where, num_points)
        except AnnotationError as e:
            on_error(str(e), Path(image_dir) / fields[-1])
            continue
        box = np.array(values[2 * num_points :], np.float32)  # x_min, y_min, x_max, y_max
        records.append(Record(Path(image_dir) / fields[-1], points, np.ones(num_points, np.float32), box=box, face=face))
    return records
