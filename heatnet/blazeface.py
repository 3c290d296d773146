"""BlazeFace (Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond Neural Face Detection on Mobile
GPUs"), MediaPipe's face detector, run in PyTorch from its own weights, short range or full range.

    boxes, scores, keypoints = BlazeFace()(image)  # (N, 4) x0, y0, x1, y1 pixels, (N,) face
                                                   # probabilities, (N, 6, 2) the eyes, nose tip,
                                                   # mouth centre and ear tragions
    BlazeFace(FULL_RANGE)(image)                   # smaller faces, farther away

Short range: the photo is fitted into 128 x 128 (aspect kept, centred, black borders), one network
pass scores 896 SSD anchors (2 per cell of a 16 x 16 grid, 6 per cell of 8 x 8) and regresses a box
and six keypoints for each; trained on faces that fill much of the frame (selfie distance). Full
range: 192 x 192, 2304 anchors (one per cell of 48 x 48), for faces up to about 5 m from the
camera. Anchors scoring >= `min_score` are merged by MediaPipe's weighted NMS (overlapping
detections averaged by score); heatnet.detect.BlazeFaceDetector documents what each finds on the
benchmarks.

The networks are the graphs of face_detection_short_range.tflite and
face_detection_full_range_sparse.tflite from MediaPipe 0.10.21 (Apache-2.0:
heatnet/assets/BLAZEFACE_LICENSE.txt), converted by tools/convert_blazeface.py into lists of
layers that `LayerList` runs: convolutions with TensorFlow's SAME padding, ReLU, additions,
paddings, max pooling, bilinear upsampling, depth-to-space, and the reshapes to anchors.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heatnet.runtime import cpu_session, kept_graph

ASSETS = Path(__file__).parent / "assets"


@dataclass(frozen=True)
class Variant:
    """One of MediaPipe's BlazeFace models: its converted weights, input side, anchor grids
    ((cells per side, anchors per cell), in the network's output order) and MediaPipe's score
    threshold for it."""

    weights: Path
    input_size: int
    grids: tuple[tuple[int, int], ...]
    min_score: float


SHORT_RANGE = Variant(ASSETS / "blazeface_short_range.pt", 128, ((16, 2), (8, 6)), 0.5)
FULL_RANGE = Variant(ASSETS / "blazeface_full_range.pt", 192, ((48, 1),), 0.6)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one axis: the extra pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class LayerList(nn.Module):
    """A converted .tflite graph (tools/convert_blazeface.py) as a PyTorch module: NCHW inside,
    `to_anchors` permutes to TensorFlow's NHWC before flattening, so the anchor order is the
    graph's. forward(images (B, 3, 128, 128) in [-1, 1]) -> dict of the graph's outputs."""

    def __init__(self, state: dict):
        super().__init__()
        self.layers, self.input, self.outputs = state["layers"], state["input"], state["outputs"]
        self.convs = nn.ModuleDict()
        for layer in self.layers:
            if layer["kind"] == "conv":
                weight = layer["weight"].float()
                conv = nn.Conv2d(weight.shape[1] * (weight.shape[0] if layer["depthwise"] else 1), weight.shape[0],
                                 weight.shape[-1], layer["stride"], groups=weight.shape[0] if layer["depthwise"] else 1)
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(layer["bias"].float())
                self.convs[layer["output"]] = conv

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        values = {self.input: images}
        for layer in self.layers:
            x = [values[name] for name in layer["inputs"]]
            kind = layer["kind"]
            if kind == "conv":
                conv = self.convs[layer["output"]]
                if layer["same"]:
                    k, s = conv.kernel_size[0], conv.stride[0]
                    x[0] = F.pad(x[0], (*_same_padding(x[0].shape[-1], k, s), *_same_padding(x[0].shape[-2], k, s)))
                out = conv(x[0])
            elif kind == "relu":
                out = F.relu(x[0])
            elif kind == "add":
                out = x[0] + x[1]
            elif kind == "pad_channels":
                out = F.pad(x[0], (0, 0, 0, 0, 0, layer["after"]))
            elif kind == "pad":  # left, right, top, bottom, channels before, after
                out = F.pad(x[0], layer["pads"])
            elif kind == "resize_bilinear":  # TensorFlow's half-pixel centres
                out = F.interpolate(x[0], size=tuple(layer["size"]), mode="bilinear", align_corners=False)
            elif kind == "depth_to_space":  # TensorFlow's channel order: (row in block, column in block, channel)
                b, (n, c, h, w) = layer["block"], x[0].shape
                out = x[0].view(n, b, b, c // b ** 2, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c // b ** 2, h * b, w * b)
            elif kind == "max_pool":
                out = F.max_pool2d(x[0], layer["size"], layer["stride"])
            elif kind == "to_anchors":  # (B, A * V, H, W) -> (B, H * W * A, V), in NHWC order
                out = x[0].permute(0, 2, 3, 1).reshape(x[0].shape[0], -1, layer["values"])
            elif kind == "concatenation":
                out = torch.cat(x, dim=1)
            else:
                raise ValueError(f"unknown layer kind {kind!r}")
            values[layer["output"]] = F.relu(out) if layer.get("relu") else out  # a fused activation
        return {key: values[name] for key, name in self.outputs.items()}


class _Outputs(nn.Module):
    """The network with its two outputs as a tuple, for ONNX export."""

    def __init__(self, net: LayerList):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(images)
        return out["boxes"], out["scores"]


def anchor_centres(grids: tuple[tuple[int, int], ...] = SHORT_RANGE.grids) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1], in the network's output order, grid after grid, rows first;
    short range: 2 anchors per cell of the stride-8 grid (16 x 16), then 6 per cell of the stride-16
    grid (8 x 8), 896 in all. (MediaPipe's SSD anchors for these models: fixed size 1, offset 0.5.)"""
    centres = []
    for cells, per_cell in grids:
        y, x = np.mgrid[0:cells, 0:cells]
        grid = (np.stack([x, y], axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, overlap: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: the best remaining detection and every one overlapping it by more
    than `overlap` (IoU) become one, its box and keypoints their score-weighted mean, its score
    the best's. (N, 4), (N,), (N, P, 2) -> the merged, best first."""
    from heatnet.detect import box_iou

    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    left = np.ones(len(boxes), bool)
    merged = ([], [], [])
    for i in range(len(boxes)):
        if not left[i]:
            continue
        group = left & (box_iou(boxes[i:i + 1], boxes)[0] > overlap)
        group[i] = True
        weights = scores[group] / scores[group].sum()
        merged[0].append((boxes[group] * weights[:, None]).sum(0))
        merged[1].append(scores[i])
        merged[2].append((keypoints[group] * weights[:, None, None]).sum(0))
        left &= ~group
    if not merged[1]:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, keypoints.shape[1], 2))
    return np.array(merged[0]), np.array(merged[1]), np.array(merged[2])


class BlazeFace:
    """The detector: photo -> boxes, scores, keypoints (module docstring). `min_score`: MediaPipe's
    for the variant (0.5 short range, 0.6 full range). The network runs in onnxruntime when it is
    installed (1.7 against 12 ms in PyTorch on one busy core, short range: PyTorch's small depthwise
    convolutions are slow), its graph exported once and kept."""

    def __init__(self, variant: Variant = SHORT_RANGE, min_score: float | None = None, overlap: float = 0.3,
                 threads: int = 1):
        self.variant, self.size = variant, variant.input_size
        self.net = LayerList(torch.load(variant.weights, weights_only=True)).eval()
        self.anchors = anchor_centres(variant.grids)
        self.min_score = variant.min_score if min_score is None else min_score
        self.overlap = overlap
        try:
            self.session = cpu_session(kept_graph(variant.weights, self._export), threads)
        except ImportError:
            self.session = None

    def _export(self, stream) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic
            torch.onnx.export(_Outputs(self.net), (torch.zeros(1, 3, self.size, self.size),), stream,
                              input_names=["images"], output_names=["boxes", "scores"], opset_version=17, dynamo=False)

    def network(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, S, 3) uint8 -> raw box regressions (A, 16) and score logits (A,)."""
        x = (canvas.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1)
        if self.session is not None:
            boxes, logits = self.session.run(None, {"images": x})
        else:
            with torch.no_grad():
                out = self.net(torch.from_numpy(x))
            boxes, logits = out["boxes"].numpy(), out["scores"].numpy()
        return boxes[0].astype(np.float64), logits[0, :, 0].astype(np.float64)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 RGB -> boxes (N, 4) pixel edges, scores (N,), keypoints (N, 6, 2) pixels."""
        canvas, scale, corner = fit_to_input(image, self.size)
        raw, logits = self.network(canvas)
        raw = raw / self.size  # (A, 16) in canvas units, anchor-relative
        scores = 1 / (1 + np.exp(-np.clip(logits, -100, 100)))
        keep = scores >= self.min_score
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centres, sizes = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        keypoints = raw[:, 4:].reshape(-1, 6, 2) + anchors[:, None]
        boxes, scores, keypoints = weighted_nms(boxes, scores, keypoints, self.overlap)
        # from the canvas (in [0, 1]: pixel edges) to image pixels; pixel centres at integers
        boxes = (boxes * self.size - np.tile(corner, 2)) / np.tile(scale, 2)
        return boxes, scores, canvas_to_image(keypoints * self.size - 0.5, scale, corner)


def fit_to_input(image: np.ndarray, size: int = SHORT_RANGE.input_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo fitted into the size x size input as MediaPipe fits it: aspect kept, centred, black
    borders -> (canvas uint8 (size, size, 3), the x and y scales (2,), the photo's top-left corner in
    the canvas (2,)). The scales are the resized photo's whole-pixel sides over the photo's: on a
    130 x 300 photo in 128 px, 55 / 130 across and 128 / 300 down (0.8 px apart on its right edge)."""
    h, w = image.shape[:2]
    nominal = size / max(h, w)
    fitted = np.array([max(1, round(w * nominal)), max(1, round(h * nominal))])
    small = cv2.resize(image, tuple(int(v) for v in fitted), interpolation=cv2.INTER_AREA if nominal < 0.5 else cv2.INTER_LINEAR)
    corner = (size - fitted) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[corner[1]:corner[1] + fitted[1], corner[0]:corner[0] + fitted[0]] = small
    return canvas, fitted / np.array([w, h], np.float64), corner.astype(np.float64)


def canvas_to_image(points: np.ndarray, scale: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """(..., 2) pixel coordinates in fit_to_input's canvas -> the photo's (pixel centres at integers
    in both: the resize scales pixel edges by `scale` (x, y), and the photo's edge sits at `corner`)."""
    return (points - corner + 0.5) / scale - 0.5
