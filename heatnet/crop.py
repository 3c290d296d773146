"""The face crop: one definition of how a face becomes the model's input, used by the dataset
(training, validation, test), the predictor (photos, video, `evaluate --detector`) and the exported
graphs' callers, so a model is always predicted on the crop it was trained on.

    crop = Crop.of(settings)                       # the run's box rule, box_scale, input size, channels
    box = crop.box(sample)                         # (4,) the box the rule picks for an annotated face
    matrix = crop.matrix(box)                      # (2, 3) original pixels -> input pixels
    pixels = crop.pixels(image, matrix)            # (S, S, C) uint8
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np

from heatnet.geometry import crop_affine, landmark_box, roll_degrees, warp_to_crop


class CropBox(enum.Enum):
    """Which box a face crop is centred and scaled on."""

    LANDMARKS = "landmarks"  # the box of the visible ground-truth points (the default; tables say so)
    ANNOTATION = "annotation"  # the face box the annotation file gives (dlib XML, WFLW), or a detector's box
    IMAGE = "image"  # the whole image, letterboxed into the square crop (the IMM nose-tip study)


@dataclass(frozen=True)
class CropJitter:
    """One draw of the geometric augmentation, relative to the face box."""

    angle_deg: float = 0.0
    scale: float = 1.0  # > 1 zooms out
    shift: tuple[float, float] = (0.0, 0.0)  # fraction of the box side
    mirror: bool = False


@dataclass(frozen=True)
class Crop:
    rule: CropBox = CropBox.LANDMARKS
    box_scale: float = 1.25  # crop side = box_scale x the longer side of the box
    size: int = 128  # S: side of the square input, pixels
    channels: int = 3  # 1: grayscale

    @classmethod
    def of(cls, settings) -> Crop:
        """A run's crop, from its settings (box, box_scale, input_size, channels)."""
        return cls(settings.box, settings.box_scale, settings.input_size, settings.channels)

    @staticmethod
    def image_box(image_shape: tuple[int, ...]) -> np.ndarray:
        """(4,) the whole image by its pixel edges: side = the longer side at box_scale 1."""
        height, width = image_shape[:2]
        return np.array([-0.5, -0.5, width - 0.5, height - 0.5])

    def box(self, sample) -> np.ndarray:
        """(4,) x0, y0, x1, y1: the box this rule crops an annotated sample (heatnet.samples.Sample) on.
        A source that fixes a sample's box (the IMM nose tip: its full face) overrides the rule."""
        if self.rule is CropBox.IMAGE:
            return self.image_box(sample.image.shape)
        if sample.box is not None:
            return np.asarray(sample.box, np.float64)
        if self.rule is CropBox.ANNOTATION and sample.annotation_box is not None:
            return np.asarray(sample.annotation_box, np.float64)
        return landmark_box(sample.points, sample.visibility)

    def matrix(self, box: np.ndarray, jitter: CropJitter = CropJitter(), roll: float = 0.0) -> np.ndarray:
        """(2, 3) original -> input affine of the square of box_scale x the box's longer side
        around its centre, moved, turned, zoomed and mirrored by `jitter`. A face rolled by `roll`
        degrees (heatnet.geometry.roll_degrees; its box taken in its own upright frame, as
        face_frames gives it) is turned back upright."""
        x0, y0, x1, y1 = box
        side = self.box_scale * max(x1 - x0, y1 - y0, 1.0) * jitter.scale
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + np.array(jitter.shift) * side
        return crop_affine(centre, side, self.size, jitter.angle_deg - roll, jitter.mirror)

    def to_channels(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) RGB -> (S, S, channels)."""
        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None] if self.channels == 1 else crop

    def pixels(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """(S, S, channels) uint8: the crop of an H x W x 3 uint8 RGB image through `matrix`."""
        return self.to_channels(warp_to_crop(image, matrix, self.size))


def face_frames(points: np.ndarray, pair: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) points -> (N, 4) boxes and (N,) rolls in degrees: each face's roll from its
    points `pair` (the outer eye corners; roll 0 for a scheme without eyes), and the box of its
    points turned upright about their box's centre, put back around the centre they map to. A
    crop of that box turned by its roll (Crop.matrix) holds the face upright, as wide as if it
    had been photographed upright."""
    points = np.asarray(points, np.float64)
    if pair is None:
        return points_boxes(points), np.zeros(len(points))
    rolls = roll_degrees(points, pair)  # (N,)
    a = np.radians(rolls)
    c, s = np.cos(a)[:, None], np.sin(a)[:, None]
    x, y = points[..., 0], points[..., 1]  # (N, K)
    # turned clockwise on screen by the roll (y down): the upright face's coordinates
    upright = np.stack([c * x - s * y, s * x + c * y], axis=-1)
    centres, sides = centres_and_sides(points_boxes(upright))
    cx, cy = centres[:, 0:1], centres[:, 1:2]
    back = np.concatenate([c * cx + s * cy, -s * cx + c * cy], axis=1)  # the inverse turn, (N, 2)
    return square_boxes(back, sides), rolls


def points_boxes(points: np.ndarray) -> np.ndarray:
    """(N, K, 2) points -> (N, 4) x0, y0, x1, y1 of their boxes."""
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def centres_and_sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) boxes -> (N, 2) centres and (N,) longer sides: the square a crop is made on."""
    boxes = np.asarray(boxes, np.float64)
    return (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).max(axis=1)


def square_boxes(centres: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """(N, 2) centres and (N,) sides -> (N, 4) square boxes."""
    half = np.asarray(sides, np.float64)[:, None] / 2
    return np.concatenate([centres - half, centres + half], axis=1)
