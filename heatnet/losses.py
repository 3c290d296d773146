"""Losses. Each holds its codec, makes its own targets from (points, visibility) on the outputs'
device, weights every point by its visibility, and says how to turn outputs into what the
codec decodes (`activate`), so training and decoding cannot disagree.

    loss(outputs, points (B, K, 2) input pixels, visibility (B, K)) -> scalar
    points, scores = loss.codec.decode(loss.activate(outputs))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from heatnet.codecs import (AxisHeatmaps, CoordinatesWithScale, GaussianHeatmap, HeatmapOffsets, NormalisedCoordinates,
                            offsets_at, to_input_coords)
from heatnet.errors import ConfigError


def _weighted_mean(per_point: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of (B, K) per-point losses over points with weight > 0; zero when none."""
    return (per_point * weights).sum() / weights.sum().clamp_min(1.0)


def _normalised_targets(targets: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) Gaussians -> distributions over H x W (a target fully off the map stays 0)."""
    return targets / targets.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]


def _log_softmax2d(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.log_softmax(logits.flatten(2).float() / temperature, dim=-1).view_as(logits)


class CodecLoss(nn.Module):
    """Base: holds the codec; the outputs are decoded as they are."""

    codec_type: type = GaussianHeatmap

    def __init__(self, codec):
        super().__init__()
        if not isinstance(codec, self.codec_type):
            raise ConfigError(f"{type(self).__name__} needs a {self.codec_type.__name__} codec, not "
                              f"{type(codec).__name__}: heatmap losses (HeatmapKL, HeatmapMSE, HeatmapJS, AdaptiveWing, "
                              f"IntegralLoss) go with heatmap models, AxisKL with AxisHeatmaps (SimCC), OffsetLoss with "
                              f"HeatmapOffsets, coordinate losses (L1, SmoothL1, MSE, Wing, RLE) with regression models")
        self.codec = codec

    def activate(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float()


class SoftmaxLoss(CodecLoss):
    """Base for losses on logits: the decoded heatmap is their spatial softmax at `temperature`."""

    temperature = 1.0

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return _log_softmax2d(logits, self.temperature).exp()


class HeatmapKL(SoftmaxLoss):
    """KL(target || softmax(logits / T)) per point, the target the normalised Gaussian.
    Equals the soft-target cross-entropy minus the target entropy."""

    def __init__(self, codec: GaussianHeatmap, temperature: float = 1.0):
        super().__init__(codec)
        self.temperature = temperature

    def forward(self, logits: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        return _weighted_mean(_kl_to_targets(logits, targets, self.temperature), weights)


def _kl_to_targets(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(B, K) KL(normalised Gaussian targets || softmax(logits / T)) over each (H, W) map."""
    q = _normalised_targets(targets)
    return (torch.xlogy(q, q) - q * _log_softmax2d(logits, temperature)).flatten(2).sum(-1)


