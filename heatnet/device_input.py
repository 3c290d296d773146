"""The device input path (--input_path=device): training crops cut and augmented in batches on the
training device, so a GPU is not held back by per-sample work in the loader's processes.

    workers: decode each image and cut its *canvas* (`Canvases`): the axis-aligned square around
             the face box that holds every crop the augmentation can draw, at no coarser a
             resolution than the most zoomed-in crop; uint8 and of one size, so canvases batch.
    cache:   when all canvases fit in --device_cache_gb they are cut once and kept on the device
             (`CanvasCache`); from then on no worker runs.
    device:  per batch (`DeviceAugmentation`), one affine warp (grid_sample) from canvas to crop
             that carries the crop, rotation, zoom, shift and mirror drawn exactly as the workers
             path draws them (LandmarkDataset.draw), then colour, gray, blur, noise and occluders
             as batched tensor operations (`photometric`).

The workers path (heatnet.samples.LandmarkDataset: an OpenCV warp and albumentations, per sample)
stays the one for CPU training. Both give the same points (the same float64 affine) and crops equal
up to interpolation (the canvas is a second bilinear resampling); the appearance draws differ:
albumentations there, the tensor versions here, with the same probabilities and ranges (Gaussian
blur only: no motion blur; hue turned in YIQ space).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from heatnet.augment import Augmentation
from heatnet.crop import CropJitter
from heatnet.geometry import compose_affine, invert_affine, warp_to_crop
from heatnet.samples import LandmarkDataset, has_samples, items_or_errors

# RGB -> YIQ (the hue turn is a rotation of the I, Q chroma plane) and luminance weights
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
_LUMA = (0.299, 0.587, 0.114)


def canvas_margin(augmentation: Augmentation | None) -> float:
    """Canvas side over the unjittered crop side: room for the widest zoom, any turn, any shift."""
    if augmentation is None:
        return 1.0
    widest = augmentation.scale_range[1]
    turn = math.radians(min(abs(augmentation.rotation_deg), 45.0))  # a turned square spans side x (cos + sin)
    return widest * (math.cos(turn) + math.sin(turn)) + 2 * augmentation.shift * widest


def canvas_size(crop_size: int, augmentation: Augmentation | None) -> int:
    """Canvas pixels: the margin at the resolution of the most zoomed-in crop, up to a multiple of 8."""
    closest = augmentation.scale_range[0] if augmentation else 1.0
    return int(math.ceil(crop_size * canvas_margin(augmentation) / closest / 8) * 8)


class Canvases(torch.utils.data.Dataset):
    """A LandmarkDataset's samples as canvases: what the loader's workers do on the device path.
    Items: canvas (3, C, C) uint8, canvas_affine (2, 3) original -> canvas, box (4,) the crop's box,
    orig_points (K, 2), orig_visibility (K,), index ()."""

    def __init__(self, dataset: LandmarkDataset):
        if dataset.augmentation is None and dataset.jitter != CropJitter():
            raise ValueError("the device input path crops without augmentation only at the plain crop")
        self.dataset = dataset
        self.margin = canvas_margin(dataset.augmentation)
        self.size = canvas_size(dataset.size, dataset.augmentation)
        self.crop = replace(dataset.crop, size=self.size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices: list[int]) -> list[dict]:
        return items_or_errors(self, indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.dataset.source[index]
        box = self.dataset.crop.box(sample)
        matrix = self.crop.matrix(box, CropJitter(scale=self.margin))  # centred on the box, not turned
        canvas = warp_to_crop(sample.image, matrix, self.size)  # the same resampler as a crop
        return {"canvas": torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1))),
                "canvas_affine": torch.from_numpy(matrix), "box": torch.from_numpy(box),
                "orig_points": torch.from_numpy(sample.points.astype(np.float32)),
                "orig_visibility": torch.from_numpy(sample.visibility.astype(np.float32)),
                "index": torch.tensor(index)}


class CanvasCache:
    """Every canvas of `canvases` cut once, by the batches of `loader` (a DataLoader over it), and
    kept on `device`: canvases (N, 3, C, C) uint8 there, their geometry on the host. A sample whose
    image failed to decode is left out, and reported whenever a batch asks for it."""

    def __init__(self, canvases: Canvases, loader: Iterable[dict], device: torch.device):
        self.canvases = canvases
        self.rows = torch.full((len(canvases),), -1, dtype=torch.long)  # sample index -> row, -1: failed
        parts: list[dict] = []
        cached = 0
        for batch in loader:
            if has_samples(batch):
                self.rows[batch["index"]] = torch.arange(cached, cached + len(batch["index"]))
                cached += len(batch["index"])
                parts.append({**batch, "canvas": batch["canvas"].to(device)})
        if not parts:
            raise ValueError("no canvas could be cut: every image failed to decode")
        self.fields = {key: torch.cat([p[key] for p in parts]) for key in parts[0] if key != "skipped"}

    @staticmethod
    def nbytes(count: int, canvas_size: int) -> int:
        return count * 3 * canvas_size**2

    def batches(self, order: Iterable[int], batch_size: int) -> Iterator[dict]:
        """Whole batches of the samples in `order` (a sampler's), as a DataLoader over the canvases
        with drop_last gives them."""
        order = list(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            wanted = torch.tensor(order[start:start + batch_size])
            rows = self.rows[wanted]
            kept = rows[rows >= 0]
            batch = {key: value[kept.to(value.device)] for key, value in self.fields.items()} if len(kept) else {}
            batch["skipped"] = [f"{self.canvases.dataset.source.name_of(int(i))}: its image failed to decode when the "
                                f"canvases were cut" for i in wanted[rows < 0]]
            yield batch


def warp_batch(canvases: torch.Tensor, matrices: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, C, C) uint8 canvases through (B, 2, 3) float64 canvas -> crop affines ->
    (B, 3, size, size) float in [0, 1]: bilinear, black outside the canvas, as cv2.warpAffine."""
    batch, _, height, width = canvases.shape
    device = canvases.device

    def to_normalised(w: int, h: int) -> torch.Tensor:  # pixel centres -> grid_sample's [-1, 1] (align_corners=False)
        return torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]], dtype=torch.float64)

    square = torch.cat([matrices.cpu().double(), torch.tensor([[[0.0, 0, 1]]], dtype=torch.float64).expand(batch, 1, 3)], 1)
    # for each output pixel, where to read: normalised output -> crop pixels -> canvas pixels -> normalised input
    theta = to_normalised(width, height) @ torch.linalg.inv(square) @ torch.linalg.inv(to_normalised(size, size))
    grid = F.affine_grid(theta[:, :2].float().to(device), [batch, 3, size, size], align_corners=False)
    return F.grid_sample(canvases.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False).div_(255)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W), the weights of cv2's RGB -> gray."""
    r, g, b = images.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b)[:, None]


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Each image blurred with its own sigma (B,): a separable (2 radius + 1)-tap kernel."""
    batch, channels, height, width = images.shape
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-taps**2 / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # (B x C, taps)
    flat = F.pad(images.reshape(1, batch * channels, height, width), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=batch * channels)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=batch * channels)
    return flat.view(batch, channels, height, width)


def photometric(images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Colour jitter, gray, Gaussian blur, sensor noise and occluding rectangles on (B, 3, S, S)
    float images in [0, 1], each drawn per image with the augmentation's probabilities and the
    ranges of its albumentations pipeline (heatnet.augment)."""
    batch, _, size, _ = images.shape
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, *shape, generator=generator, device=device)

    def chance(p: float) -> torch.Tensor:  # (B, 1, 1, 1) bool
        return (torch.rand(batch, generator=generator, device=device) < p).view(-1, 1, 1, 1)

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.view(-1, 1, 1, 1)

    # colour: brightness, contrast, saturation (0.65-1.35) and hue (+-0.04 turn), as A.ColorJitter
    jittered = images * per_image(uniform(0.65, 1.35))
    mean = luminance(jittered).mean(dim=(2, 3), keepdim=True)
    jittered = (jittered - mean) * per_image(uniform(0.65, 1.35)) + mean
    gray = luminance(jittered)
    jittered = gray + (jittered - gray) * per_image(uniform(0.65, 1.35))
    angle = 2 * math.pi * uniform(-0.04, 0.04).double()
    turn = torch.zeros(batch, 3, 3, dtype=torch.float64, device=device)
    turn[:, 0, 0], turn[:, 1, 1], turn[:, 2, 2] = 1, torch.cos(angle), torch.cos(angle)
    turn[:, 1, 2], turn[:, 2, 1] = -torch.sin(angle), torch.sin(angle)
    yiq = _YIQ.to(device)
    hue = (torch.linalg.inv(yiq) @ turn @ yiq).to(images.dtype)  # (B, 3, 3) on RGB
    jittered = torch.einsum("bij,bjhw->bihw", hue, jittered).clamp_(0, 1)
    images = torch.where(chance(augmentation.color_prob), jittered, images)
    images = torch.where(chance(augmentation.gray_prob), luminance(images).expand_as(images), images)
    blurred = _gaussian_blur(images, uniform(0.3, 1.5))
    images = torch.where(chance(augmentation.blur_prob), blurred, images)
    noise = torch.randn(images.shape, generator=generator, device=device) * per_image(uniform(0.01, 0.06))
    images = torch.where(chance(augmentation.noise_prob), images + noise, images)
    # one or two rectangles of 10-30 % of the side each way, filled with uniform noise
    sides = (uniform(0.1, 0.3, 2, 2) * size).ceil()  # (B, holes, h/w)
    corners = (uniform(0, 1, 2, 2) * (size - sides + 1)).floor()
    holes = torch.stack([torch.ones(batch, device=device, dtype=torch.bool),
                         torch.rand(batch, generator=generator, device=device) < 0.5], 1)  # (B, holes)
    pixels = torch.arange(size, device=device)
    rows = (pixels >= corners[..., 0, None]) & (pixels < (corners + sides)[..., 0, None])  # (B, holes, S)
    cols = (pixels >= corners[..., 1, None]) & (pixels < (corners + sides)[..., 1, None])
    hidden = ((rows[..., :, None] & cols[..., None, :]) & holes[..., None, None]).any(1)[:, None]  # (B, 1, S, S)
    fill = torch.rand(images.shape, generator=generator, device=device)
    images = torch.where(hidden & chance(augmentation.occlusion_prob), fill, images)
    return images.clamp_(0, 1)


