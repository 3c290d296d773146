"""Deployable forms of a trained model: ONNX and TorchScript graphs that take face crops and
return points and scores (the decoder inside the graph), and a slim float16 heatnet checkpoint.

    graph input  "images": (B, C, S, S) float32 in [0, 1], crops made as heatnet.predict makes them
    graph outputs "points": (B, K, 2) crop pixels (pixel centres at integers), "scores": (B, K)
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from heatnet.checkpoint import save_atomic
from heatnet.config import Settings
from heatnet.method import Method
from heatnet.files import write_atomic
from heatnet.runtime import cpu_session, kept_graph


class PointsModel(nn.Module):
    """A method's model and decoder as one module: crops -> (points, scores)."""

    def __init__(self, method: Method):
        super().__init__()
        self.model, self.loss = method.model, method.loss  # registered, so .eval(), .float(), .cpu() reach them
        self.method = method

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.method.decode(self.model(images))


def example_input(settings: Settings, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, settings.channels, settings.input_size, settings.input_size)


def export_onnx(method: Method, settings: Settings, path: Path | BinaryIO) -> None:
    """ONNX graph with a dynamic batch dimension (opset 17), to a binary stream, or to a file
    written atomically (its folder made if missing)."""
    if not hasattr(path, "write"):
        graph = io.BytesIO()
        export_onnx(method, settings, graph)
        write_atomic(Path(path), graph.getbuffer())
        return
    module = PointsModel(method).eval().float().cpu()
    with torch.no_grad():
        torch.onnx.export(module, (example_input(settings),), path, input_names=["images"],
                          output_names=["points", "scores"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "points": {0: "batch"}, "scores": {0: "batch"}})


def onnx_graph(method: Method, settings: Settings, checkpoint: Path | None = None) -> bytes:
    """The method's ONNX graph (export_onnx); a checkpoint's is exported once and kept
    (heatnet.runtime.kept_graph)."""
    return kept_graph(checkpoint, lambda stream: export_onnx(method, settings, stream))


def onnx_session(method: Method, settings: Settings, checkpoint: Path | None = None, threads: int = 0):
    """An onnxruntime CPU session over the method's graph (heatnet.runtime.cpu_session)."""
    return cpu_session(onnx_graph(method, settings, checkpoint), threads)


def export_torchscript(method: Method, settings: Settings, path: Path) -> None:
    """A traced TorchScript module: `torch.jit.load(path)(images) -> (points, scores)`; written
    atomically, its folder made if missing."""
    module = PointsModel(method).eval().float().cpu()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated for torch.export, still supported
        traced = torch.jit.trace(module, (example_input(settings),), check_trace=False)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(traced, buffer)
    write_atomic(Path(path), buffer.getbuffer())


def slim_checkpoint(state: dict, path: Path) -> None:
    """The checkpoint without training state, its floating-point weights stored as float16 (half
    the size; they load back into float32 models). tools/evaluate.py and heatnet.predict read it."""
    slim = {key: value for key, value in state.items() if key != "training"}
    slim["model"] = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in state["model"].items()}
    save_atomic(slim, path)
