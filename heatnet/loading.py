"""From settings to datasets and data loaders, the same for training, evaluation and benchmarks."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from heatnet.augment import Augmentation
from heatnet.config import ConfigError, Settings
from heatnet.crop import CropBox
from heatnet.samples import FirstN, InMemory, LandmarkDataset, collate
from heatnet.datasets import load_folder, load_split
from heatnet.distributed import World


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