class DeviceAugmentation:
    """Canvas batches (from `CanvasCache` or a DataLoader over `Canvases`) -> training batches on
    `device`: image (B, C, S, S) float in [0, 1], channels-last; points (B, K, 2); visibility (B, K)."""

    def __init__(self, canvases: Canvases, device: torch.device):
        self.canvases, self.dataset, self.device = canvases, canvases.dataset, device

    def geometry(self, batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, 2, 3) canvas -> crop affines, (B, K, 2) points in crop pixels and (B, K) visibility,
        by the workers path's own draw and point mapping (float64)."""
        to_crop, points, visibility = [], [], []
        for i, index in enumerate(batch["index"].tolist()):
            _, jitter = self.dataset.draw(index)
            matrix = self.dataset.crop.matrix(batch["box"][i].numpy(), jitter)  # original -> crop
            p, v = self.dataset.crop_points(batch["orig_points"][i].numpy(), batch["orig_visibility"][i].numpy(),
                                            matrix, jitter.mirror)
            to_crop.append(compose_affine(matrix, invert_affine(batch["canvas_affine"][i].numpy())))
            points.append(p)
            visibility.append(v)
        return np.stack(to_crop), np.stack(points), np.stack(visibility)

    def __call__(self, batch: dict, seed: int) -> dict:
        """One batch; `seed` fixes its appearance draws (a resumed run draws the same)."""
        if not has_samples(batch):
            return batch
        to_crop, points, visibility = self.geometry(batch)
        images = warp_batch(batch["canvas"].to(self.device, non_blocking=True), torch.from_numpy(to_crop),
                            self.dataset.size)
        augmentation = self.dataset.augmentation
        if augmentation is not None:
            generator = torch.Generator(self.device).manual_seed(seed)
            images = photometric(images, augmentation, generator)
        if self.dataset.crop.channels == 1:
            images = luminance(images)
        return {"image": images.contiguous(memory_format=torch.channels_last),
                "points": torch.from_numpy(points.astype(np.float32)).to(self.device, non_blocking=True),
                "visibility": torch.from_numpy(visibility.astype(np.float32)).to(self.device, non_blocking=True),
                "index": batch["index"], "skipped": batch["skipped"]}

