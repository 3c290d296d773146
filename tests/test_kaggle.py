"""Kaggle facial keypoints: the submission writer in the competition's RowId/Location format,
driven by its IdLookupTable, on fixture files in the competition's formats."""
import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import in_process, one_line_error, settings_for
from heatnet.formats import AnnotationError, Record, write_kaggle_csv, write_kaggle_submission
from heatnet.schemes import KAGGLE15
from heatnet.training import train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"


def _lookup(path: Path, rows: list[tuple[int, str]]) -> None:
    """An IdLookupTable.csv: RowId, ImageId, FeatureName, Location (empty, as the competition's)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["RowId", "ImageId", "FeatureName", "Location"])
        writer.writerows((row_id, image_id, feature, "") for row_id, (image_id, feature) in enumerate(rows, 1))


def test_the_submission_follows_the_lookup_table(tmp_path):
    points = {1: np.arange(30, dtype=float).reshape(15, 2), 2: np.full((15, 2), 100.0)}  # image 2: off the image
    _lookup(tmp_path / "lookup.csv", [(1, "left_eye_center_x"), (1, "left_eye_center_y"), (1, "nose_tip_y"),
                                      (2, "mouth_center_bottom_lip_x"), (2, "right_eye_center_y")])
    assert write_kaggle_submission(tmp_path / "sub.csv", tmp_path / "lookup.csv", points, KAGGLE15.point_names) == 5
    rows = list(csv.reader(open(tmp_path / "sub.csv")))
    assert rows[0] == ["RowId", "Location"]
    assert [(r[0], float(r[1])) for r in rows[1:]] == [("1", 0.0), ("2", 1.0), ("3", 21.0), ("4", 96.0), ("5", 96.0)]
    _lookup(tmp_path / "bad.csv", [(1, "left_ear_x")])
    with pytest.raises(AnnotationError, match="unknown feature 'left_ear_x'"):
        write_kaggle_submission(tmp_path / "sub.csv", tmp_path / "bad.csv", points, KAGGLE15.point_names)
    _lookup(tmp_path / "missing.csv", [(7, "nose_tip_x")])
    with pytest.raises(AnnotationError, match="ImageId 7 is not in the test images"):
        write_kaggle_submission(tmp_path / "sub.csv", tmp_path / "missing.csv", points, KAGGLE15.point_names)


def test_a_model_trained_on_kaggle_csv_writes_a_submission(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "kaggle").mkdir()
    mean_face = rng.uniform(25, 70, (15, 2))
    records = []
    for i in range(24):  # some rows miss points, as most of the competition's do: masked, not imputed
        visibility = np.ones(15, np.float32) if i % 3 else (np.arange(15) < 4).astype(np.float32)
        records.append(Record(Path(f"{i}.png"), (mean_face + rng.normal(0, 2, (15, 2))).astype(np.float32), visibility,
                              pixels=rng.integers(0, 255, (96, 96)).astype(np.uint8)))
    write_kaggle_csv(tmp_path / "kaggle/training.csv", records, KAGGLE15.point_names)
    with open(tmp_path / "test.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "Image"])
        for image_id in (1, 2, 3):
            writer.writerow([image_id, " ".join(map(str, rng.integers(0, 255, 96 * 96)))])
    _lookup(tmp_path / "IdLookupTable.csv", [(1, f"{name}_{axis}") for name in KAGGLE15.point_names for axis in "xy"]
            + [(2, "nose_tip_x"), (3, "mouth_left_corner_y")])
    train(UNET_KL, settings_for(UNET_KL, [f"--data_root={tmp_path}", "--dataset=kaggle", "--input_size=64",
                                            "--channels=1", "--batch_size=8", "--epochs=1", "--workers=0",
                                            "--log_images=1"]), run_dir=tmp_path / "run", progress=False)
    out = in_process("tools/kaggle_submission.py", str(tmp_path / "run/best.pt"), "--test", str(tmp_path / "test.csv"),
                     "--lookup", str(tmp_path / "IdLookupTable.csv"), "--out", str(tmp_path / "submission.csv"))
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(open(tmp_path / "submission.csv")))
    assert rows[0] == ["RowId", "Location"] and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 33)]
    assert all(0 <= float(r[1]) <= 96 for r in rows[1:])
    one_line_error(in_process("tools/kaggle_submission.py", str(ROOT / "heatnet/assets/heatnet_300w_68.pt"), "--test",
                              str(tmp_path / "test.csv"), "--lookup", str(tmp_path / "IdLookupTable.csv"), "--out",
                              str(tmp_path / "s.csv")), "not the 15 Kaggle points")


def test_complete_only_drops_the_rows_with_missing_points(tmp_path):
    from dataclasses import replace

    from heatnet.config import ConfigError, Settings
    from heatnet.loading import make_dataset

    rng = np.random.default_rng(1)
    (tmp_path / "kaggle").mkdir()
    records = [Record(Path(f"{i}.png"), rng.uniform(20, 70, (15, 2)).astype(np.float32),
                      np.ones(15, np.float32) if i % 3 == 0 else (np.arange(15) < 4).astype(np.float32),
                      pixels=rng.integers(0, 255, (96, 96)).astype(np.uint8)) for i in range(30)]
    write_kaggle_csv(tmp_path / "kaggle/training.csv", records, KAGGLE15.point_names)
    s = Settings(dataset="kaggle", data_root=str(tmp_path), input_size=32)
    every, complete = make_dataset(s, "train"), make_dataset(s, "train", complete_only=True)
    assert len(every) == 24 and len(complete) == 8  # rows 0..29 with i % 10 < 8; every third complete
    assert all(complete[i]["visibility"].all() for i in range(len(complete)))
    with pytest.raises(ConfigError, match="synthetic/val has no missing labels"):
        make_dataset(replace(s, dataset="synthetic"), "val", complete_only=True)


def test_300w_as_kaggle15_has_kaggles_missing_labels(data_root):
    from heatnet.datasets import KAGGLE_SPARSE_POINTS, load_split

    train_faces, test_faces = load_split("300w_kaggle15", "train", data_root), load_split("300w_kaggle15", "test", data_root)
    full = load_split("300w", "train", data_root)
    visible = np.array([r.visibility for r in train_faces.records])
    sparse = visible.sum(1) == 4
    assert 0.6 < sparse.mean() < 0.8 and (visible[sparse][:, list(KAGGLE_SPARSE_POINTS)] == 1).all()
    assert all(r.visibility.all() for r in test_faces.records)  # scored on every point
    face, ibug = train_faces[0], full[0]
    np.testing.assert_allclose(face.points[3], ibug.points[45])  # left eye outer corner: the person's left
    np.testing.assert_allclose(face.points[0], ibug.points[42:48].mean(0), rtol=1e-6)
    assert face.normaliser == pytest.approx(ibug.normaliser)  # inter-ocular from the full 68 points
