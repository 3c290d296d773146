"""Process-level settings for training and benchmarks: threads, seeds and random states,
device, numeric precision, allocator; and onnxruntime sessions over exported graphs kept between runs."""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch

from heatnet.errors import ConfigError
from heatnet.files import cache_folder, write_atomic

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


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a CUDA device (timings); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global generator training may touch (Python, NumPy, torch CPU and CUDA), as plain
    values and tensors a weights-only checkpoint can hold."""
    numpy_state = np.random.get_state(legacy=False)
    return {"python": random.getstate(),
            "numpy_key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "numpy_pos": numpy_state["state"]["pos"], "numpy_gauss": (numpy_state["has_gauss"], numpy_state["gauss"]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": state["numpy_key"].numpy().astype(np.uint32), "pos": state["numpy_pos"]},
                         "has_gauss": state["numpy_gauss"][0], "gauss": state["numpy_gauss"][1]})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def choose_device(name: str = "") -> torch.device:
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device={name} asked for, but CUDA is not available here (use --device=cpu)")
        try:
            return torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device={name} is not a device (cpu, cuda, cuda:1, ...)") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Precision:
    """One mixed-precision policy for training and evaluation: float32 on CPU; on CUDA bf16
    autocast where the GPU supports it, else float16 autocast with a gradient scaler."""

    device_type: str
    dtype: torch.dtype | None  # None: plain float32

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A scaler for float16 (its range is too small for raw gradients); None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.dtype is torch.float16 else None


def choose_precision(device: torch.device, amp: bool) -> Precision:
    if not amp or device.type != "cuda":
        return Precision(device.type, None)
    return Precision(device.type, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def kept_graph(source: Path | None, export: Callable[[BinaryIO], None]) -> bytes:
    """The ONNX graph that `export` writes to a stream. For a `source` file (a checkpoint, a
    detector's weights) it is exported once and kept in cache_folder() under the hash of the
    file's bytes and the torch version, so later runs start at once; an unwritable cache only
    costs the export again."""
    if source is not None:
        key = hashlib.sha256(Path(source).read_bytes() + torch.__version__.encode()).hexdigest()[:24]
        cached = cache_folder() / f"{key}.onnx"
        if cached.is_file():
            return cached.read_bytes()
    graph = io.BytesIO()
    export(graph)
    if source is not None:
        try:
            write_atomic(cached, graph.getvalue())
        except OSError as e:
            warnings.warn(f"cannot keep the exported graph in {cached.parent} ({e}); it is exported again next time")
    return graph.getvalue()


def cpu_session(graph: bytes, threads: int = 0):
    """An onnxruntime CPU session over an ONNX graph, `threads` intra-op threads (0: onnxruntime's
    choice). No busy-waiting between runs: torch's own threads (cropping, mapping back) need the
    cores then. ImportError without onnxruntime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
