import os
from pathlib import Path

import numpy as np
import pytest
import torch

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
