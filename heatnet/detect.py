"""Face detectors for photos and video: BlazeFace (the default, heatnet.blazeface, at any roll
through AnyAngle), MTCNN (heatnet.mtcnn), dlib's HOG and CNN (mmod) detectors (the [dlib] extra)
and OpenCV's Haar cascade (inside the opencv wheel).

    detector = make_detector()                              # "blazeface": BlazeFace, turned when unsure
    detector = AnyAngle(MtcnnDetector())                    # what make_detector("mtcnn") gives
    found = detector(image)                                 # Detections, best first
    found.boxes, found.scores, found.rolls                  # (N, 4) x0, y0, x1, y1 pixels, (N,), (N,) degrees
    centres, sides = detector.box_fit.landmark_boxes(found.boxes, found.rolls)  # a heatnet crop's square

A detector's box is not the box a heatnet model was trained on (the ground-truth landmark box,
times the run's box_scale): each detector has its own `BoxFit` from its box to the landmark
box's centre and longer side, measured on the 300-W training images by `fit_box`
(`python tools/fit_detector_box.py --detector haar`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from heatnet.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace
from heatnet.errors import ConfigError
from heatnet.geometry import apply_affine, invert_affine, landmark_box, roll_degrees, turn_image
from heatnet.mtcnn import Mtcnn


@dataclass(frozen=True)
class BoxFit:
    """Landmark box from a detector box of side d (the mean of its width and height): centre
    = box centre + (dx, dy) * d, longer side = scale * d (medians over matched faces)."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def landmark_boxes(self, boxes: np.ndarray, rolls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) detector boxes -> (N, 2) landmark-box centres and (N,) longer sides. The offset
        (dx, dy) is the face's own: for faces rolled by `rolls` degrees it turns with them."""
        centre, side = box_centres_and_sides(boxes)
        return centre + self._offsets(side, rolls), self.scale * side

    def detector_boxes(self, centres: np.ndarray, sides: np.ndarray, rolls: np.ndarray | None = None) -> np.ndarray:
        """The inverse: (N, 4) square detector boxes that give these landmark-box centres and sides."""
        side = sides / self.scale
        centre = centres - self._offsets(side, rolls)
        return np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], axis=1)

    def _offsets(self, side: np.ndarray, rolls: np.ndarray | None) -> np.ndarray:
        """(N, 2) the landmark box's offset from the detector box's centre, in image pixels."""
        a = np.radians(np.zeros(len(side)) if rolls is None else np.asarray(rolls, np.float64))
        c, s = np.cos(a), np.sin(a)
        # (dx, dy) turned counter-clockwise on screen by the roll (y down)
        return np.stack([c * self.dx + s * self.dy, -s * self.dx + c * self.dy], axis=1) * side[:, None]


def box_centres_and_sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) x0, y0, x1, y1 boxes -> (N, 2) centres and (N,) sides (the mean of width and height)."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2, ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2


