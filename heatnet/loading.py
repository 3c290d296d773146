"""From settings to datasets and data loaders, the same for training, evaluation and benchmarks."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import torch

from heatnet.augment import Augmentation
from heatnet.config import ConfigError, InputPath, Settings
from heatnet.crop import CropBox
from heatnet.device_input import CanvasCache, Canvases, DeviceAugmentation
from heatnet.samples import FirstN, InMemory, LandmarkDataset, collate
from heatnet.datasets import load_folder, load_split
from heatnet.distributed import World, step_seed


class EpochSampler(torch.utils.data.Sampler):
    """A permutation fixed by (seed, epoch), from sample `start` on: a resumed epoch sees the
    same order as an uninterrupted one. In a distributed run each process takes its rank's
    share of every global batch (of `batch_size`) of that same order."""

    def __init__(self, length: int, seed: int, epoch: int, start: int = 0, world: World = World(),
                 batch_size: int = 1):
        self.length, self.seed, self.epoch, self.start = length, seed, epoch, start
        self.world, self.batch_size = world, batch_size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=g)[self.start :]
        if self.world.distributed:  # whole global batches only, (batches, processes, local batch) -> this rank's
            local = self.world.local_batch(self.batch_size)
            order = order[: len(order) // self.batch_size * self.batch_size].view(-1, self.world.size, local)
            order = order[:, self.world.rank].flatten()
        return iter(order.tolist())

    def __len__(self) -> int:
        remaining = max(self.length - self.start, 0)
        if self.world.distributed:
            return remaining // self.batch_size * self.world.local_batch(self.batch_size)
        return remaining


def augmentation_for(s: Settings) -> Augmentation:
    return Augmentation(rotation_deg=s.rotation_deg, scale_range=(1 - s.scale_jitter, 1 + s.scale_jitter),
                        shift=s.shift, mirror_prob=s.mirror_prob, color_prob=s.color_prob, blur_prob=s.blur_prob,
                        noise_prob=s.noise_prob, occlusion_prob=s.occlusion_prob, gray_prob=s.gray_prob)


def make_dataset(s: Settings, split: str, limit: int = 0, augment: bool = False,
                 complete_only: bool = False) -> LandmarkDataset:
    """One split of the settings' dataset as fixed-size crops (the first `limit` samples when
    limit > 0), with the training augmentation when `augment` and the settings allow it, and
    only its fully labelled samples when `complete_only`."""
    source = load_split(s.dataset, split, Path(s.data_root) if s.data_root else None, s.strict_data)
    return crops_of(source, s, f"{s.dataset}/{split}", limit, augment, complete_only)


def folder_dataset(s: Settings, folder: Path) -> LandmarkDataset:
    """A labelled folder of one's own (heatnet.datasets.load_folder) as the settings' crops."""
    return crops_of(load_folder(folder, s.strict_data), s, Path(folder).name)


def crops_of(source, s: Settings, name: str, limit: int = 0, augment: bool = False,
             complete_only: bool = False) -> LandmarkDataset:
    """A source of samples (named `name` in errors) as the settings' fixed-size crops."""
    if complete_only:
        if not hasattr(source, "complete"):
            raise ConfigError(f"--complete_only: {name} has no missing labels to leave out")
        source = source.complete()
        if not len(source):
            raise ConfigError(f"--complete_only: no sample of {name} has every point labelled")
    if limit:
        source = FirstN(source, limit)
    if s.cache_images:
        source = InMemory(source)
    if s.box is CropBox.ANNOTATION and not source.has_annotation_boxes:
        raise ConfigError(f"--box=annotation: {name} has no face boxes in its annotation "
                          f"(dlib XML and WFLW have them); use --box=landmarks")
    augmentation = augmentation_for(s) if augment and s.augment else None
    return LandmarkDataset(source, s.input_size, s.channels, s.box_scale, augmentation, s.seed, s.box)


def make_loader(dataset, s: Settings, sampler=None, drop_last: bool = False,
                batch_size: int = 0) -> torch.utils.data.DataLoader:
    """Batches of `dataset` (heatnet.samples.collate: an image that fails to decode is dropped from
    its batch and listed in batch["skipped"]) of `batch_size` (default: the settings')."""
    # Its own generator: a DataLoader otherwise draws its worker seed from torch's global
    # generator each time it is iterated, which a resumed run would replay differently.
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size or s.batch_size, sampler=sampler, num_workers=s.workers, drop_last=drop_last, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        generator=torch.Generator().manual_seed(s.seed),
        multiprocessing_context="fork" if s.workers and sys.platform == "linux" else None)


class TrainingInput:
    """A run's training batches, by the workers path or the device path (heatnet.device_input;
    --input_path), in EpochSampler's order: the same geometric draws either way, and the same
    batches after a resume. The device path cuts every canvas once, here, when they fit in
    --device_cache_gb, and keeps them on the device."""

    def __init__(self, dataset: LandmarkDataset, s: Settings, device: torch.device, world: World = World()):
        self.dataset, self.s, self.device, self.world = dataset, s, device, world
        self.path = s.input_path.on(device.type)
        self.augment: DeviceAugmentation | None = None
        self.cache: CanvasCache | None = None
        if self.path is InputPath.DEVICE:
            canvases = Canvases(dataset)
            self.augment = DeviceAugmentation(canvases, device)
            if CanvasCache.nbytes(len(canvases), canvases.size) <= s.device_cache_gb * 1e9:
                self.cache = CanvasCache(canvases, make_loader(canvases, s), device)

    def describe(self) -> str:
        if self.augment is None:
            return f"workers path ({self.s.workers} loader workers crop and augment)"
        canvases = self.augment.canvases
        kept = f"cached on {self.device}" if self.cache else f"decoded by {self.s.workers} workers each epoch"
        return f"device path ({len(canvases)} canvases of {canvases.size} px {kept}; crop and augmentation on {self.device})"

    def epoch(self, epoch: int, first_batch: int = 0, first_step: int = 0) -> Iterator[dict]:
        """The batches of `epoch` from its batch `first_batch` on, the first of them global step
        `first_step`; each holds image, points and visibility (see heatnet.samples.to_device_batch)."""
        s, world = self.s, self.world
        self.dataset.set_epoch(epoch)
        local = world.local_batch(s.batch_size)
        sampler = EpochSampler(len(self.dataset), s.seed, epoch, first_batch * s.batch_size, world, s.batch_size)
        if self.augment is None:
            yield from make_loader(self.dataset, s, sampler, drop_last=True, batch_size=local)
            return
        canvas_batches = (self.cache.batches(sampler, local) if self.cache else
                          make_loader(self.augment.canvases, s, sampler, drop_last=True, batch_size=local))
        for step, batch in enumerate(canvas_batches, first_step):
            # the appearance draws of a step: a function of its position, apart from its dropout seed
            yield self.augment(batch, step_seed(s.seed + 1, world.rank, step))
