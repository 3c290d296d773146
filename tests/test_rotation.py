"""Roll robustness: turned photos carry their points, and the pipeline finds and locates the faces
of lfpw photos turned upside down as well as upright, where the network alone (the ground-truth
crop as training cut it) fails."""
import json

import numpy as np
import pytest

from conftest import in_process
from heatnet.datasets import load_split
from heatnet.geometry import roll_degrees
from heatnet.rotation import Turned, roll_robustness


def test_a_turned_source_turns_points_with_pixels_and_keeps_the_normaliser(data_root):
    source = load_split("300w", "test", data_root)
    upright, turned = source[0], Turned(source, 90)[0]
    assert turned.image.shape[:2] == upright.image.shape[1::-1] and turned.normaliser == upright.normaliser
    np.testing.assert_allclose(roll_degrees(turned.points.astype(np.float64), (36, 45)),
                               roll_degrees(upright.points.astype(np.float64), (36, 45)) + 90, atol=1e-3)
    # a point's pixel goes where its coordinates go: the eye corner's colour is the same
    x, y = np.round(upright.points[36]).astype(int)
    tx, ty = np.round(turned.points[36]).astype(int)
    np.testing.assert_array_equal(turned.image[ty, tx], upright.image[y, x])


def test_upside_down_faces_are_found_and_located_as_upright_ones(data_root):
    import heatnet

    predictor = heatnet.load_pretrained("fast", threads=1)
    rows = roll_robustness(predictor, load_split("300w", "test", data_root), (0, 180), limit=6)
    upright, upside_down = rows
    assert upright["found"] == upside_down["found"] == upright["kept"] == upside_down["kept"] == 6
    assert upright["nme_%"] < 5 and abs(upside_down["nme_%"] - upright["nme_%"]) < 0.3
    assert upside_down["kept_wrong"] == 0 and upside_down["other_detections_kept"] == 0
    assert upside_down["ground_truth_crop_nme_%"] > 50 > 5 > upright["ground_truth_crop_nme_%"]


def test_evaluate_rotations_writes_its_table(data_root, tmp_path):
    out = in_process("tools/evaluate.py", "fast", "--dataset", "300w", "--split", "test", "--data-root", str(data_root),
                     "--rotations", "90", "--limit", "2", "--out", str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "roll_robustness.json").read_text())["rows"]
    assert [r["angle_deg"] for r in rows] == [90.0] and rows[0]["found"] == 2 and rows[0]["nme_%"] < 6
    assert "| 90.0 | 2 / 2 |" in out.stdout