@dataclass(frozen=True)
class Detections:
    """The faces a detector found in one image, best first."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 image pixels: centre and size of each face, measured
    #                    in its own upright frame (the same as the image's when its roll is 0)
    scores: np.ndarray  # (N,) the detector's own confidence
    rolls: np.ndarray  # (N,) degrees counter-clockwise on screen (heatnet.geometry.roll_degrees)

    @classmethod
    def upright(cls, boxes: np.ndarray, scores: np.ndarray) -> Detections:
        """Detections of a detector that only finds upright faces (roll 0)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return cls(boxes, np.asarray(scores, np.float64).reshape(-1), np.zeros(len(boxes)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index) -> Detections:
        """The detections at an index array, slice or boolean mask (an int keeps one)."""
        index = [index] if isinstance(index, (int, np.integer)) else index
        return Detections(self.boxes[index], self.scores[index], self.rolls[index])


class FaceDetector(Protocol):
    name: str
    box_fit: BoxFit
    max_side: int  # photos are downscaled to at most this many pixels for detection

    def __call__(self, image: np.ndarray) -> Detections: ...


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy no longer than max_side (detectors find faces of a few dozen pixels; a 40 Mpx
    photo would only cost time), and the factor back to the original pixels."""
    factor = max(image.shape[:2]) / max_side
    if factor <= 1:
        return image, 1.0
    size = (round(image.shape[1] / factor), round(image.shape[0] / factor))
    if factor < 2:  # linear interpolation barely aliases at this shrink, and OpenCV's area averaging at a
        # fractional factor costs 15x more (384 to 256 px: 1.4 against 0.09 ms), a sixth of a fast photo's time
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), factor
    step = int(factor // 4)  # far larger (12 Mpx to 256 px): every step-th pixel first, then area averaging
    if step > 1:  # of at least 4 x 4 of those: 12 Mpx to BlazeFace took 31 ms instead of 71 (busy machine)
        image = image[step // 2::step, step // 2::step]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: fast, frontal faces only, no real confidence (its
    score is the number of neighbouring detections merged)."""

    name = "haar"
    # tools/fit_detector_box.py --detector haar --limit 400: 342 of the first 400 300-W training faces
    # matched (14.5 % missed); the cascade's box sits high on the face and is wider than the landmarks
    box_fit = BoxFit(scale=0.876, dx=0.001, dy=0.142)

    def __init__(self, max_side: int = 1280, min_face: int = 24):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ConfigError(f"{path}: OpenCV's Haar cascade could not be loaded (reinstall opencv-python-headless)")
        self.max_side, self.min_face = max_side, min_face

    def __call__(self, image: np.ndarray) -> Detections:
        small, factor = _downscaled(image, self.max_side)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        found, _, weights = self.cascade.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5,
                                                           minSize=(self.min_face, self.min_face), outputRejectLevels=True)
        if len(found) == 0:
            return Detections.upright(np.zeros((0, 4)), np.zeros(0))
        boxes = np.asarray(found, np.float64) * factor
        boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
        scores = np.asarray(weights, np.float64).reshape(-1)
        order = np.argsort(-scores)
        return Detections.upright(boxes[order], scores[order])


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ConfigError('dlib is not installed: pip install -e ".[dlib]" (prebuilt wheels dlib-bin and '
                          'face-recognition-models)') from None
    return dlib


