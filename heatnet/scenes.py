"""Training scenes for heatnet's own face detector (heatnet.centre_detector): annotated faces of the
landmark datasets pasted, turned by any angle and at many sizes, over face-free backgrounds.

    scenes = FaceScenes([load_split("300w", "train"), load_split("imm", "train")], size=128)
    item = scenes[i]  # the same scene for the same (seed, i): a resumed run sees the same data
    item["image"], item["faces"], item["count"]  # (3, S, S) uint8, (MAX_FACES, 7) float32, int

Each face is labelled as heatnet.crop.face_frames frames it from its points (the square landmark
box in the face's own upright frame, and its roll), with its eye pair (the scheme's `norm_pair`,
the outer eye corners): the detector learns exactly the box and roll that a landmark crop takes.
A face is pasted either with its whole photo (a turned photo on a canvas, as at test time) or
cut out by a soft ellipse around it; faces do not cover one another. Backgrounds are the
face-free strips of training photos (heatnet.face_score.face_free_strip), or black.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from heatnet.augment import Augmentation
from heatnet.crop import face_frames
from heatnet.face_score import face_free_strip
from heatnet.geometry import apply_affine, crop_affine

MAX_FACES = 4
FACE_FIELDS = 7  # centre x, y, side, subject's right eye x, y, left eye x, y: input pixels


class FaceScenes(torch.utils.data.Dataset):
    """`length` random scenes (any length: an index only seeds a scene) from the faces of
    `sources` (landmark sources whose schemes have an eye pair)."""

    def __init__(self, sources: list, size: int = 128, length: int = 10**9, seed: int = 0,
                 min_side: float = 0.08, max_side: float = 0.75, appearance: Augmentation | None = None):
        for source in sources:
            if source.scheme.norm_pair is None:
                raise ValueError(f"{source.scheme.name}: a scheme without eyes cannot label a face's roll")
        self.sources, self.size, self.length, self.seed = sources, size, length, seed
        self.min_side, self.max_side = min_side, max_side  # face sides, fractions of the scene
        self.appearance = appearance or Augmentation(occlusion_prob=0.2)
        self.index = [(s, i) for s, source in enumerate(sources) for i in range(len(source))]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng((self.seed, index))
        canvas = self._background(rng)
        faces: list[np.ndarray] = []
        count = rng.choice([0, 1, 2, 3, 4], p=[0.08, 0.52, 0.2, 0.12, 0.08])
        for _ in range(count * 3):  # a face that would cover another is not pasted: a few tries
            if len(faces) == count:
                break
            self._paste(canvas, faces, rng, whole_photo=not faces and rng.random() < 0.6, alone=count == 1)
        image = self.appearance.appearance_transform(canvas, int(rng.integers(2**31)))
        table = np.zeros((MAX_FACES, FACE_FIELDS), np.float32)
        if faces:
            table[:len(faces)] = np.stack(faces)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "faces": torch.from_numpy(table),
                "count": len(faces)}

    def _sample(self, rng: np.random.Generator):
        s, i = self.index[rng.integers(len(self.index))]
        return self.sources[s][i], self.sources[s].scheme.norm_pair

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        size = self.size
        if rng.random() < 0.1:
            return np.zeros((size, size, 3), np.uint8)
        for _ in range(5):
            strip = face_free_strip(self._sample(rng)[0], min_side=32)
            if strip is not None:
                break
        else:
            return np.zeros((size, size, 3), np.uint8)
        # a random square of the strip, stretched to the scene
        h, w = strip.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        return cv2.resize(np.ascontiguousarray(strip[y:y + side, x:x + side]), (size, size), interpolation=cv2.INTER_AREA)

    def _paste(self, canvas: np.ndarray, faces: list[np.ndarray], rng: np.random.Generator, whole_photo: bool,
               alone: bool) -> None:
        """One face turned by a random angle to a random size and place on the canvas, unless it
        would cover a face already there (then nothing)."""
        sample, pair = self._sample(rng)
        if not sample.visibility.all():
            return  # its eye pair may be unlabelled: only fully labelled faces
        points = sample.points
        (box,), _ = face_frames(points[None], pair)
        centre, side = (box[:2] + box[2:]) / 2, box[2] - box[0]
        size = self.size
        high = self.max_side if alone else self.max_side / 2
        target = size * math.exp(rng.uniform(math.log(self.min_side), math.log(high)))  # face side in the scene
        edge = min(0.15 * target, size / 2)  # up to about a third of a face may be cut off by the frame
        place = rng.uniform(edge, size - edge, size=2)
        radius = target * rng.uniform(0.75, 1.3)  # the ellipse's half axis, scene pixels
        for other in faces:  # nothing pasted over a face already there (a whole photo comes first)
            if np.hypot(*(other[:2] - place)) < radius + 0.6 * other[2]:
                return
        matrix = crop_affine(centre, side * size / target, size, rng.uniform(0, 360))
        matrix[:, 2] += place - (size - 1) / 2
        warped = cv2.warpAffine(sample.image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        if whole_photo:
            h, w = sample.image.shape[:2]
            mask = cv2.warpAffine(np.ones((h, w), np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR)
        else:
            mask = np.zeros((size, size), np.float32)
            axes = (int(radius * rng.uniform(0.8, 1.0)), int(radius))
            cv2.ellipse(mask, tuple(int(v) for v in place), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), max(radius / 8, 0.5))
        mask = mask[..., None]
        canvas[:] = (canvas * (1 - mask) + warped * mask).astype(np.uint8)
        moved = apply_affine(points, matrix)
        (box,), _ = face_frames(moved[None], pair)
        faces.append(np.concatenate([(box[:2] + box[2:]) / 2, [box[2] - box[0]], moved[pair[0]], moved[pair[1]]]))
