"""Landmarks on photos: faces found by a detector, cropped as the model was trained (around the
landmark box the detector's box predicts, times the run's box_scale), predicted in batches and
mapped back to the photo's pixels.

    predictor = FacePredictor.from_checkpoint("runs/w300_unet_js/<time>/best.pt")  # or heatnet.load_pretrained()
    faces = predictor.predict_image(image)      # image: H x W x 3 uint8 RGB
    faces[0].points, faces[0].scores            # (K, 2) image pixels, (K,) heatmap peak per point
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from heatnet.config import Settings
from heatnet.method import Method
from heatnet.detect import (Detections, DlibHogDetector, FaceDetector, _dlib, box_iou, dlib_model_file, make_detector,
                            match_face)
from heatnet.mtcnn import nms
from heatnet.evaluation import load_trained
from heatnet.samples import images_to_device
from heatnet.crop import Crop, CropBox, centres_and_sides, face_frames, points_boxes, square_boxes
from heatnet.geometry import apply_affine, invert_affine, roll_degrees
from heatnet.metrics import LandmarkErrors
from heatnet.schemes import SCHEMES, LandmarkScheme
from heatnet.shipped import ASSETS, ShippedModel, resolve_model, shipped_min_score, shipped_refine  # noqa: F401 (their home before)

PRETRAINED = ShippedModel.ACCURATE.path
DUPLICATE_IOU = 0.3  # detections overlapping by more are one face
model_path = resolve_model  # the name the tools knew it by


def face_score(scores: np.ndarray) -> np.ndarray:
    """(..., K) per-point scores -> (...) face scores: the mean of the points' heatmap peaks, high
    on a face, low on a detector's false box (flat, spread-out heatmaps; heatnet.face_score)."""
    return np.asarray(scores).mean(axis=-1)


@dataclass
class Face:
    box: np.ndarray  # (4,) x0, y0, x1, y1: the detector's box (or the tracked one), image pixels
    detection_score: float  # the detector's own score (nan for a tracked face)
    points: np.ndarray  # (K, 2) image pixels
    scores: np.ndarray  # (K,) per-point confidence: the decoded heatmap's peak
    roll: float = 0.0  # degrees the face is turned counter-clockwise on screen (its eye line)

    @property
    def score(self) -> float:
        """How face-like the crop is to the model (face_score)."""
        return float(face_score(self.scores))


class Runtime(enum.Enum):
    """What runs the network on photos and video."""

    AUTO = "auto"  # onnxruntime on the CPU when it is installed (faster in every measured case), else PyTorch
    PYTORCH = "pytorch"
    ONNXRUNTIME = "onnxruntime"  # CPU only; the [onnx] extra


