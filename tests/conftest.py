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
