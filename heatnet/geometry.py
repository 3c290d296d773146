"""Face crop geometry: square box, one affine from original pixels to the S x S input, and back.

Convention: pixel centres at integer coordinates, so the continuous image spans [-0.5, W - 0.5].
All geometric augmentation (rotation, scale, shift, mirror) is folded into the crop affine so
an image is resampled once and the exact inverse maps predictions back to original pixels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def landmark_box(points: np.ndarray, visibility: np.ndarray | None = None) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of the visible points of a (K, 2) array."""
    visible = points if visibility is None else points[visibility > 0]
    if len(visible) == 0:
        raise ValueError("no visible points to make a face box from")
    return np.concatenate([visible.min(axis=0), visible.max(axis=0)], dtype=np.float64)


def crop_affine(center: np.ndarray, side: float, size: int, angle_deg: float = 0.0,
                mirror: bool = False) -> np.ndarray:
    """(2, 3) matrix taking original pixels to input pixels: the square of `side` pixels around
    `center`, rotated by `angle_deg` (counter-clockwise on screen) and optionally mirrored,
    fills [-0.5, size - 0.5]^2."""
    k = size / side
    a = math.radians(angle_deg)
    # y points down, so a counter-clockwise turn on screen is a clockwise one in (x, y).
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) * k
    if mirror:
        rot[0] = -rot[0]  # x' = (S - 1) - x about the input centre
    half = (size - 1) / 2.0
    return np.hstack([rot, (np.array([half, half]) - rot @ np.asarray(center))[:, None]])


def roll_degrees(points: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    """(..., K, 2) points -> (...) the face's in-plane roll: how far the line from point pair[0] (the
    subject's right eye, on the image's left when upright) to pair[1] is turned counter-clockwise
    on screen, in degrees in (-180, 180]; 0 for an upright face."""
    d = points[..., pair[1], :] - points[..., pair[0], :]
    return np.degrees(np.arctan2(-d[..., 1], d[..., 0]))  # y points down


def turn_affine(shape: tuple[int, ...], angle_deg: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The (2, 3) affine turning an H x W image counter-clockwise on screen by angle_deg about its
    centre onto a canvas that keeps every pixel, and that canvas's (width, height)."""
    h, w = shape[:2]
    a = math.radians(angle_deg)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    # whole-pixel canvas sizes; right angles give exactly (h, w)
    width, height = round(w * c + h * s), round(w * s + h * c)
    matrix = crop_affine(np.array([(w - 1) / 2, (h - 1) / 2]), 1.0, 1, angle_deg)  # rotation about the centre
    matrix[:, 2] += [(width - 1) / 2, (height - 1) / 2]
    return matrix, (width, height)


def turn_image(image: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """An image turned counter-clockwise on screen by angle_deg about its centre, on a canvas that
    keeps every pixel (black corners), and the (2, 3) affine from its pixels to the turned ones.
    Right angles are exact pixel permutations."""
    matrix, size = turn_affine(image.shape, angle_deg)
    quarter = angle_deg / 90.0
    if quarter == round(quarter):
        return np.ascontiguousarray(np.rot90(image, int(round(quarter)) % 4)), matrix
    return cv2.warpAffine(image, matrix, size), matrix  # bilinear, black outside: OpenCV's defaults


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine; or (B, K, 2) points, each set through its own of
    (B, 2, 3) affines."""
    shift = matrix[..., 2] if matrix.ndim == 2 else matrix[:, None, :, 2]  # (2,) or (B, 1, 2)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + shift


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine, or of each of (B, 2, 3)."""
    inv = np.linalg.inv(matrix[..., :2])
    return np.concatenate([inv, -(inv @ matrix[..., 2:])], axis=-1)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affine applying `inner`, then `outer`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample an H x W (x C) image into the size x size crop of `matrix` (original -> input).

    When the crop shrinks the face by more than 2x, the covered region is first reduced with
    area averaging (no aliasing on large images, and less work for the warp)."""
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.5:
        inv = invert_affine(matrix)
        corners = apply_affine(np.array([[-1, -1], [size, -1], [-1, size], [size, size]]), inv)
        h, w = image.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w - 1, h - 1])
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, [x0 + 1, y0 + 1], [w, h])
        roi = image[y0:y1, x0:x1]
        r = min(1.0, 2.0 * scale)
        small = cv2.resize(roi, (max(1, round(roi.shape[1] * r)), max(1, round(roi.shape[0] * r))),
                           interpolation=cv2.INTER_AREA)
        rx, ry = small.shape[1] / roi.shape[1], small.shape[0] / roi.shape[0]
        # original p -> small q: q = (p - origin + 0.5) * r - 0.5, so p = (q + 0.5) / r - 0.5 + origin
        to_original = np.array([[1 / rx, 0, 0.5 / rx - 0.5 + x0], [0, 1 / ry, 0.5 / ry - 0.5 + y0]])
        matrix = compose_affine(matrix, to_original)
        image = small
    return cv2.warpAffine(image, matrix, (size, size))  # bilinear, black outside: OpenCV's defaults
