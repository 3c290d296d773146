
import numpy as np
import pytest

from heatnet.formats import (AnnotationError, Record, read_asf, read_dlib_xml, read_kaggle_csv, read_pts,
                             read_wflw, read_ytf_csv, write_kaggle_csv, write_pts, write_ytf_csv)
from heatnet.schemes import KAGGLE15


def test_pts_is_one_based_with_and_without_header(tmp_path):
    (tmp_path / "h.pts").write_text("version: 1\nn_points: 2\n{\n1 1\n10.5 20.25\n}\n")
    (tmp_path / "n.pts").write_text("1 1\n10.5 20.25\n")
    for name in ("h.pts", "n.pts"):
        np.testing.assert_allclose(read_pts(tmp_path / name), [[0, 0], [9.5, 19.25]])


def test_pts_write_then_read(tmp_path, rng):
    points = rng.uniform(0, 300, (68, 2)).astype(np.float32)
    write_pts(tmp_path / "a.pts", points)
    first = (tmp_path / "a.pts").read_text().splitlines()[3]  # after version, n_points, "{"
    np.testing.assert_allclose([float(v) for v in first.split()], points[0] + 1, atol=1e-3)  # 1-based on disk
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts", 68), points, atol=1e-3)


def test_pts_errors_name_the_file(tmp_path):
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 2\n{\n1 x\n2 2\n}\n")
    with pytest.raises(AnnotationError, match="bad.pts"):
        read_pts(tmp_path / "bad.pts")
    (tmp_path / "short.pts").write_text("1 1\n2 2\n")
    with pytest.raises(AnnotationError, match="expected 68 points, found 2"):
        read_pts(tmp_path / "short.pts", 68)
    (tmp_path / "nan.pts").write_text("1 1\nnan 2\n")
    with pytest.raises(AnnotationError, match="non-finite"):
        read_pts(tmp_path / "nan.pts")


def _asf_text(rel_points, image="face.jpg") -> str:
    lines = ["# comment", str(len(rel_points))]
    lines += [f"0 0 {x} {y} {i} {i} {i}" for i, (x, y) in enumerate(rel_points)]
    return "\n".join(lines + ["# host image", image, ""])


def test_asf_relative_coordinates(tmp_path):
    (tmp_path / "a.asf").write_text(_asf_text([(0.5, 0.25), (0.0, 1.0)]))
    points, image = read_asf(tmp_path / "a.asf", image_size=(640, 480))
    assert image == "face.jpg"
    np.testing.assert_allclose(points, [[320, 120], [0, 480]])


def test_ytf_csv_write_then_read(tmp_path, rng):
    records = [Record(tmp_path / f"{i}.jpg", rng.uniform(0, 200, (68, 2)).astype(np.float32), np.ones(68, np.float32))
               for i in range(3)]
    write_ytf_csv(tmp_path / "k.csv", records)
    back = read_ytf_csv(tmp_path / "k.csv", tmp_path)
    assert [r.name for r in back] == ["0.jpg", "1.jpg", "2.jpg"]
    for a, b in zip(records, back):
        np.testing.assert_array_equal(a.points, b.points)


def test_kaggle_blanks_are_invisible_and_round_trip(tmp_path, rng):
    pixels = rng.integers(0, 256, (96, 96)).astype(np.uint8)
    points = rng.uniform(0, 95, (15, 2)).astype(np.float32)
    visibility = np.ones(15, np.float32)
    visibility[[3, 7]] = 0
    write_kaggle_csv(tmp_path / "t.csv", [Record(tmp_path / "x.png", points, visibility, pixels=pixels)],
                     KAGGLE15.point_names)
    (back,) = read_kaggle_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(back.visibility, visibility)
    np.testing.assert_allclose(back.points[visibility > 0], points[visibility > 0])
    np.testing.assert_array_equal(back.pixels, pixels)


def test_dlib_xml_several_faces_per_image(tmp_path):
    parts = "".join(f"<part name='{i:02d}' x='{i}' y='{2 * i}'/>" for i in range(68))
    (tmp_path / "l.xml").write_text(
        f"<dataset><images><image file='a.jpg'><box top='1' left='2' width='30' height='40'>{parts}</box>"
        f"<box top='5' left='6' width='7' height='8'>{parts}</box></image>"
        f"<image file='b.jpg'><box top='0' left='0' width='1' height='1' ignore='1'/></image></images></dataset>")
    records = read_dlib_xml(tmp_path / "l.xml")
    assert len(records) == 2 and records[0].image_path == tmp_path / "a.jpg"
    np.testing.assert_allclose(records[0].points[10], [10, 20])
    np.testing.assert_allclose(records[1].box, [6, 5, 13, 13])


def test_wflw_line(tmp_path):
    coords = " ".join(f"{i}.5 {i}.25" for i in range(98))
    (tmp_path / "w.txt").write_text(f"{coords} 1 2 30 40 0 0 0 0 0 0 folder/img.jpg\n")
    (r,) = read_wflw(tmp_path / "w.txt", tmp_path)
    assert r.image_path == tmp_path / "folder/img.jpg"
    np.testing.assert_allclose(r.points[3], [3.5, 3.25])


# --- the real sets, every file ------------------------------------------------------------------
def test_reads_every_real_300w_file(data_root):
    files = sorted((data_root / "300w").rglob("*.pts"))
    assert len(files) == 337 + 870 + 805 + 224
    for f in files:
        assert read_pts(f, 68).shape == (68, 2)


def test_real_300w_pts_value_pinned(data_root):
    # first line of afw/1051618982_1.pts is "97.233 131.186" (1-based)
    np.testing.assert_allclose(read_pts(data_root / "300w/afw/1051618982_1.pts")[0], [96.233, 130.186], atol=1e-4)


def test_reads_every_real_imm_file(data_root):
    files = sorted((data_root / "imm").glob("*.asf"))
    assert len(files) == 240
    for f in files:
        points, image = read_asf(f)
        assert points.shape == (58, 2) and (f.parent / image).is_file()
    # 01-1m.asf point 0 is (0.35763609, 0.64077979) of a 640 x 480 image
    np.testing.assert_allclose(read_asf(data_root / "imm/01-1m.asf")[0][0], [0.35763609 * 640, 0.64077979 * 480])


def test_reads_every_real_ytf68_row(data_root):
    train = read_ytf_csv(data_root / "ytf68/training_frames_keypoints.csv", data_root / "ytf68/training")
    test = read_ytf_csv(data_root / "ytf68/test_frames_keypoints.csv", data_root / "ytf68/test")
    assert (len(train), len(test)) == (3462, 770)
    assert all(r.points.shape == (68, 2) and r.image_path.is_file() for r in train + test)


def test_a_byte_order_mark_is_ignored_in_pts_and_csv(tmp_path, rng):
    points = rng.uniform(0, 100, (68, 2))
    write_pts(tmp_path / "a.pts", points)
    (tmp_path / "bom.pts").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "a.pts").read_bytes().replace(b"\n", b"\r\n"))
    np.testing.assert_allclose(read_pts(tmp_path / "bom.pts", 68), points, atol=1e-3)
    write_ytf_csv(tmp_path / "a.csv", [Record(tmp_path / "f.jpg", points.astype(np.float32), np.ones(68, np.float32))])
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "a.csv").read_bytes())
    (record,) = read_ytf_csv(tmp_path / "bom.csv", tmp_path)
    assert record.image_path.name == "f.jpg"
    np.testing.assert_allclose(record.points, points, atol=1e-4)
