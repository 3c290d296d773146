"""Landmarks on video: each face is tracked (the next frame's crop comes from this frame's
points, the detector runs again only when no face is tracked or one is lost) and its points are
smoothed over time with a One-Euro filter (Casiez et al., CHI 2012): a low-pass filter whose
cutoff rises with speed, so still faces stop jittering and moving ones do not lag.

    tracker = FaceTracker(heatnet.load_pretrained(), min_cutoff=1.0, beta=0.5)
    for t, frame in frames:             # seconds, H x W x 3 uint8 RGB
        faces = tracker(frame, t)       # [Face], points smoothed
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from heatnet.detect import box_iou
from heatnet.geometry import landmark_box
from heatnet.crop import centres_and_sides, points_boxes
from heatnet.samples import Normaliser
from heatnet.metrics import per_image_nme
from heatnet.predict import Face, FacePredictor, face_score
from heatnet.schemes import IBUG68


class OneEuroFilter:
    """One-Euro filter over an array of values. Values are in units of `scale` (here the face's
    size), so the settings do not depend on the video's resolution: `min_cutoff` (Hz) sets the
    smoothing of a still face (lower: smoother), `beta` how fast the cutoff rises with speed
    (higher: less lag on motion)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = self.t = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64) / scale
        if self.x is None or t <= self.t:
            self.x, self.dx, self.t = x, np.zeros_like(x), t
            return x * scale
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + self._alpha(cutoff, dt) * (x - self.x)
        self.t = t
        return self.x * scale


@dataclass
class Track:
    points: np.ndarray  # (K, 2) last raw prediction, image pixels: the next frame's crop comes from it
    filter: OneEuroFilter
    scale: float  # the face's size when the track started (the filter's unit)


class FaceTracker:
    """Tracks every face of a video; `smooth=False` gives the raw per-frame predictions."""

    def __init__(self, predictor: FacePredictor, min_cutoff: float = 1.0, beta: float = 0.5, smooth: bool = True,
                 min_score: float | None = None):
        self.predictor, self.min_cutoff, self.beta, self.smooth = predictor, min_cutoff, beta, smooth
        # a track whose face score falls below this is lost: by default the threshold a detected face must
        # pass (heatnet.face_score), so a face that left the crop is not returned from it as a face
        self.min_score = getattr(predictor, "min_score", 0.0) if min_score is None else min_score
        self.tracks: list[Track] = []
        self.detections = 0  # frames on which the detector ran

    def _lost(self, points: np.ndarray, scores: np.ndarray, previous_side: float, image: np.ndarray) -> bool:
        """Lost: low confidence, or a face box that jumped in size or left the frame."""
        (centre,), (side,) = centres_and_sides(points_boxes(points[None]))
        h, w = image.shape[:2]
        inside = 0 <= centre[0] < w and 0 <= centre[1] < h
        return float(face_score(scores)) < self.min_score or not inside or not 0.5 < side / previous_side < 2

    def __call__(self, frame: np.ndarray, t: float) -> list[Face]:
        kept, faces = [], []
        if self.tracks:
            # each face cropped upright around where it was in the previous frame
            boxes, rolls = self.predictor.face_frames(np.stack([track.points for track in self.tracks]))
            points, scores = self.predictor.predict_crop_boxes(frame, boxes, rolls=rolls)
            for track, p, s, previous_side in zip(self.tracks, points, scores, centres_and_sides(boxes)[1]):
                if not self._lost(p, s, previous_side, frame):
                    track.points = p
                    kept.append((track, s))
        if len(kept) < len(self.tracks) or not self.tracks:  # a face lost, or none tracked: look again
            self.detections += 1
            found = self.predictor.detect(frame)
            if len(kept) and len(found):  # leave out detections of faces still tracked
                tracked = np.stack([landmark_box(track.points) for track, _ in kept])
                found = found[box_iou(found.boxes, tracked).max(axis=1) < 0.3]
            points, scores = self.predictor.predict_boxes(frame, found)
            for p, s in zip(points, scores):
                if face_score(s) < self.predictor.min_score:  # not a face (heatnet.face_score): no track
                    continue
                side = float(centres_and_sides(points_boxes(p[None]))[1][0])
                kept.append((Track(p, OneEuroFilter(self.min_cutoff, self.beta), max(side, 1.0)), s))
        self.tracks = [track for track, _ in kept]
        for track, scores in kept:
            points = track.filter(track.points, t, track.scale) if self.smooth else track.points
            roll = float(self.predictor.roll(points[None])[0])
            faces.append(Face(landmark_box(points), math.nan, points, scores, roll))
        return faces


