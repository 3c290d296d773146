import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heatnet.formats import write_pts

torch.set_num_threads(2)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Real datasets: $HEATNET_DATA, else ../shared/datasets (present in CI)."""
    root = Path(os.environ.get("HEATNET_DATA", SHARED))
    if not (root / "300w").is_dir():
        pytest.skip(f"real datasets not found at {root}")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def max_relative_difference(ours: dict, theirs: dict) -> float:
    """Largest |a - b| / max|b| over the floating-point tensors of two state dicts."""
    return max(float((ours[k].double() - v.double()).abs().max() / v.double().abs().max().clamp_min(1e-12))
               for k, v in theirs.items() if v.is_floating_point())


def _face_points(rng, w=200, h=200):
    return np.column_stack([rng.uniform(0.2 * w, 0.8 * w, 68), rng.uniform(0.2 * h, 0.8 * h, 68)])


@pytest.fixture
def w300_root(tmp_path):
    """A small 300-W layout: 4 good faces in afw, helen/trainset and lfpw/trainset (train)."""
    rng = np.random.default_rng(0)
    for folder in ("afw", "helen/trainset", "lfpw/trainset", "lfpw/testset"):
        (tmp_path / "300w" / folder).mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(tmp_path / "300w/afw" / f"good{i}.jpg"), rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
        write_pts(tmp_path / "300w/afw" / f"good{i}.pts", _face_points(rng))
    return tmp_path


def add_300w_face(root: Path, name: str, pts_text: str | None = None, image: bytes | None = None, folder="helen/trainset"):
    """A face in a 300-W layout: its .pts (given text, or random points) and its image (given
    bytes; None: a random 200 x 200 JPEG; b"": none)."""
    rng = np.random.default_rng(1)
    if pts_text is None:
        write_pts(root / "300w" / folder / f"{name}.pts", _face_points(rng))
    else:
        (root / "300w" / folder / f"{name}.pts").write_text(pts_text)
    if image is None:
        cv2.imwrite(str(root / "300w" / folder / f"{name}.jpg"), rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    elif image != b"":
        (root / "300w" / folder / f"{name}.jpg").write_bytes(image)
