"""MTCNN, heatnet's default face detector: the cascade of three small CNNs of Zhang et al., "Joint
Face Detection and Alignment using Multi-task Cascaded Convolutional Networks" (IEEE SPL 2016).

    boxes, scores, keypoints = Mtcnn()(image)   # (N, 4) x0, y0, x1, y1 pixel edges, (N,) face
                                                # probabilities, (N, 5, 2) eyes, nose, mouth corners

1. P-Net slides a 12 x 12 window (stride 2) over an image pyramid: windows with face probability
   >= 0.6, their box offsets applied, merged by non-maximum suppression (NMS), made square.
2. R-Net rescores a 24 x 24 crop of each (>= 0.7), refines its box, NMS again.
3. O-Net does the same on 48 x 48 crops (>= 0.7) and places five keypoints (the eyes, the nose
   tip, the mouth corners: they give the face's roll); the final NMS compares boxes by the
   smaller one's area, so a box inside a larger face's box goes.

The weights (heatnet/assets/mtcnn.pt, 2 MB) are the authors' trained models as facenet-pytorch
2.6.0 ships them converted for PyTorch (MIT licences: heatnet/assets/MTCNN_LICENSE.txt); the
cascade here is heatnet's own, on numpy, OpenCV and torch, so no package beyond heatnet's is needed.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heatnet.crop import centres_and_sides, square_boxes
from heatnet.geometry import crop_affine, warp_to_crop

WEIGHTS = Path(__file__).parent / "assets" / "mtcnn.pt"


def _normalised(pixels: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) or (S, S, 3) uint8 RGB -> (N, 3, S, S) float in [-1, 1], as the nets were trained."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    x = x[None] if x.ndim == 3 else x
    return (x.permute(0, 3, 1, 2) - 127.5) / 128.0


def _transposed_flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, W * H * C): the dense layers were trained (in Caffe, on transposed
    images) to read their features in this order."""
    return x.permute(0, 3, 2, 1).flatten(1)


class ProposalNet(nn.Module):
    """P-Net: fully convolutional, one 12 x 12 window per output cell at stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> (N, H', W') face probabilities and (N, 4, H', W') box offsets."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class RefineNet(nn.Module):
    """R-Net: 24 x 24 crops -> face probability and box offsets."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) -> (N,) face probabilities and (N, 4) box offsets."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_transposed_flatten(self.prelu3(self.conv3(x)))))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class OutputNet(nn.Module):
    """O-Net: 48 x 48 crops -> face probability, box offsets and five keypoints."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) -> (N,) face probabilities, (N, 4) box offsets and (N, 10) keypoints:
        five x then five y, fractions of the crop's width and height."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_transposed_flatten(self.prelu4(self.conv4(x)))))
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def pyramid_scales(height: int, width: int, min_face: float, factor: float = 0.709) -> list[float]:
    """Scales at which P-Net's 12-pixel window covers faces from min_face pixels up to the
    image's shorter side, each `factor` times the last (0.709: the window area halves)."""
    scales, scale = [], 12.0 / min_face
    while min(height, width) * scale >= 12:
        scales.append(scale)
        scale *= factor
    return scales


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_smaller: bool = False) -> np.ndarray:
    """Indices of the (N, 4) boxes kept by greedy non-maximum suppression, best score first: a box
    goes when it overlaps a kept one by more than `threshold`, overlap being intersection over
    union, or over the smaller box's area when `by_smaller`."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order, keep = np.argsort(-scores, kind="stable"), []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        h = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        base = np.minimum(area[best], area[rest]) if by_smaller else area[best] + area[rest] - inter
        order = rest[inter <= threshold * base]
    return np.array(keep, dtype=np.int64)


def _shifted(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply the nets' (N, 4) box offsets, fractions of the box's width and height."""
    size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    return boxes + offsets * size