def dlib_model_file(name: str) -> str:
    """A model file of the face-recognition-models package (dlib's detector and predictor)."""
    _dlib()
    # found, not imported: its __init__ needs pkg_resources, which recent setuptools no longer has
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError('face-recognition-models is not installed: pip install -e ".[dlib]"')
    return str(Path(spec.submodule_search_locations[0]) / "models" / name)


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal face detector (the one dlib's 68-point predictor was fitted to)."""

    name = "dlib_hog"
    # tools/fit_detector_box.py --detector dlib_hog --limit 400: 375 of the first 400 matched (6.2 % missed)
    box_fit = BoxFit(scale=1.024, dx=0.006, dy=0.112)

    def __init__(self, upsample: int = 1, max_side: int = 1280):
        self.detector, self.upsample, self.max_side = _dlib().get_frontal_face_detector(), upsample, max_side

    def __call__(self, image: np.ndarray) -> Detections:
        small, factor = _downscaled(image, self.max_side)
        found, scores, _ = self.detector.run(np.ascontiguousarray(small), self.upsample, 0.0)
        return _dlib_boxes([r for r in found], np.asarray(scores, np.float64), factor)


class DlibCnnDetector:
    """dlib's CNN (max-margin object detection) face detector: slower, finds more poses."""

    name = "dlib_cnn"
    # tools/fit_detector_box.py --detector dlib_cnn --limit 150: all 150 matched (2 s per photo, hence 150)
    box_fit = BoxFit(scale=1.035, dx=0.01, dy=0.181)

    def __init__(self, upsample: int = 0, max_side: int = 800):
        dlib = _dlib()
        self.detector = dlib.cnn_face_detection_model_v1(dlib_model_file("mmod_human_face_detector.dat"))
        self.upsample, self.max_side = upsample, max_side

    def __call__(self, image: np.ndarray) -> Detections:
        small, factor = _downscaled(image, self.max_side)
        found = self.detector(np.ascontiguousarray(small), self.upsample)
        return _dlib_boxes([d.rect for d in found], np.array([d.confidence for d in found], np.float64), factor)


class MtcnnDetector:
    """MTCNN (Zhang et al. 2016), heatnet's own cascade over the authors' weights (heatnet.mtcnn):
    the detector that found every face of the test sets (docs/detectors.md). It finds faces rolled
    up to about 45 degrees, and its eye keypoints give their roll; AnyAngle takes it all the way round."""

    name = "mtcnn_upright"
    # tools/fit_detector_box.py --detector mtcnn_upright --limit 400: all 400 matched
    box_fit = BoxFit(scale=0.922, dx=0.015, dy=0.151)

    def __init__(self, max_side: int = 1280, min_face: int = 20, name: str = "mtcnn_upright"):
        self.detector, self.max_side, self.name = Mtcnn(min_face=min_face), max_side, name

    def __call__(self, image: np.ndarray) -> Detections:
        return _eye_roll_detections(self.detector, image, self.max_side)


def _eye_roll_detections(detector, image: np.ndarray, max_side: int) -> Detections:
    """A keypoint detector (-> boxes, scores, keypoints) on the image downscaled to max_side, in
    the image's pixels; the eyes' line (keypoints 0 and 1: the subject's right and left eye) is
    each face's roll."""
    small, factor = _downscaled(image, max_side)
    boxes, scores, keypoints = detector(small)
    return Detections(boxes * factor, scores, roll_degrees(keypoints, (0, 1)))


class BlazeFaceDetector:
    """BlazeFace short range (heatnet.blazeface): MediaPipe's face detector, one 128 x 128 network
    pass per photo, run by heatnet over MediaPipe's weights. It finds faces that fill a good part of
    the photo (selfie distance, portraits), not small faces in a crowd; its eye keypoints give
    the roll. `max_side`: the photo is fitted into 128 px anyway, so AnyAngle turns small copies."""

    name = "blazeface_upright"
    # tools/fit_detector_box.py --detector blazeface_upright --limit 400: all 400 matched
    box_fit = BoxFit(scale=0.985, dx=0.002, dy=0.05)

    variant = SHORT_RANGE

    def __init__(self, max_side: int = 256, min_score: float | None = None):
        self.detector, self.max_side = BlazeFace(self.variant, min_score=min_score), max_side

    def __call__(self, image: np.ndarray) -> Detections:
        return _eye_roll_detections(self.detector, image, self.max_side)  # its eyes are keypoints 0 and 1


class BlazeFaceFullRangeDetector(BlazeFaceDetector):
    """BlazeFace full range: MediaPipe's detector for faces up to about 5 m from the camera, one
    192 x 192 pass (2304 anchors at stride 4): it finds 92 % of faces 30-40 px wide in a 400 px photo,
    where the short-range model finds 54 %, but misses some that fill the photo; about twice the
    time (docs/detectors.md#small-faces)."""

    name = "blazeface_full_upright"
    # tools/fit_detector_box.py --detector blazeface_full_upright --limit 400: 360 matched, 40 missed (faces
    # that fill the photo: the short-range model's)
    box_fit = BoxFit(scale=0.92, dx=-0.004, dy=0.093)

    variant = FULL_RANGE

    def __init__(self, max_side: int = 384, min_score: float | None = None):
        super().__init__(max_side, min_score)


class CentreNetDetector:
    """heatnet's own detector (heatnet.centre_detector), trained by tools/train_detector.py on faces
    at every roll: one pass per photo finds faces at any angle, each with its roll from the eyes it
    regresses. Its box is the landmark crop's own square, so its BoxFit is the identity. `detector`: a
    heatnet.centre_detector.CentreDetector (make_detector loads one from a tools/train_detector.py
    checkpoint by its path)."""

    box_fit = BoxFit()

    def __init__(self, detector, name: str = "centrenet", max_side: int = 256, overlap: float = 0.3):
        self.detector, self.name, self.max_side, self.overlap = detector, name, max_side, overlap

    def __call__(self, image: np.ndarray) -> Detections:
        small, factor = _downscaled(image, self.max_side)
        centres, sides, scores, eyes = self.detector(small)
        found = Detections(np.concatenate([centres - sides[:, None] / 2, centres + sides[:, None] / 2], axis=1) * factor,
                           scores, roll_degrees(eyes, (0, 1)))
        return found[same_roll_nms(found, self.overlap, 360.0)]


class AnyAngle:
    """A detector at every roll: it runs on the image (downscaled once to the detector's max_side)
    and on copies turned in steps of `step_deg` (45: 7 copies, so that every face lies within 22.5
    degrees of upright in one of them; MTCNN finds faces to about 30), its faces are mapped back
    (boxes in each face's own frame, rolls less the copy's turn) and merged by one NMS across the
    copies among faces of about the same roll. A face can come back twice, the right way up and
    upside down (MTCNN's nets fire on upside-down faces too, and place its keypoints as if
    upright): FacePredictor.detect keeps the one the landmark model scores higher.
    `always=False` looks at the turned copies only when the upright image shows no face, or a face
    the detector scores below `sure_score` (a detector whose readings of faces turned past its
    range score lower, as BlazeFace's do: docs/detectors.md): the upright detector's time on most
    upright photos, but a turned face beside a surely upright one is missed.
    `keep_rolls=False` merges by one plain NMS whatever the roll, for a detector that scores a
    face highest in the copy where it is most upright (BlazeFace, measured in docs/detectors.md):
    its other readings go there, with no landmark pass to settle them."""

    def __init__(self, detector: FaceDetector, always: bool = True, step_deg: float = 45.0, overlap: float = 0.3,
                 keep_rolls: bool = True, sure_score: float = 0.0, name: str = ""):
        self.detector, self.always, self.overlap, self.keep_rolls = detector, always, overlap, keep_rolls
        self.sure_score = sure_score
        self.turns = np.arange(step_deg, 360.0, step_deg)  # the copies' turns, degrees
        self.name = name or (detector.name.removesuffix("_upright") + ("" if step_deg == 45 else f"_every_{step_deg:g}")
                             + ("" if always else "_when_none"))
        self.box_fit, self.max_side = detector.box_fit, detector.max_side

    def __call__(self, image: np.ndarray) -> Detections:
        # downscaled once, before turning: a 12-megapixel photo is not turned at full size
        small, factor = _downscaled(image, self.detector.max_side)
        found = [self.detector(small)]
        if self.always or len(found[0]) == 0 or found[0].scores.min() < self.sure_score:
            found += [self._turned(small, angle) for angle in self.turns]
        merged = Detections(np.concatenate([f.boxes for f in found]) * factor, np.concatenate([f.scores for f in found]),
                            (np.concatenate([f.rolls for f in found]) + 180) % 360 - 180)
        return merged[same_roll_nms(merged, self.overlap, 45.0 if self.keep_rolls else 360.0)]

    def _turned(self, image: np.ndarray, angle: float) -> Detections:
        """The detector's faces on the image turned by `angle`, in the image's own pixels."""
        turned, matrix = turn_image(image, angle)
        found = self.detector(turned)
        centres, sizes = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2, found.boxes[:, 2:] - found.boxes[:, :2]
        centres = apply_affine(centres, invert_affine(matrix))
        # a face of roll r turns to r + angle in the copy
        return Detections(np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1), found.scores,
                          found.rolls - angle)


