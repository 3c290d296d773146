"""Process-level settings for training and benchmarks: threads, seeds, device, allocator."""
from __future__ import annotations

import ctypes
import random

import numpy as np
import torch

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def tune_allocator() -> bool:
    """Keep freed memory in the heap instead of returning large blocks to the OS.

    glibc serves blocks over 32 MiB (a batch of 68 x 64 x 64 heatmaps is 36 MiB) with fresh
    mmaps, so each one page-faults on first touch: a heatmap encode ran 5x slower from that
    alone. Returns whether the setting took (only on glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def set_threads(threads: int) -> None:
    """torch intra-op threads; 0 keeps torch's default (all cores)."""
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def choose_device(name: str = "") -> torch.device:
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