def shaken_clip(image: np.ndarray, frames: int = 100, max_shift: float = 2.0, noise_std: float = 4.0,
                seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """A clip made from a still photo: the face drifts along a known smooth sub-pixel path (up to
    max_shift pixels per axis over the clip; a smoother may follow real motion, not noise) and
    every frame gets fresh Gaussian sensor noise (std in grey levels). Returns the frames and
    their (frames, 2) shifts."""
    rng = np.random.default_rng(seed)
    phase = np.linspace(0, 2 * np.pi, frames, endpoint=False)
    shifts = max_shift * np.stack([np.sin(phase), np.sin(2 * phase)], axis=1)
    h, w = image.shape[:2]
    clip = []
    for dx, dy in shifts:
        moved = cv2.warpAffine(image, np.float64([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        noisy = moved.astype(np.float32) + rng.normal(0, noise_std, moved.shape).astype(np.float32)
        clip.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return clip, shifts


def jitter(points: np.ndarray, shifts: np.ndarray, normaliser: float) -> float:
    """Frame-to-frame motion of points (frames, K, 2) once the known shifts (frames, 2) are taken
    out: mean over frames and points of the distance, in % of `normaliser` (inter-ocular)."""
    still = points - shifts[:, None, :]
    return 100 * float(np.linalg.norm(np.diff(still, axis=0), axis=-1).mean()) / normaliser


@dataclass(frozen=True)
class Clip:
    """How tools/jitter.py's clip is made from a still photo and played (see `shaken_clip`)."""

    frames: int = 100
    max_shift: float = 2.0  # largest drift over the clip, pixels per axis
    noise: float = 4.0  # sensor noise std, grey levels
    fps: float = 25.0


def measure_jitter(image: np.ndarray, truth: np.ndarray | None, predictors: list, clip: Clip = Clip(),
                   min_cutoff: float = 1.0, beta: float = 0.5) -> list[tuple[str, float, float, float, float]] | None:
    """(label, jitter %, mean offset from the first predictor's points %, NME % or nan, frames per
    second of the tracker) per (label, predictor, smooth) on one photo's shaken clip; None when a
    frame does not hold exactly one tracked face. Percentages of the inter-ocular distance (68
    points); the rate counts everything a frame costs the tracker (landmarks, smoothing, and the
    detector on the first frame and whenever the track is lost), not making the clip."""
    frames, shifts = shaken_clip(image, clip.frames, clip.max_shift, clip.noise)
    rows, first = [], None
    for label, model, smooth in predictors:
        tracker = FaceTracker(model, min_cutoff, beta, smooth=smooth)
        points, seconds = [], 0.0
        for index, frame in enumerate(frames):
            start = time.perf_counter()
            faces = tracker(frame, index / clip.fps)
            seconds += time.perf_counter() - start
            if len(faces) != 1:
                return None
            points.append(faces[0].points)
        points = np.stack(points)  # (frames, 68, 2)
        first = points if first is None else first
        normaliser = _inter_ocular(first.mean(0))
        visible = np.ones(points.shape[:2])
        offset = 100 * float(per_image_nme(points, first, visible, np.full(len(points), normaliser)).mean())
        nme = float("nan")
        if truth is not None:
            moving = truth[None] + shifts[:, None, :]
            nme = 100 * float(per_image_nme(points, moving, visible, np.full(len(points), _inter_ocular(truth))).mean())
        rows.append((label, jitter(points, shifts, normaliser), offset, nme, len(frames) / seconds))
    return rows


def _inter_ocular(points: np.ndarray) -> float:
    return Normaliser.INTER_OCULAR.of(points, np.ones(len(points)), IBUG68)