def _squared(boxes: np.ndarray) -> np.ndarray:
    """Square boxes around the same centres, sides the longer of width and height."""
    return square_boxes(*centres_and_sides(boxes))


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) crops of square boxes (pixel edges), black outside the image."""
    # crop_affine puts pixel centres at integers, half a pixel left of the edge coordinates
    return np.stack([warp_to_crop(image, crop_affine((box[:2] + box[2:]) / 2 - 0.5, box[2] - box[0], size), size)
                     for box in boxes])


class Mtcnn:
    """The cascade on one RGB image; thresholds are the authors' (0.6, 0.7, 0.7)."""

    def __init__(self, min_face: float = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        weights = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
        self.pnet, self.rnet, self.onet = ProposalNet(), RefineNet(), OutputNet()
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            net.load_state_dict(weights[name])
            net.eval()
        self.min_face, self.thresholds = min_face, thresholds

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H x W x 3 uint8 RGB -> (N, 4) boxes (x0, y0, x1, y1 pixel edges), (N,) face
        probabilities, best first, and (N, 5, 2) keypoints in pixels: the subject's right eye,
        left eye, nose tip, right and left mouth corner (right: the image's left when upright)."""
        boxes = self._propose(image)
        if len(boxes):
            boxes, scores, offsets = self._rescored(self.rnet, image, boxes, 24, self.thresholds[1])
            keep = nms(boxes, scores, 0.7)
            boxes = _squared(_shifted(boxes[keep], offsets[keep]))
        if len(boxes):
            boxes, scores, offsets, marks = self._rescored(self.onet, image, boxes, 48, self.thresholds[2])
            # marks are fractions of the box O-Net saw; pixel centres sit half a pixel inside edges
            fractions = marks.reshape(-1, 2, 5).transpose(0, 2, 1)  # (N, 5, 2)
            keypoints = boxes[:, None, :2] + fractions * (boxes[:, None, 2:] - boxes[:, None, :2]) - 0.5
            boxes = _shifted(boxes, offsets)  # the authors' order: the last boxes are refined, then merged
            keep = nms(boxes, scores, 0.7, by_smaller=True)
            return boxes[keep], scores[keep], keypoints[keep]
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))

    @staticmethod
    def _rescored(net: nn.Module, image: np.ndarray, boxes: np.ndarray, size: int,
                  threshold: float) -> tuple[np.ndarray, ...]:
        """The (N, 4) boxes whose size x size crops `net` scores at least `threshold`, with the
        net's other outputs for them: (N,) scores, (N, 4) box offsets (and O-Net's keypoints)."""
        outputs = [t.numpy().astype(np.float64) for t in net(_normalised(_crops(image, boxes, size)))]
        passed = outputs[0] >= threshold
        return (boxes[passed], *(output[passed] for output in outputs))

    def _propose(self, image: np.ndarray) -> np.ndarray:
        """P-Net's square candidate boxes over the pyramid, (N, 4)."""
        height, width = image.shape[:2]
        found = []  # per scale: (K, 4) boxes, (K,) scores, (K, 4) offsets
        for scale in pyramid_scales(height, width, self.min_face):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            probability, offsets = (t[0].numpy().astype(np.float64) for t in
                                    self.pnet(_normalised(cv2.resize(image, size, interpolation=cv2.INTER_AREA))))
            rows, cols = np.nonzero(probability >= self.thresholds[0])
            if len(rows) == 0:
                continue
            # output cell (row, col) is the level's 12 x 12 window at (2 col, 2 row)
            corner = np.stack([cols, rows], axis=1) * 2.0
            boxes = np.concatenate([corner, corner + 12.0], axis=1) / scale
            scores = probability[rows, cols]
            keep = nms(boxes, scores, 0.5)
            found.append((boxes[keep], scores[keep], offsets[:, rows[keep], cols[keep]].T))
        if not found:
            return np.zeros((0, 4))
        boxes, scores, offsets = (np.concatenate(parts) for parts in zip(*found))
        keep = nms(boxes, scores, 0.7)
        return _squared(_shifted(boxes[keep], offsets[keep]))
