"""Built-in synthetic faces: the offline dataset that lets heatnet run anywhere in minutes.

Shapes come from the 68-point statistical shape model fitted to 300-W (identity, expression and
out-of-plane pose live in its modes); in-plane pose, skin, hair, lighting, background clutter,
blur, noise and occluders are random. The face is drawn with OpenCV through the landmarks
themselves (eye corners are polygon vertices, the jaw is the head outline), so labels and pixels
agree to a fraction of a pixel. Face `index` of a set with `seed` is always the same image.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from heatnet.samples import Normaliser, Sample
from heatnet.schemes import IBUG68
from heatnet.shape_model import ShapeModel

_SHIFT = 4  # OpenCV fixed-point drawing: coordinates in 1/16 pixel
_ONE = 1 << _SHIFT
_SKIN = np.array([[255, 224, 196], [234, 192, 160], [198, 144, 108], [141, 85, 36], [92, 56, 34]], np.float64)
_HAIR = np.array([[20, 15, 10], [60, 40, 25], [120, 80, 40], [200, 170, 110], [90, 90, 90]], np.float64)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _color(rgb) -> tuple[int, int, int]:
    return tuple(int(c) for c in np.clip(rgb, 0, 255))


def _poly(img, pts, color) -> None:
    cv2.fillPoly(img, [_fixed(pts)], _color(color), cv2.LINE_AA, _SHIFT)


def _line(img, pts, color, thickness: float, closed: bool = False) -> None:
    cv2.polylines(img, [_fixed(pts)], closed, _color(color), max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _ellipse(img, center, axes, angle_deg, color) -> None:
    cv2.ellipse(img, tuple(int(v) for v in np.round(np.asarray(center) * _ONE)),
                tuple(max(1, int(v)) for v in np.round(np.asarray(axes) * _ONE)), angle_deg, 0, 360,
                _color(color), -1, cv2.LINE_AA, _SHIFT)


class SyntheticFaces:
    """A deterministic, lazily drawn set of `length` faces on `image_size` square canvases."""

    scheme = IBUG68
    normaliser = Normaliser.INTER_OCULAR  # every point of a drawn face is annotated
    has_annotation_boxes = False

    def __init__(self, length: int, seed: int = 0, image_size: int = 160, shape_model: ShapeModel | None = None):
        self.length, self.seed, self.image_size = length, seed, image_size
        self.shape_model = shape_model or ShapeModel.load()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index, 68])
        points = self._pose(rng)
        image = self._draw(points, rng)
        visibility = np.ones(len(points), np.float32)
        return Sample(image, points.astype(np.float32), visibility,
                      self.normaliser.of(points, visibility, self.scheme), self.name_of(index))

    def name_of(self, index: int) -> str:
        return f"synthetic_{self.seed}_{index:06d}"

    def _pose(self, rng: np.random.Generator) -> np.ndarray:
        shape = self.shape_model.sample(rng, spread=1.2)  # unit RMS radius, centred
        s = self.image_size
        angle = math.radians(rng.uniform(-25, 25))
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        scale = s * rng.uniform(0.18, 0.27)
        centre = s / 2 + rng.uniform(-0.06, 0.06, 2) * s + np.array([0, 0.04 * s])
        return shape @ rot.T * scale + centre

    def _draw(self, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.image_size
        img = self._background(rng)
        skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3)
        chin, brow_mid = p[8], p[17:27].mean(axis=0)
        up = (brow_mid - chin) / (np.linalg.norm(brow_mid - chin) + 1e-6)
        face_len = np.linalg.norm(brow_mid - chin)
        # Neck, then hair behind the head, then the head outline: jaw + forehead arc.
        _poly(img, np.array([p[4], p[12], p[12] - up * s, p[4] - up * s]), skin * 0.8)
        centre = (p[0] + p[16]) / 2
        half_width = (p[16] - p[0]) / 2
        height = max(np.dot(brow_mid - centre, up), 0) + 0.45 * face_len
        t = np.linspace(0, math.pi, 24)
        arc = centre + np.outer(np.cos(t), half_width) + np.outer(np.sin(t), up * height)
        if rng.random() < 0.8:
            hair = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 10, 3)
            bulk = rng.uniform(1.05, 1.25)
            _poly(img, centre + (arc - centre) * bulk + up * 0.05 * face_len, hair)
        head = np.concatenate([p[0:17], arc[1:-1]])
        for ear in (p[1] - half_width * 0.08, p[15] + half_width * 0.08):
            _ellipse(img, ear + up * 0.12 * face_len, (0.09 * face_len, 0.16 * face_len), 0, skin * 0.9)
        _poly(img, head, skin)
        self._shade(img, head, rng)
        # Brows, eyes, nose, mouth through the landmarks.
        brow = skin * rng.uniform(0.2, 0.5)
        thick = max(1.0, 0.035 * face_len)
        _line(img, p[17:22], brow, thick)
        _line(img, p[22:27], brow, thick)
        iris = np.array([rng.uniform(30, 120), rng.uniform(30, 100), rng.uniform(20, 80)])
        gaze = rng.uniform(-0.15, 0.15, 2)
        for eye in (p[36:42], p[42:48]):
            self._eye(img, eye, iris, gaze, skin)
        nose_dark = skin * 0.7
        _line(img, p[27:31], skin * 0.88, max(1.0, 0.02 * face_len))
        _line(img, p[31:36], nose_dark, max(1.0, 0.015 * face_len))
        for nostril in (p[32], p[34]):
            _ellipse(img, nostril - up * 0.01 * face_len, (0.03 * face_len, 0.018 * face_len), 0, skin * 0.35)
        lips = skin * np.array([1.0, 0.6, 0.6]) * rng.uniform(0.7, 1.0)
        _poly(img, p[48:60], lips)
        _poly(img, p[60:68], (40, 15, 15))
        _line(img, p[60:68], lips * 0.6, 1.0, closed=True)
        if rng.random() < 0.35:
            self._occlude(img, p, rng, face_len)
        return self._camera(img, rng)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        s = self.image_size
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ramp = np.linspace(0, 1, s)[:, None] if rng.random() < 0.5 else np.linspace(0, 1, s)[None, :]
        img = (c0 + (c1 - c0) * ramp[..., None] * np.ones((s, s, 1))).astype(np.uint8)
        for _ in range(rng.integers(3, 9)):
            color = rng.uniform(0, 255, 3)
            kind = rng.integers(3)
            a, b = rng.uniform(-0.1, 1.1, 2) * s, rng.uniform(-0.1, 1.1, 2) * s
            if kind == 0:
                cv2.rectangle(img, tuple(int(v) for v in a), tuple(int(v) for v in b), _color(color), -1)
            elif kind == 1:
                _ellipse(img, a, rng.uniform(0.03, 0.2, 2) * s, rng.uniform(0, 180), color)
            else:
                _line(img, np.array([a, b]), color, rng.uniform(1, 4))
        return img

    @staticmethod
    def _shade(img: np.ndarray, head: np.ndarray, rng: np.random.Generator) -> None:
        """Directional light across the face region."""
        x0, y0 = np.floor(head.min(axis=0)).astype(int).clip(0)
        x1, y1 = np.ceil(head.max(axis=0)).astype(int) + 1
        roi = img[y0:y1, x0:x1]
        if roi.size == 0:
            return
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillPoly(mask, [_fixed(head - [x0, y0])], 255, cv2.LINE_AA, _SHIFT)
        direction = rng.normal(size=2)
        yy, xx = np.mgrid[0 : roi.shape[0], 0 : roi.shape[1]]
        ramp = (xx * direction[0] + yy * direction[1]) / (np.abs(direction).sum() * max(roi.shape[:2]))
        gain = 1.0 + rng.uniform(0.1, 0.45) * (ramp - ramp.mean())
        shaded = np.clip(roi * gain[..., None], 0, 255)
        alpha = mask[..., None] / 255.0
        roi[:] = (shaded * alpha + roi * (1 - alpha)).astype(np.uint8)

    @staticmethod
    def _eye(img: np.ndarray, eye: np.ndarray, iris_color, gaze, skin) -> None:
        """Sclera inside the 6-point eye outline, iris clipped to it, darker upper lid."""
        x0, y0 = np.floor(eye.min(axis=0)).astype(int).clip(0) - 1
        x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        roi = img[y0:y1, x0:x1]
        if roi.size == 0:
            return
        local = eye - [x0, y0]
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillPoly(mask, [_fixed(local)], 255, cv2.LINE_AA, _SHIFT)
        layer = roi.copy()
        layer[:] = (235, 235, 230)
        width = np.linalg.norm(local[3] - local[0])
        centre = local.mean(axis=0) + gaze * width
        _ellipse(layer, centre, (0.24 * width, 0.24 * width), 0, iris_color)
        _ellipse(layer, centre, (0.1 * width, 0.1 * width), 0, (10, 10, 10))
        alpha = mask[..., None] / 255.0
        roi[:] = (layer * alpha + roi * (1 - alpha)).astype(np.uint8)
        _line(img, eye[0:4], skin * 0.3, max(1.0, 0.08 * width))
        _line(img, np.concatenate([eye[3:6], eye[:1]]), skin * 0.6, 1.0)

    @staticmethod
    def _occlude(img: np.ndarray, p: np.ndarray, rng: np.random.Generator, face_len: float) -> None:
        color = rng.uniform(0, 255, 3)
        if rng.random() < 0.3:  # sunglasses
            for eye in (p[36:42], p[42:48]):
                _ellipse(img, eye.mean(axis=0), (0.22 * face_len, 0.14 * face_len), 0, color * 0.3)
            _line(img, np.array([p[39], p[42]]), color * 0.3, 0.03 * face_len)
        else:  # a patch (hand, microphone, object) over a random part of the face
            centre = p[rng.integers(len(p))] + rng.normal(0, 0.1, 2) * face_len
            _ellipse(img, centre, rng.uniform(0.15, 0.4, 2) * face_len, rng.uniform(0, 180), color)

    @staticmethod
    def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Exposure, blur and sensor noise."""
        out = img.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
        sigma = rng.uniform(0, 1.3)
        if sigma > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        out += rng.normal(0, rng.uniform(0, 8), out.shape).astype(np.float32)
        return np.clip(out, 0, 255).astype(np.uint8)