def same_roll_nms(found: Detections, overlap: float, max_roll_deg: float = 45.0) -> np.ndarray:
    """Indices kept, best score first, by NMS in which a box goes only when a better one of about
    the same roll (within max_roll_deg) overlaps it by more than `overlap` (IoU): detections of
    one face at rolls max_roll_deg or more apart are different readings, left for the landmark
    model to settle."""
    iou = box_iou(found.boxes, found.boxes)
    keep = []
    for i in np.argsort(-found.scores, kind="stable"):
        if not any(iou[i, j] > overlap and abs((found.rolls[i] - found.rolls[j] + 180) % 360 - 180) < max_roll_deg
                   for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def _dlib_boxes(rects: list, scores: np.ndarray, factor: float) -> Detections:
    if not rects:
        return Detections.upright(np.zeros((0, 4)), np.zeros(0))
    boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64) * factor
    order = np.argsort(-scores)
    return Detections.upright(boxes[order], scores[order])


DETECTORS = {
    # every face at any roll (copies every 45 degrees: MTCNN finds faces within about 30 of upright)
    "mtcnn": lambda: AnyAngle(MtcnnDetector()),
    "mtcnn_when_none": lambda: AnyAngle(MtcnnDetector(), always=False),  # upright speed on upright photos
    # half the copies; misses some faces turned near 45 degrees
    "mtcnn_every_90": lambda: AnyAngle(MtcnnDetector(), step_deg=90),
    "mtcnn_upright": MtcnnDetector,
    # MTCNN made cheaper: photos downscaled to 320 px and faces from 40 px there (an eighth of the photo's longer
    # side): half the pyramid's time, every face of the test sets still found (docs/detectors.md#the-candidates-side-by-side)
    "mtcnn_upright_fast": lambda: MtcnnDetector(max_side=320, min_face=40, name="mtcnn_upright_fast"),
    # the default. BlazeFace reads the roll of faces within about 60 degrees of upright, so copies every 120
    # degrees suffice, and they are looked at only when the upright photo shows no face or one BlazeFace is
    # unsure of (below 0.87: each reading of a face turned past its range on the validation photos scored
    # below 0.86, while 95 % of upright faces score above)
    "blazeface": lambda: AnyAngle(BlazeFaceDetector(), step_deg=120, keep_rolls=False, always=False, sure_score=0.87,
                                  name="blazeface"),
    "blazeface_every_120": lambda: AnyAngle(BlazeFaceDetector(), step_deg=120, keep_rolls=False),  # copies always
    "blazeface_every_90": lambda: AnyAngle(BlazeFaceDetector(), step_deg=90, keep_rolls=False),
    "blazeface_every_45": lambda: AnyAngle(BlazeFaceDetector(), step_deg=45, keep_rolls=False,
                                           name="blazeface_every_45"),
    "blazeface_upright": BlazeFaceDetector,
    # full range, upright: faces down to about 25 px in a 400 px photo, but misses some that fill it (docs/detectors.md)
    "blazeface_full_upright": BlazeFaceFullRangeDetector,
    "haar": HaarDetector, "dlib_hog": DlibHogDetector, "dlib_cnn": DlibCnnDetector,
}


