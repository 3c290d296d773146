"""A method: the model and the loss an experiment's build() makes, and the settings it reads.

    settings = HeatmapSettings(input_size=160, sigma=1.0, loss=HeatmapJS)
    def build(s: HeatmapSettings, scheme) -> Method:
        codec = GaussianHeatmap(s.input_size, s.stride, s.sigma, s.decoder)
        return Method(HeatmapModel(scheme.num_points, s.architecture, s.encoder, s.channels, s.stride), s.loss(codec))

The settings every experiment shares are heatnet.config.Settings (torch-free, for --help); the
fields here are the ones a heatmap or a coordinate-regression build() reads. An experiment with
settings of its own subclasses one of these (experiments/regression_resnet18.py adds --blurpool).
"""
from __future__ import annotations

from dataclasses import dataclass

import segmentation_models_pytorch as smp
import torch
from torch import nn

from heatnet.codecs import AxisHeatmaps, Decoder, GaussianHeatmap, HeatmapOffsets, SoftArgmax, nearest_neighbours
from heatnet.config import OneOf, Range, Settings, setting
from heatnet.errors import ConfigError
from heatnet.losses import L1, AxisKL, CoordinateLossClass, HeatmapKL, HeatmapLossClass, OffsetLoss
from heatnet.models import Architecture, AxisModel, HeatmapModel
from heatnet.shape_model import ShapeModel


@dataclass
class Method:
    """A model and its loss; the loss holds the codec that makes targets and decodes outputs."""

    model: nn.Module
    loss: nn.Module

    @property
    def codec(self):
        return self.loss.codec

    def decode(self, outputs: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Model outputs -> (points (B, K, 2) in input pixels, scores (B, K))."""
        return self.codec.decode(self.loss.activate(outputs), decoder)


@dataclass
class HeatmapSettings(Settings):
    """What a heatmap method's build() reads: an smp model predicting one heatmap per point."""

    architecture: Architecture = setting(smp.Unet, "the smp architecture")
    encoder: str = setting("resnet18", "any smp encoder name")
    stride: int = setting(4, "heatmap stride: it must divide input_size", OneOf((1, 2, 4)))
    sigma: float = setting(1.5, "target Gaussian std in heatmap pixels", Range(0, 64, open_low=True))
    loss: HeatmapLossClass = setting(HeatmapKL, "the heatmap loss, built around the codec")
    decoder: Decoder = setting(SoftArgmax(window_radius=4), 'heatmaps -> points; keywords allowed: "Dark(blur=True)"')
    split_ratio: float = setting(2.0, "with --loss=AxisKL (SimCC): bins per input pixel", Range(0.5, 8))
    neighbours: int = setting(0, "with --loss=OffsetLoss: each point's cell also regresses the offsets of its N "
                              "nearest points in the 68-point mean shape, each point decoded as their mean (PIPNet)",
                              Range(0, 67))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_size % self.stride:
            raise ConfigError(f"--stride={self.stride}: must divide --input_size={self.input_size}")


@dataclass
class RegressionSettings(Settings):
    """What a coordinate-regression method's build() reads: the loss on normalised coordinates."""

    loss: CoordinateLossClass = setting(L1, "the coordinate loss")


def neighbours_in_mean_shape(num_points: int, count: int) -> tuple[tuple[int, ...], ...]:
    """Each point's `count` nearest points in the shipped 68-point mean shape (none for count 0)."""
    if count == 0:
        return ()
    if num_points != 68:
        raise ConfigError(f"--neighbours={count}: needs a mean shape, shipped for the 68-point layout only "
                          f"(this data has {num_points} points); use --neighbours=0")
    return nearest_neighbours(torch.from_numpy(ShapeModel.load().mean), count)


def smp_method(s: HeatmapSettings, num_points: int, **options) -> Method:
    """The smp model, codec and loss that heatmap settings name, by the loss's coordinate head:
    AxisKL: 1-D heatmaps per axis (SimCC) with labels as wide in input pixels as the 2-D ones;
    OffsetLoss: a score map plus x / y offsets per cell (PIPNet's head); any other: 2-D Gaussian
    heatmaps decoded by `s.decoder`. `options` go to the smp architecture."""
    model_options = dict(architecture=s.architecture, encoder=s.encoder, in_channels=s.channels, stride=s.stride,
                         **options)
    if s.loss is AxisKL:
        codec = AxisHeatmaps(s.input_size, s.split_ratio, sigma=s.sigma * s.stride * s.split_ratio)
        return Method(AxisModel(num_points, s.input_size, codec.bins, **model_options), s.loss(codec))
    if s.loss is OffsetLoss:
        codec = HeatmapOffsets(s.input_size, s.stride, s.sigma, neighbours_in_mean_shape(num_points, s.neighbours))
        return Method(HeatmapModel(num_points, maps_per_point=codec.maps_per_point, **model_options), s.loss(codec))
    codec = GaussianHeatmap(s.input_size, stride=s.stride, sigma=s.sigma, decoder=s.decoder)
    return Method(HeatmapModel(num_points, **model_options), s.loss(codec))