class FacePredictor:
    """A trained heatnet model and a face detector, from image to points."""

    def __init__(self, method: Method, settings: Settings, scheme: LandmarkScheme, device: torch.device | str = "cpu",
                 detector: FaceDetector | None = None, batch_size: int = 16, refine: int = 1, min_score: float = 0.0):
        self.method, self.settings, self.scheme = method, settings, scheme
        self.crop = Crop.of(settings)  # the run's own crop: the rule, scale, size and channels it trained on
        self.device, self.batch_size = torch.device(device), batch_size
        # passes that re-crop around the predicted points, as training cropped around the true
        # ones: a detector's box only approximates that crop
        self.refine = refine
        # refine passes turn each face upright by the roll of its points (measured: docs/any_angle.md)
        self.upright_crops = True
        self.min_score = min_score  # faces scoring lower are dropped as non-faces (0: none are)
        self.detector = detector or make_detector()  # BlazeFace at any roll: the measured best (docs/detectors.md)
        self.method.model.eval()
        self.onnx_session = None  # set by use_onnxruntime()
        self.runtime = Runtime.PYTORCH  # what runs the network (use_runtime)
        self.checkpoint: Path | None = None  # the file it was loaded from (keys the exported graph's cache)

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: torch.device | str = "cpu", detector: FaceDetector | None = None,
                        min_score: float | None = None, refine: int | None = None) -> FacePredictor:
        """`min_score` None: a shipped model's chosen threshold for it, 0 (keep every face) for
        other checkpoints, whose score scale depends on their loss (tools/choose_min_score.py).
        `refine` None: a shipped model's own (heatnet.shipped.ShippedModel.refine), else 1."""
        path = resolve_model(path)  # a shipped model's name or a run folder too
        method, settings, state = load_trained(path, device)
        min_score = shipped_min_score(path) if min_score is None else min_score
        refine = shipped_refine(path) if refine is None else refine
        predictor = cls(method, settings, SCHEMES[state["scheme"]], device, detector, refine=refine,
                        min_score=min_score)
        predictor.checkpoint = Path(path)
        return predictor

    def use_onnxruntime(self, threads: int = 0) -> None:
        """Run the network and decoder in onnxruntime on the CPU instead of PyTorch (faster in every
        case measured: docs/shipped_model.md). The graph is exported once per checkpoint and kept
        (heatnet.export.onnx_graph); exporting moves the model to the CPU."""
        from heatnet.export import onnx_session

        self.onnx_session = onnx_session(self.method, self.settings, self.checkpoint, threads)

    def use_runtime(self, runtime: Runtime, threads: int = 0) -> Runtime:
        """Choose what runs the network (Runtime.AUTO: onnxruntime on a CPU when installed);
        returns the one in use. ImportError when onnxruntime is asked for and not installed."""
        if runtime is Runtime.AUTO:
            try:
                import onnxruntime  # noqa: F401
                runtime = Runtime.ONNXRUNTIME if self.device.type == "cpu" else Runtime.PYTORCH
            except ImportError:
                runtime = Runtime.PYTORCH
        if runtime is Runtime.ONNXRUNTIME:
            self.use_onnxruntime(threads)
        self.runtime = runtime
        return runtime

    def network(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, S, S) uint8 crops -> points (N, K, 2) in crop pixels and scores (N, K), float32.
        Arrays in and out: a face costs onnxruntime a few milliseconds, and tensor round trips
        around it would add one more."""
        if self.onnx_session is not None:
            points, scores = self.onnx_session.run(None, {"images": images.astype(np.float32) / 255})
            return points, scores
        with torch.no_grad():
            points, scores = self.method.decode(self.method.model(images_to_device(torch.from_numpy(images), self.device)))
        return points.float().cpu().numpy(), scores.float().cpu().numpy()

    def crops(self, image: np.ndarray, boxes: np.ndarray, rolls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, S, S) uint8 crops of the run's crop rule around crop `boxes` (N, 4), each face
        turned upright by its roll (N,) degrees (none: 0), and their (N, 2, 3) original -> input
        affines: exactly the dataset's crops of the same boxes at roll 0."""
        rolls = np.zeros(len(boxes)) if rolls is None else rolls
        affines = np.stack([self.crop.matrix(box, roll=roll) for box, roll in zip(boxes, rolls)])
        crops = np.stack([self.crop.pixels(image, matrix) for matrix in affines])  # (N, S, S, C)
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2)), affines

    def crop_boxes(self, image: np.ndarray, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) crop boxes and (N,) rolls for a detector's faces, by the rule the model was
        trained with: the landmark box the detection predicts (LANDMARKS), the detection itself,
        as annotation face boxes are detections (ANNOTATION), or the whole image, upright (IMAGE)."""
        if self.crop.rule is CropBox.IMAGE:
            return np.repeat(Crop.image_box(image.shape)[None], len(detections), axis=0), np.zeros(len(detections))
        if self.crop.rule is CropBox.ANNOTATION:
            return detections.boxes, detections.rolls
        return square_boxes(*self.detector.box_fit.landmark_boxes(detections.boxes, detections.rolls)), detections.rolls

    def predict_crop_boxes(self, image: np.ndarray, boxes: np.ndarray, refine: int = 0,
                           rolls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, K, 2) in image pixels and scores (N, K) of the faces cropped on `boxes`
        (N, 4) turned upright by `rolls` (N,); then `refine` passes cropped again around the
        predicted points, as training cropped around the true ones (models trained on landmark
        boxes only), each turned upright by the roll of its points (heatnet.crop.face_frames)."""
        return self.predict_many([image], [boxes], refine, None if rolls is None else [rolls])[0]

    def predict_many(self, images: list[np.ndarray], boxes: list[np.ndarray], refine: int = 0,
                     rolls: list[np.ndarray] | None = None) -> list[tuple]:
        """predict_crop_boxes over several images at once: the faces of all of them share batches
        (of self.batch_size), so photos with one face each still fill a batch. One (points,
        scores) pair per image."""
        rolls = rolls or [np.zeros(len(b)) for b in boxes]
        results = self._predict_once(images, boxes, rolls)
        for _ in range(refine if self.crop.rule is CropBox.LANDMARKS else 0):
            frames = [self.face_frames(points) for points, _ in results]
            results = self._predict_once(images, [b for b, _ in frames], [r for _, r in frames])
        return results

    def face_frames(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) crop boxes and (N,) rolls around faces' (N, K, 2) points: upright crops when
        self.upright_crops (heatnet.crop.face_frames), else their boxes as they lie, roll 0."""
        if self.upright_crops:
            return face_frames(points, self.scheme.norm_pair)
        return points_boxes(points), np.zeros(len(points))

    def _predict_once(self, images: list[np.ndarray], boxes: list[np.ndarray],
                      rolls: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        crops = [self.crops(image, b, r) for image, b, r in zip(images, boxes, rolls) if len(b)]
        counts = [len(b) for b in boxes]
        k = self.scheme.num_points
        if not crops:
            return [(np.zeros((0, k, 2)), np.zeros((0, k))) for _ in images]
        all_images = np.concatenate([c for c, _ in crops])  # (F, C, S, S)
        to_image = invert_affine(np.concatenate([a for _, a in crops]))  # (F, 2, 3) input -> original pixels
        points, scores = [], []
        for start in range(0, len(all_images), self.batch_size):
            pred, score = self.network(all_images[start:start + self.batch_size])
            points.append(apply_affine(pred, to_image[start:start + self.batch_size]))  # (B, K, 2)
            scores.append(score)
        ends = np.cumsum(counts)[:-1]
        return list(zip(np.split(np.concatenate(points), ends), np.split(np.concatenate(scores), ends)))

    def predict_boxes(self, image: np.ndarray, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """Points and scores of the detector's faces."""
        return self.predict_detections([image], [detections])[0]

    def predict_detections(self, images: list[np.ndarray], detections: list[Detections]) -> list[tuple]:
        """predict_boxes over several images, their faces batched together."""
        frames = [self.crop_boxes(image, d) for image, d in zip(images, detections)]
        return self.predict_many(images, [b for b, _ in frames], self.refine, [r for _, r in frames])

    def roll(self, points: np.ndarray) -> np.ndarray:
        """(N, K, 2) points -> (N,) their faces' rolls in degrees (0 for a scheme without eyes)."""
        pair = self.scheme.norm_pair
        return np.zeros(len(points)) if pair is None else roll_degrees(points, pair)

    def detect(self, image: np.ndarray) -> Detections:
        """The detector's faces, each once: where detections overlap (AnyAngle's readings of one
        face at different rolls, the right way up and upside down), the one whose crop the model
        scores higher stays (one pass each, only for the overlapping ones)."""
        found = self.detector(image)
        iou = box_iou(found.boxes, found.boxes)
        np.fill_diagonal(iou, 0.0)
        contested = (iou > DUPLICATE_IOU).any(axis=1)
        if not contested.any():
            return found
        boxes, rolls = self.crop_boxes(image, found[contested])
        _, scores = self.predict_crop_boxes(image, boxes, rolls=rolls)
        keep = nms(found.boxes[contested], face_score(scores), DUPLICATE_IOU)
        return found[np.sort(np.concatenate([np.flatnonzero(~contested), np.flatnonzero(contested)[keep]]))]

    def predict_image(self, image: np.ndarray, min_score: float | None = None) -> list[Face]:
        """Every face the detector finds in an H x W x 3 uint8 RGB image whose face score reaches
        `min_score` (default: the predictor's; 0 keeps every detection); none: an empty list."""
        found = self.detect(image)
        points, scores = self.predict_boxes(image, found)
        faces = [Face(box, float(d), p, s, float(r))
                 for box, d, p, s, r in zip(found.boxes, found.scores, points, scores, self.roll(points))]
        return [face for face in faces if face.score >= (self.min_score if min_score is None else min_score)]


