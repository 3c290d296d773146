"""From landmark sources to training batches on the device: image loading, face crop, augmentation.

A *source* is any sequence whose items are `Sample`s (an image and its landmarks in original
pixels): `RecordSource` reads annotated files, `heatnet.synthetic.SyntheticFaces` draws faces.
`LandmarkDataset` turns a source into fixed-size tensors for a DataLoader.
"""
from __future__ import annotations

import enum
import os
import warnings
from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np
import torch

from heatnet.augment import Augmentation
from heatnet.crop import Crop, CropBox, CropJitter
from heatnet.formats import Record
from heatnet.geometry import apply_affine, landmark_box, warp_to_crop
from heatnet.schemes import LandmarkScheme
from heatnet.errors import HeatnetError

cv2.setNumThreads(1)  # data-loader workers are the parallelism; cv2's own threads only contend


class ImageError(HeatnetError, OSError):
    """An image file is missing, unreadable or unusable; the message names the file."""

    same_in_every_process = False


def warn_skipped(where: str, problems: list[str]) -> None:
    """The one warning for skipped samples: where, how many, and the first reason."""
    if problems:
        warnings.warn(f"{where}: skipped {len(problems)} bad sample(s); first: {problems[0]}", stacklevel=3)


class Normaliser(enum.Enum):
    """The NME denominator; one kind for every image of a split."""

    INTER_OCULAR = "inter-ocular"  # distance between the scheme's outer eye corners
    BOX = "box"  # sqrt(width x height) of the landmark box

    def of(self, points: np.ndarray, visibility: np.ndarray, scheme: LandmarkScheme) -> float:
        if self is Normaliser.INTER_OCULAR:
            a, b = scheme.norm_pair
            return float(np.linalg.norm(points[a] - points[b]))
        x0, y0, x1, y1 = landmark_box(points, visibility)
        return float(np.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0)))


def choose_normaliser(scheme: LandmarkScheme, visibilities: Sequence[np.ndarray]) -> Normaliser:
    """Inter-ocular when the scheme has eye corners and every face shows both; else the box size
    for all faces (a split never mixes the two)."""
    pair = scheme.norm_pair
    if pair is not None and all(v[list(pair)].all() for v in visibilities):
        return Normaliser.INTER_OCULAR
    return Normaliser.BOX


@dataclass
class Sample:
    image: np.ndarray  # H x W x 3 uint8 RGB
    points: np.ndarray  # (K, 2) float32 original pixels
    visibility: np.ndarray  # (K,) float32
    normaliser: float  # NME denominator in original pixels (the source's Normaliser kind)
    name: str
    box: np.ndarray | None = None  # (4,) the box to crop around when the source fixes one (IMM nose tip)
    annotation_box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 face box from the annotation, if any


class LandmarkSource(Protocol):
    scheme: LandmarkScheme
    normaliser: Normaliser
    has_annotation_boxes: bool

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Sample: ...
    def name_of(self, index: int) -> str: ...