class HeatmapMSE(CodecLoss):
    """Mean squared error to the peak-1 Gaussian, per point over the map."""

    def forward(self, outputs: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        return _weighted_mean(((outputs.float() - targets) ** 2).flatten(2).mean(-1), weights)


def _js_divergence(log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(B, K) Jensen-Shannon divergence between exp(log_p) and q, both (B, K, H, W) distributions."""
    p = log_p.exp()
    m = 0.5 * (p + q)
    log_m = torch.log(m.clamp_min(1e-12))
    return 0.5 * ((p * (log_p - log_m)) + torch.xlogy(q, q) - q * log_m).flatten(2).sum(-1)


class HeatmapJS(SoftmaxLoss):
    """Jensen-Shannon divergence between softmax(logits) and the normalised Gaussian (DSNT)."""

    def forward(self, logits: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        return _weighted_mean(_js_divergence(_log_softmax2d(logits, 1.0), _normalised_targets(targets)), weights)


class AdaptiveWing(CodecLoss):
    """Adaptive Wing loss (Wang et al. 2019) on peak-1 heatmaps, with the weight map that
    multiplies the loss by 1 + w around each target (dilated foreground)."""

    def __init__(self, codec: GaussianHeatmap, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0,
                 theta: float = 0.5, foreground_weight: float = 10.0):
        super().__init__(codec)
        self.alpha, self.omega, self.epsilon, self.theta, self.fg = alpha, omega, epsilon, theta, foreground_weight

    def forward(self, outputs: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        y, weights = self.codec.encode(points, visibility)
        diff = (outputs.float() - y).abs()
        power = self.alpha - y
        ratio = self.theta / self.epsilon
        a = self.omega / (1 + ratio**power) * power * ratio ** (power - 1) / self.epsilon
        c = self.theta * a - self.omega * torch.log1p(ratio**power)
        loss = torch.where(diff < self.theta, self.omega * torch.log1p((diff / self.epsilon) ** power), a * diff - c)
        foreground = F.max_pool2d(y.flatten(0, 1).unsqueeze(1), 3, 1, 1).view_as(y) > 0.2
        loss = loss * (1 + self.fg * foreground)
        return _weighted_mean(loss.flatten(2).mean(-1), weights)


class IntegralLoss(SoftmaxLoss):
    """Integral regression (Sun et al. 2018; DSNT, Nibali et al. 2018): L1 between the soft-argmax
    of softmax(logits) and the point, in units of the input size, plus `js_weight` times the
    Jensen-Shannon regulariser toward the Gaussian."""

    js_weight = 1.0

    def __init__(self, codec: GaussianHeatmap, js_weight: float | None = None):
        super().__init__(codec)
        if js_weight is not None:
            self.js_weight = js_weight

    def forward(self, logits: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        log_p = _log_softmax2d(logits, 1.0)
        p = log_p.exp()
        h, w = p.shape[-2:]
        xs = torch.arange(w, device=p.device, dtype=p.dtype)
        ys = torch.arange(h, device=p.device, dtype=p.dtype)
        expected = torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], dim=-1)  # (B, K, 2)
        predicted = to_input_coords(expected, self.codec.stride)
        l1 = (predicted - points).abs().sum(-1) / self.codec.input_size
        js = _js_divergence(log_p, _normalised_targets(targets))
        return _weighted_mean(l1 + self.js_weight * js, weights)


class AxisKL(CodecLoss):
    """SimCC's loss: KL(label || softmax(logits / T)) per axis, the label the normalised 1-D
    Gaussian of heatnet.codecs.AxisHeatmaps; the two axes' divergences summed per point."""

    codec_type = AxisHeatmaps

    def __init__(self, codec: AxisHeatmaps, temperature: float = 1.0):
        super().__init__(codec)
        self.temperature = temperature

    def activate(self, logits: torch.Tensor) -> torch.Tensor:  # (B, K, 2N) -> per-axis probabilities
        return F.softmax(logits.float().unflatten(-1, (2, -1)) / self.temperature, dim=-1).flatten(-2)

    def forward(self, logits: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)  # (B, K, 2, N)
        q = targets / targets.sum(-1, keepdim=True).clamp_min(1e-12)
        log_p = F.log_softmax(logits.float().unflatten(-1, (2, -1)) / self.temperature, dim=-1)
        kl = (torch.xlogy(q, q) - q * log_p).sum(dim=(-2, -1))  # (B, K)
        return _weighted_mean(kl, weights)


class OffsetLoss(CodecLoss):
    """Heatmap plus offsets: the KL divergence of the score maps' spatial softmax from the
    normalised Gaussian (HeatmapKL's), plus `offset_weight` times the L1 of the x / y offsets
    (cell units) read at the point's cell; with neighbours (PIPNet), plus the mean L1 of the
    offsets to its labelled neighbours. PIPNet's own score loss, the squared error to a one-hot
    cell, did not learn at stride 4 (docs/coordinate_heads.md)."""

    codec_type = HeatmapOffsets

    def __init__(self, codec: HeatmapOffsets, offset_weight: float = 1.0):
        super().__init__(codec)
        self.offset_weight = offset_weight

    def activate(self, outputs: torch.Tensor) -> torch.Tensor:  # spatial softmax of the score maps only
        score_logits, x_offsets, y_offsets = self.codec.split(outputs.float())
        return torch.cat([_log_softmax2d(score_logits, 1.0).exp(), x_offsets, y_offsets], dim=1)

    def forward(self, outputs: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        (targets, cells, offsets), weights = self.codec.encode(points, visibility)
        score_logits, x_offsets, y_offsets = self.codec.split(outputs.float())  # (B, K, H, W), 2 x (B, K (1 + N), H, W)
        errors = (offsets_at(x_offsets, y_offsets, cells) - offsets).abs().sum(-1)  # (B, K, 1 + N)
        offset_l1 = errors[..., 0]
        if self.codec.neighbours:  # those labelled count, each point's mean over its N
            labelled = visibility[:, self.codec.targets_of(points.shape[1])[:, 1:]]  # (B, K, N)
            offset_l1 = offset_l1 + (errors[..., 1:] * labelled).mean(-1)
        return _weighted_mean(_kl_to_targets(score_logits, targets) + self.offset_weight * offset_l1, weights)


class IntegralL1(IntegralLoss):
    """Integral regression without the DSNT regulariser: the L1 of the soft-argmax alone."""

    js_weight = 0.0

# --- Coordinate regression -------------------------------------------------------------------
class CoordinateLoss(CodecLoss):
    """Base for direct regression on normalised coordinates; subclasses define `elementwise`."""

    codec_type = NormalisedCoordinates

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, outputs: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        return _weighted_mean(self.elementwise(outputs.float() - targets).sum(-1), weights)


class L1(CoordinateLoss):
    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class SmoothL1(CoordinateLoss):
    def __init__(self, codec: NormalisedCoordinates, beta: float = 0.02):
        super().__init__(codec)
        self.beta = beta

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(diff, torch.zeros_like(diff), reduction="none", beta=self.beta)


class MSE(CoordinateLoss):
    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff**2


class Wing(CoordinateLoss):
    """Wing loss (Feng et al. 2018); omega and epsilon in normalised units (1 = half the input),
    the defaults being the paper's 10 and 2 pixels at 128 px input."""

    def __init__(self, codec: NormalisedCoordinates, omega: float = 10 / 64, epsilon: float = 2 / 64):
        super().__init__(codec)
        self.omega, self.epsilon = omega, epsilon
        self.c = omega - omega * math.log1p(omega / epsilon)

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        x = diff.abs()
        return torch.where(x < self.omega, self.omega * torch.log1p(x / self.epsilon), x - self.c)


class RLE(CoordinateLoss):
    """Residual log-likelihood estimation (Li et al. 2021): the model predicts per point (x, y)
    and a raw scale per axis (B, K, 4); sigma = sigmoid(raw). The residual divided by sigma is
    scored under a learned 2-D flow density (the model's `flow`, a RealNVP, so that the
    optimizer and checkpoints hold it) times a Laplace residual term; trained by its negative
    log-likelihood. The decoded score is 1 - mean sigma, a per-point confidence."""

    codec_type = CoordinatesWithScale

    def __init__(self, codec: CoordinatesWithScale, flow: nn.Module):
        super().__init__(codec)
        self.flow = flow  # the model's: its parameters train and save with the model's

    def activate(self, outputs: torch.Tensor) -> torch.Tensor:  # (B, K, 4): (x, y, sigma_x, sigma_y)
        outputs = outputs.float()
        return torch.cat([outputs[..., :2], outputs[..., 2:].sigmoid()], dim=-1)

    def forward(self, outputs: torch.Tensor, points: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        targets, weights = self.codec.encode(points, visibility)
        activated = self.activate(outputs)
        sigma = activated[..., 2:] + 1e-9
        scaled = (activated[..., :2] - targets) / sigma  # (B, K, 2)
        log_flow = self.flow.log_prob(scaled.flatten(0, 1)).view(scaled.shape[:-1])  # (B, K)
        log_laplace = -(torch.log(2 * sigma) + scaled.abs()).sum(-1)
        nll = torch.log(sigma).sum(-1) - log_flow - log_laplace
        return _weighted_mean(nll, weights)


# The types of a loss setting: a loss class, built by the experiment around its codec.
HeatmapLossClass = (type[HeatmapKL] | type[HeatmapMSE] | type[HeatmapJS] | type[AdaptiveWing] | type[IntegralLoss]
                    | type[IntegralL1] | type[AxisKL] | type[OffsetLoss])
CoordinateLossClass = type[L1] | type[SmoothL1] | type[MSE] | type[Wing] | type[RLE]