class DlibPredictor:
    """dlib's 68-point shape predictor (an ensemble of regression trees, Kazemi and Sullivan 2014)
    behind FacePredictor's interface, for comparison on the same faces. It was fitted to dlib's
    HOG detector boxes, and trained on all of 300-W, its test images included."""

    def __init__(self, detector: FaceDetector | None = None):
        self.dlib = _dlib()
        self.shape_predictor = self.dlib.shape_predictor(dlib_model_file("shape_predictor_68_face_landmarks.dat"))
        self.detector = detector or DlibHogDetector()
        self.scheme, self.refine = SCHEMES["ibug68"], 0

    def detect(self, image: np.ndarray) -> Detections:
        return self.detector(image)

    def _predict_rects(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = np.ascontiguousarray(image)
        points = [[(p.x, p.y) for p in self.shape_predictor(image, self.dlib.rectangle(*np.round(box).astype(int))).parts()]
                  for box in boxes]
        points = np.array(points, np.float64).reshape(-1, 68, 2)
        return points, np.ones(points.shape[:2])

    def predict_boxes(self, image: np.ndarray, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """dlib predicts from its own detector's box, upright; another detector's box is first
        turned into the dlib HOG box of the same face (through both BoxFits)."""
        return self.predict_crop_boxes(image, square_boxes(*self.detector.box_fit.landmark_boxes(detections.boxes)))

    def predict_crop_boxes(self, image: np.ndarray, boxes: np.ndarray, refine: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """From landmark boxes (N, 4): the HOG box that would have given them."""
        return self._predict_rects(image, DlibHogDetector.box_fit.detector_boxes(*centres_and_sides(boxes)))


@dataclass
class DetectorEvaluation:
    detected: LandmarkErrors  # predictions from the detector's crops, on the faces it found
    ground_truth_crops: LandmarkErrors  # the same faces cropped from their ground-truth landmark box
    missed: list[str]  # faces the detector did not find (no box overlapping the landmark box)
    detect_s: float  # detector time over all images
    faces: int  # annotated faces looked for (one sample each)
    face_scores: np.ndarray  # (found,) face_score of each found face, in the order of `detected`
    other_scores: np.ndarray  # face scores of the detections that match no annotated face


def evaluate_with_detector(predictor: FacePredictor, source, limit: int = 0, progress: str = "") -> DetectorEvaluation:
    """The full pipeline on an annotated split: detect, predict every detection, match each face
    to the detection that best overlaps its landmark box. Misses are counted, the other
    detections' face scores kept, and the same faces are also predicted from ground-truth crops,
    so the detector's cost is seen apart."""
    detected, truth_crops = LandmarkErrors(source.scheme), LandmarkErrors(source.scheme)
    missed, detect_s, face_scores, other_scores = [], 0.0, [], []
    count = min(limit or len(source), len(source))
    for index in tqdm(range(count), desc=progress, disable=not progress, leave=False):
        sample = source[index]
        start = time.perf_counter()
        found = predictor.detect(sample.image)
        detect_s += time.perf_counter() - start
        match = match_face(found.boxes, sample.points, sample.visibility)
        points, scores = predictor.predict_boxes(sample.image, found)
        other_scores += [face_score(s) for i, s in enumerate(scores) if i != match]
        if match is None:
            missed.append(sample.name)
            continue
        detected.add(points[match:match + 1], *_truth(sample))
        face_scores.append(face_score(scores[match]))
        truth_crops.add(_from_ground_truth_box(predictor, sample), *_truth(sample))
    return DetectorEvaluation(detected, truth_crops, missed, detect_s, count, np.array(face_scores),
                              np.array(other_scores))


def _truth(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sample's points (1, K, 2), visibility (1, K) and normaliser (1,), as LandmarkErrors.add takes them."""
    return sample.points[None], sample.visibility[None], np.array([sample.normaliser])


def _from_ground_truth_box(predictor, sample) -> np.ndarray:
    """(1, K, 2) points predicted from the crop the model's rule takes from the annotation (the
    landmark box of the visible true points by default), as the dataset crops it."""
    crop = getattr(predictor, "crop", Crop())  # dlib: from the landmark box
    return predictor.predict_crop_boxes(sample.image, crop.box(sample)[None])[0]


def evaluate_ground_truth_crops(predictor, source, progress: str = "") -> LandmarkErrors:
    """Every face of an annotated split predicted from its ground-truth landmark box (the crop rule
    of training and of the benchmark's tables): for predictors that are not heatnet models (dlib)."""
    errors = LandmarkErrors(source.scheme)
    for index in tqdm(range(len(source)), desc=progress, disable=not progress, leave=False):
        sample = source[index]
        errors.add(_from_ground_truth_box(predictor, sample), *_truth(sample))
    return errors