def to_rgb_uint8(image: np.ndarray, where: str = "image") -> np.ndarray:
    """Grayscale, RGBA, 16-bit and float images to H x W x 3 uint8 RGB."""
    if image is None or image.size == 0:
        raise ImageError(f"{where}: empty image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(np.nan_to_num(image.astype(np.float32)) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        image = image[:, :, :3]
    elif channels != 3:
        raise ImageError(f"{where}: {channels} channels, expected 1, 3 or 4")
    return np.ascontiguousarray(image)


def read_image(path, upright: bool = False) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB (grayscale, alpha and 16-bit converted); ImageError
    naming the file otherwise. Dataset images are read as stored, since their annotations are in
    stored pixels; `upright` applies the EXIF orientation, as a photo viewer shows a photo."""
    if not os.path.isfile(path):
        raise ImageError(f"{path}: image file not found")
    data = np.fromfile(path, dtype=np.uint8)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if upright else cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise ImageError(f"{path}: cannot decode image (corrupt or not an image)")
    if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV gives BGR(A)
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_rgb_uint8(image, str(path))


class RecordSource:
    """Samples from annotated records (image files, or inline pixels for Kaggle)."""

    def __init__(self, records: Sequence[Record], scheme: LandmarkScheme,
                 normalisers: Sequence[float] | None = None, boxes: Sequence[np.ndarray] | None = None,
                 normaliser: Normaliser | None = None):
        self.records = list(records)
        self.scheme = scheme
        self.boxes = boxes
        # Normalisers may come from a fuller annotation (e.g. the IMM nose tip uses its 58 points).
        if normalisers is not None:
            self.normaliser, self.normalisers = normaliser or Normaliser.INTER_OCULAR, list(normalisers)
        else:
            self.normaliser = choose_normaliser(scheme, [r.visibility for r in self.records])
            self.normalisers = [self.normaliser.of(r.points, r.visibility, scheme) for r in self.records]
        self.has_annotation_boxes = bool(self.records) and all(r.box is not None for r in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def name_of(self, index: int) -> str:
        return self.records[index].name

    def complete(self) -> RecordSource:
        """Only the records with every point labelled (what dropping incomplete rows does)."""
        keep = [i for i, r in enumerate(self.records) if r.visibility.all()]
        return RecordSource([self.records[i] for i in keep], self.scheme, [self.normalisers[i] for i in keep],
                            None if self.boxes is None else [self.boxes[i] for i in keep], self.normaliser)

    def __getitem__(self, index: int) -> Sample:
        r = self.records[index]
        image = to_rgb_uint8(r.pixels, r.name) if r.pixels is not None else read_image(r.image_path)
        box = self.boxes[index] if self.boxes is not None else None
        return Sample(image, r.points, r.visibility, self.normalisers[index], r.name, box, r.box)


class FirstN:
    """The first n samples of a source (quick runs, tests)."""

    def __init__(self, source: LandmarkSource, n: int):
        self.source, self.n, self.scheme = source, min(n, len(source)), source.scheme
        self.normaliser = source.normaliser
        self.has_annotation_boxes = getattr(source, "has_annotation_boxes", False)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.source[index]

    def name_of(self, index: int) -> str:
        return self.source.name_of(index)


class EditedPhotos:
    """A source whose every sample goes through `edit` (photos turned, shrunk, ...): the same
    samples and names, and no annotation boxes, which would no longer fit the edited faces."""

    has_annotation_boxes = False

    def __init__(self, source: LandmarkSource):
        self.source, self.scheme, self.normaliser = source, source.scheme, source.normaliser

    def edit(self, sample: Sample) -> Sample:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Sample:
        return self.edit(self.source[index])

    def name_of(self, index: int) -> str:
        return self.source.name_of(index)


class InMemory:
    """Every sample of a source decoded once, up front, and kept (small datasets: IMM's 240
    photos are 220 MB decoded). DataLoader workers forked later share the pages. An image that
    fails to decode raises its ImageError when its sample is asked for, as without the cache."""

    def __init__(self, source: LandmarkSource):
        self.source, self.scheme, self.normaliser = source, source.scheme, source.normaliser
        self.has_annotation_boxes = getattr(source, "has_annotation_boxes", False)
        self.samples: list[Sample | ImageError] = []
        for index in range(len(source)):
            try:
                self.samples.append(source[index])
            except ImageError as e:
                self.samples.append(e)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        sample = self.samples[index]
        if isinstance(sample, ImageError):
            raise sample
        return sample

    def name_of(self, index: int) -> str:
        return self.source.name_of(index)


# ImageNet statistics; gray inputs use their luminance mean.
MEAN = {3: (0.485, 0.456, 0.406), 1: (0.449,)}
STD = {3: (0.229, 0.224, 0.225), 1: (0.226,)}


class LandmarkDataset(torch.utils.data.Dataset):
    """Square face crops of `size` pixels with points in input pixels.

    Items: image (C, S, S) uint8, points (K, 2), visibility (K,), affine (2, 3) original->input,
    orig_points (K, 2), orig_visibility (K,), normaliser (), index (). Augmentation draws are a
    function of (seed, epoch, index) only, so they do not depend on the worker count."""

    def __init__(self, source: LandmarkSource, size: int = 128, channels: int = 3, box_scale: float = 1.25,
                 augmentation: Augmentation | None = None, seed: int = 0, box: CropBox = CropBox.LANDMARKS,
                 jitter: CropJitter = CropJitter()):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.source, self.crop = source, Crop(box, box_scale, size, channels)
        self.augmentation, self.seed = augmentation, seed
        self.jitter = jitter  # the crop of every sample without augmentation (moved crops measure shift robustness)
        self.scheme = source.scheme
        self.epoch = 0

    @property
    def size(self) -> int:
        return self.crop.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def crop_matrix(self, sample: Sample, jitter: CropJitter) -> np.ndarray:
        return self.crop.matrix(self.crop.box(sample), jitter)

    def draw(self, index: int) -> tuple[np.random.Generator, CropJitter]:
        """A sample's augmentation this epoch: its generator and geometric draw, a function of
        (seed, epoch, index) only, so the worker count and the input path do not change it."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return rng, self.augmentation.sample_jitter(rng) if self.augmentation else self.jitter

    def crop_points(self, points: np.ndarray, visibility: np.ndarray, matrix: np.ndarray,
                    mirror: bool) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) original points and (K,) visibility -> input pixels through `matrix` (float64),
        re-indexed by the flip map when mirrored, and not visible once outside the crop."""
        points = apply_affine(np.asarray(points, np.float64), matrix)
        visibility = np.array(visibility, np.float32)
        if mirror:
            flip = np.asarray(self.scheme.flip_map)
            points, visibility = points[flip], visibility[flip]
        inside = ((points >= -0.5) & (points <= self.size - 0.5)).all(axis=1)
        return points, visibility * inside

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """What a DataLoader fetches for a batch (see `items_or_errors`)."""
        return items_or_errors(self, indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.source[index]
        rng, jitter = self.draw(index)
        matrix = self.crop_matrix(sample, jitter)
        image = warp_to_crop(sample.image, matrix, self.size)
        points, visibility = self.crop_points(sample.points, sample.visibility, matrix, jitter.mirror)
        if self.augmentation:
            image = self.augmentation.appearance_transform(image, int(rng.integers(2**31)))
        image = self.crop.to_channels(image)  # after the colour augmentation, as a photo is turned grey
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "points": torch.from_numpy(points.astype(np.float32)),
            "visibility": torch.from_numpy(visibility.astype(np.float32)),
            # the mirror re-indexing is undone when mapping back: affine + flip permutation
            "affine": torch.from_numpy(matrix.astype(np.float32)),
            "mirrored": torch.tensor(jitter.mirror),
            "orig_points": torch.from_numpy(sample.points.astype(np.float32)),
            "orig_visibility": torch.from_numpy(sample.visibility.astype(np.float32)),
            "normaliser": torch.tensor(sample.normaliser, dtype=torch.float32),
            "index": torch.tensor(index),
        }


def items_or_errors(dataset: torch.utils.data.Dataset, indices: list[int]) -> list[dict]:
    """dataset[i] for each index. An image that passed the header check at load time but fails to
    decode now (a truncated JPEG) becomes {"index", "error"}, which `collate` drops from the batch
    and reports, instead of ending the run."""
    items = []
    for index in indices:
        try:
            items.append(dataset[index])
        except ImageError as e:
            items.append({"index": torch.tensor(index), "error": str(e)})
    return items


def collate(items: list[dict]) -> dict:
    """Stack the items that loaded; batch["skipped"] lists why the others did not. A batch whose
    every item failed holds only "skipped" (see `has_samples`)."""
    loaded = [item for item in items if "error" not in item]
    batch = torch.utils.data.default_collate(loaded) if loaded else {}
    batch["skipped"] = [item["error"] for item in items if "error" in item]
    return batch


def has_samples(batch: dict) -> bool:
    return "index" in batch  # every item has one; a batch of failed items holds only "skipped"


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    return tensor.to(device, non_blocking=True)  # from pinned memory, overlapping the next batch's loading


def images_to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, C, S, S) uint8 -> float [0, 1] on the device (converted there: 4x less to copy),
    channels-last (faster convolutions on CPU and GPU alike). Float images (the device input
    path's) are already in [0, 1]."""
    images = _to_device(images, device)
    if not images.is_floating_point():
        images = images.float().div_(255)
    return images.contiguous(memory_format=torch.channels_last)


def to_device_batch(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's images (see images_to_device), points and visibility on the device."""
    return (images_to_device(batch["image"], device), _to_device(batch["points"], device),
            _to_device(batch["visibility"], device))


def to_original(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Input-pixel points (B, K, 2) back to original pixels through the inverse of (B, 2, 3)."""
    lin = affine[:, :, :2]
    return torch.linalg.solve(lin, (points - affine[:, None, :, 2]).transpose(1, 2)).transpose(1, 2)
