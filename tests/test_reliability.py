"""Bad input gets a clear error naming the file, or is skipped with a counted warning."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heatnet.checkpoint import CheckpointError, check_compatible, load_checkpoint, save_atomic
from heatnet.datasets import DatasetError, load_split
from heatnet.files import SaveError
from heatnet.formats import (AnnotationError, read_asf, read_dlib_xml, read_kaggle_csv, read_pts, read_wflw,
                             read_ytf_csv)
from heatnet.schemes import IBUG68, IMM58

from conftest import add_300w_face as _add
from conftest import in_process

ROOT = Path(__file__).resolve().parents[1]


GOOD_68 = "\n".join(f"{50 + i} {60 + i}" for i in range(68))
PROBLEMS = {  # name -> (pts text, image bytes (None: a good image, b"": no image), message)
    "missing_image": (None, b"", "no image beside it"),
    "corrupt_image": (None, b"\xff\xd8 definitely not a jpeg", "cannot read image"),
    "malformed": ("version: 1\n{\n1 2 3\n}\n", None, "expected 'x y'"),
    "unreadable": (b"\xff\xfe\x00bad".decode("latin1"), None, "malformed"),
    "wrong_count": ("\n".join(["10 10"] * 67), None, "expected 68 points, found 67"),
    "non_finite": (GOOD_68.replace("50 60", "inf 60"), None, "non-finite"),
    "outside": ("\n".join(f"{5000 + i} {60}" for i in range(68)), None, "outside the 200 x 200 image"),
    "tiny_image": (GOOD_68, "tiny", "smaller than 8 px"),
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_bad_sample_is_skipped_with_a_count_or_fails_when_strict(w300_root, problem):
    text, image, message = PROBLEMS[problem]
    if image == "tiny":
        image = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    _add(w300_root, problem, text, image)
    if problem == "unreadable":
        (w300_root / "300w/helen/trainset/unreadable.pts").write_bytes(b"\xff\xfe\x00\x81bad")
        message = "unreadable.pts"
    with pytest.warns(UserWarning, match=r"skipped 1 bad sample"):
        source = load_split("300w", "trainval", w300_root)
    assert len(source) == 4
    with pytest.raises(DatasetError, match=f"{problem}.*" if problem != "unreadable" else "unreadable.pts"):
        load_split("300w", "trainval", w300_root, strict=True)
    try:
        load_split("300w", "trainval", w300_root, strict=True)
    except DatasetError as e:
        assert message.split(".")[0] in str(e)


def test_same_file_name_in_two_folders_is_two_samples(w300_root):
    _add(w300_root, "good0", folder="lfpw/trainset")
    assert len(load_split("300w", "trainval", w300_root)) == 5


def test_a_face_listed_twice_is_skipped_once(tmp_path):
    (tmp_path / "dlib").mkdir()
    cv2.imwrite(str(tmp_path / "dlib/a.jpg"), np.zeros((120, 100, 3), np.uint8))
    parts = "".join(f"<part name='{i:02d}' x='{20 + i % 60}' y='{30 + i % 50}'/>" for i in range(68))
    image = f"<image file='a.jpg'><box top='1' left='2' width='90' height='90'>{parts}</box></image>"
    (tmp_path / "dlib/labels_ibug_300W_test.xml").write_text(f"<dataset><images>{image}{image}</images></dataset>")
    with pytest.warns(UserWarning, match="skipped 1 bad sample.*a.jpg: face 0 is listed twice"):
        assert len(load_split("dlib", "test", tmp_path)) == 1


def test_empty_split_missing_root_wrong_name(tmp_path, w300_root):
    with pytest.raises(DatasetError, match="no usable samples"):
        load_split("300w", "test", w300_root)
    with pytest.raises(DatasetError, match="not a folder"):
        load_split("300w", "train", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="unknown dataset '300W'; choose one of: synthetic, ytf68, 300w"):
        load_split("300W", "train", w300_root)
    with pytest.raises(DatasetError, match="no split 'nope'"):
        load_split("300w", "nope", w300_root)


def test_missing_data_root_says_what_to_do(monkeypatch):
    monkeypatch.delenv("HEATNET_DATA", raising=False)
    with pytest.raises(DatasetError, match="--data-root PATH or set HEATNET_DATA"):
        load_split("300w", "train")


@pytest.mark.parametrize("args,message", [
    (["experiments/unet_kl.py", "--lr_max=1"], "unknown setting --lr_max for experiment experiments.unet_kl; its method reads --architecture, --decoder"),
    (["experiments/unet_kl.py", "--epochs=ten"], "--epochs expects int"),
    (["experiments/nope.py"], "experiments/nope.py not found"),
    (["experiments/unet_kl.py", "--dataset", "celeb"], "unknown dataset 'celeb'"),
    (["experiments/unet_kl.py", "--dataset", "300w", "--data-root", "/nowhere"], "data root /nowhere is not a folder"),
])
def test_train_tool_config_errors_fail_fast(args, message):
    out = in_process("tools/train.py", *args, "--run-dir", "/tmp/heatnet_never")  # main() as the command line runs it
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not Path("/tmp/heatnet_never").exists()


def test_a_config_error_from_the_command_line_is_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "tools/train.py", "experiments/unet_kl.py", "--sigmaa=2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        out.stderr.strip().splitlines()[-1]] and "error: unknown setting --sigmaa" in out.stderr


# --- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_mismatch_and_unsafe_content(tmp_path):
    state = {"model": {"w": torch.zeros(2)}, "scheme": "imm58", "num_points": 58, "experiment": {}}
    save_atomic(state, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="trained for 58 points \\(imm58\\), but the data uses 68 \\(ibug68\\)"):
        check_compatible(load_checkpoint(tmp_path / "a.pt"), IBUG68, tmp_path / "a.pt")
    check_compatible(load_checkpoint(tmp_path / "a.pt"), IMM58)

    class Payload:  # anything that is not tensors and plain values must not load
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": {}, "scheme": "ibug68", "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: not a heatnet checkpoint: it holds Python objects"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "half.pt").write_bytes((tmp_path / "a.pt").read_bytes()[:100])
    with pytest.raises(CheckpointError, match="half.pt"):
        load_checkpoint(tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_atomic_save_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    save_atomic({"model": {}, "scheme": "ibug68", "num_points": 68, "experiment": {}, "v": 1}, tmp_path / "c.pt")

    def broken_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("heatnet.files.os.fsync", broken_fsync)
    with pytest.raises(SaveError, match="could not write .*c.pt \\(No space left on device\\)"):
        save_atomic({"model": {}, "scheme": "ibug68", "num_points": 68, "v": 2}, tmp_path / "c.pt")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "c.pt")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # the temporary file is gone


# --- property-based: readers raise AnnotationError and nothing else -------------------------------
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789 .,-+e\n\t{}xyabnaninf<>/='\"_#")), max_size=400),
    st.binary(max_size=200).map(lambda b: b.decode("latin1")),
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="latin1" if any(ord(c) > 127 for c in text) else "utf-8")
    return path


@FUZZ
@given(text=TEXT)
def test_pts_reader_fuzz(tmp_path, text):
    try:
        read_pts(_write(tmp_path, "f.pts", text), 68)
    except AnnotationError:
        pass


@FUZZ
@given(text=TEXT)
def test_asf_reader_fuzz(tmp_path, text):
    try:
        read_asf(_write(tmp_path, "f.asf", text), image_size=(640, 480))
    except AnnotationError:
        pass


@FUZZ
@given(text=TEXT, header=st.booleans())
def test_csv_readers_fuzz(tmp_path, text, header):
    prefix = "left_x,left_y,Image\n" if header else ""
    for reader in (lambda p: read_ytf_csv(p, tmp_path, 2), read_kaggle_csv):
        try:
            reader(_write(tmp_path, "f.csv", prefix + text))
        except AnnotationError:
            pass


@FUZZ
@given(text=TEXT, wrap=st.booleans())
def test_xml_and_wflw_readers_fuzz(tmp_path, text, wrap):
    body = f"<dataset><images><image file='a.jpg'><box top='1' left='2' width='3' height='4'>{text}</box></image></images></dataset>" if wrap else text
    try:
        read_dlib_xml(_write(tmp_path, "f.xml", body))
    except AnnotationError:
        pass
    try:
        read_wflw(_write(tmp_path, "f.txt", text), tmp_path, num_points=2)
    except AnnotationError:
        pass