def make_detector(name: str = "blazeface") -> FaceDetector:
    """The detector of a --detector option: a name of DETECTORS, or a checkpoint of
    tools/train_detector.py (heatnet's own detector, CentreNetDetector); ConfigError otherwise."""
    if name.endswith(".pt"):
        if not Path(name).is_file():
            raise ConfigError(f"--detector {name}: no such detector checkpoint")
        from heatnet.centre_detector import CentreDetector  # its model code only when asked for

        return CentreNetDetector(CentreDetector.load(Path(name)), name=name)
    if name not in DETECTORS:
        raise ConfigError(f"--detector {name}: choose from {', '.join(DETECTORS)}, or a detector checkpoint (.pt)")
    return DETECTORS[name]()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of (N, 4) and (M, 4) boxes."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def match_face(boxes: np.ndarray, points: np.ndarray, visibility: np.ndarray, min_iou: float = 0.3) -> int | None:
    """Index of the detection that best overlaps a face's landmark box, or None (a miss)."""
    if len(boxes) == 0:
        return None
    iou = box_iou(boxes, landmark_box(points, visibility)[None])[:, 0]
    best = int(np.argmax(iou))
    return best if iou[best] >= min_iou else None


def fit_box(detector: FaceDetector, source, limit: int = 0) -> tuple[BoxFit, int, int]:
    """The BoxFit of `detector` on a landmark source: medians over the faces it finds; returns
    (fit, faces matched, faces missed)."""
    ratios, missed = [], 0
    for index in range(min(limit or len(source), len(source))):
        sample = source[index]
        boxes = detector(sample.image).boxes
        match = match_face(boxes, sample.points, sample.visibility)
        if match is None:
            missed += 1
            continue
        (centre,), (side,) = box_centres_and_sides(boxes[match:match + 1])
        truth = landmark_box(sample.points, sample.visibility)
        offset = ((truth[:2] + truth[2:]) / 2 - centre) / side
        ratios.append([max(truth[2] - truth[0], truth[3] - truth[1]) / side, *offset])
    if not ratios:
        raise ConfigError(f"{detector.name} found none of the faces")
    scale, dx, dy = np.median(np.array(ratios), axis=0)
    return BoxFit(round(float(scale), 3), round(float(dx), 3), round(float(dy), 3)), len(ratios), missed
