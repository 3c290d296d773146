"""Codecs: landmarks <-> training targets, as encode/decode pairs on one object.

Dimension letters: B batch, K points, H x W heatmap, S input side.
Heatmap grid of stride s: x_hm = (x + 0.5) / s - 0.5, and back x = (x_hm + 0.5) * s - 0.5.
Everything is batched torch and runs on the tensors' device; no per-sample Python loops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def to_heatmap_coords(points: torch.Tensor, stride: int) -> torch.Tensor:
    return (points + 0.5) / stride - 0.5


def to_input_coords(points_hm: torch.Tensor, stride: int) -> torch.Tensor:
    return (points_hm + 0.5) * stride - 0.5


def gaussian_heatmaps(centres: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """Unnormalised Gaussians (peak 1 at a sub-pixel centre) for (B, K, 2) heatmap coordinates
    -> (B, K, H, W). Separable: two 1-D profiles and an outer product."""
    xs = torch.arange(width, device=centres.device, dtype=centres.dtype)
    ys = torch.arange(height, device=centres.device, dtype=centres.dtype)
    gx = torch.exp(-((xs - centres[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, K, W)
    gy = torch.exp(-((ys - centres[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, K, H)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) -> integer (x, y) of the maximum (B, K, 2) as long, and its value (B, K).
    Row maxima first, then one row: a flat max-with-index over H * W is several times slower."""
    scores, y = heatmaps.amax(dim=-1).max(dim=-1)  # (B, K)
    row = heatmaps.gather(2, y[..., None, None].expand(*y.shape, 1, heatmaps.shape[-1])).squeeze(2)
    return torch.stack([row.argmax(dim=-1), y], dim=-1), scores


def _patch(maps: torch.Tensor, centre: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Square patches of side 2 * radius + 1 around integer (B, K, 2) centres of (B, K, H, W) maps.

    Returns values (B, K, P, P) with indices clamped to the map (i.e. replicated borders), and
    the patch's x and y coordinates (B, K, P) before clamping."""
    h, w = maps.shape[-2:]
    taps = torch.arange(-radius, radius + 1, device=maps.device)
    xs = centre[..., 0:1] + taps  # (B, K, P)
    ys = centre[..., 1:2] + taps
    flat = ys.clamp(0, h - 1).unsqueeze(-1) * w + xs.clamp(0, w - 1).unsqueeze(-2)  # (B, K, P, P)
    values = maps.flatten(2).gather(2, flat.flatten(2)).view(flat.shape)
    return values, xs, ys


def _gaussian_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    return kernel / kernel.sum()


# --- Decoders: (heatmaps (B, K, H, W), sigma) -> (heatmap coords (B, K, 2) float, scores (B, K)) ---
@dataclass(frozen=True)
class Argmax:
    """Integer location of the maximum: error up to half a heatmap pixel per axis."""

    def __call__(self, heatmaps: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        xy, scores = heatmap_argmax(heatmaps)
        return xy.to(heatmaps.dtype), scores


@dataclass(frozen=True)
class QuarterOffset:
    """Argmax moved a quarter pixel toward the higher neighbour on each axis (Newell et al.)."""

    def __call__(self, heatmaps: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        xy, scores = heatmap_argmax(heatmaps)
        v, xs, ys = _patch(heatmaps, xy, 1)  # v[..., dy + 1, dx + 1]
        h, w = heatmaps.shape[-2:]
        dx = torch.sign(v[..., 1, 2] - v[..., 1, 0]) * ((xy[..., 0] > 0) & (xy[..., 0] < w - 1))
        dy = torch.sign(v[..., 2, 1] - v[..., 0, 1]) * ((xy[..., 1] > 0) & (xy[..., 1] < h - 1))
        return xy.to(heatmaps.dtype) + 0.25 * torch.stack([dx, dy], dim=-1), scores


@dataclass(frozen=True)
class Dark:
    """DARK (Zhang et al. 2020): Newton step on the log of the heatmap at its maximum, exact for
    a Gaussian, whose log is quadratic. Derivatives are taken at the nearest interior pixel so
    points on the border are refined too. `blur` first smooths with a Gaussian of sigma / 2, the
    paper's step for noisy heatmaps (it biases points within the blur radius of a border)."""

    blur: bool = False

    def __call__(self, heatmaps: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        xy, scores = heatmap_argmax(heatmaps)
        h, w = heatmaps.shape[-2:]
        centre = torch.stack([xy[..., 0].clamp(1, w - 2), xy[..., 1].clamp(1, h - 2)], dim=-1)
        if self.blur:  # blur only the patch that the 3 x 3 stencil needs
            kernel = _gaussian_kernel(sigma / 2, heatmaps.device, heatmaps.dtype)
            r = len(kernel) // 2
            v, _, _ = _patch(heatmaps, centre, r + 1)
            v = v.unfold(-2, len(kernel), 1) @ kernel  # along y: (B, K, 3, P)
            v = v.unfold(-1, len(kernel), 1) @ kernel  # along x: (B, K, 3, 3)
        else:
            v, _, _ = _patch(heatmaps, centre, 1)
        v = torch.log(v.clamp_min(1e-10))  # (B, K, 3, 3), v[..., dy + 1, dx + 1]
        gx = 0.5 * (v[..., 1, 2] - v[..., 1, 0])
        gy = 0.5 * (v[..., 2, 1] - v[..., 0, 1])
        hxx = v[..., 1, 2] - 2 * v[..., 1, 1] + v[..., 1, 0]
        hyy = v[..., 2, 1] - 2 * v[..., 1, 1] + v[..., 0, 1]
        hxy = 0.25 * (v[..., 2, 2] - v[..., 0, 2] - v[..., 2, 0] + v[..., 0, 0])
        det = hxx * hyy - hxy**2
        ok = (det > 1e-12) & (hxx < 0)  # a maximum: negative definite Hessian
        safe = torch.where(ok, det, torch.ones_like(det))
        offset = torch.stack([-(hyy * gx - hxy * gy) / safe, -(hxx * gy - hxy * gx) / safe], dim=-1)
        refined = centre.to(heatmaps.dtype) + offset * ok.unsqueeze(-1)
        # a step further than 1.5 pixels from the integer maximum is noise, not refinement
        return torch.maximum(torch.minimum(refined, xy + 1.5), xy - 1.5), scores


@dataclass(frozen=True)
class SoftArgmax:
    """Expected position under the heatmap, over the whole map (window_radius=None) or a square
    window around the maximum. The window and the map border truncate the distribution and bias
    a plain mean toward the inside; `correct_truncation` removes that bias for a Gaussian of the
    codec's sigma by solving for the centre whose truncated mean matches (a few Newton steps
    per axis). Without it this is the classic integral / DSNT expectation."""

    window_radius: int | None = None
    correct_truncation: bool = True
    iterations: int = 4

    def __call__(self, heatmaps: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        xy, scores = heatmap_argmax(heatmaps)
        h, w = heatmaps.shape[-2:]
        if self.window_radius is None:
            weights = heatmaps.clamp_min(0)
            xs = torch.arange(w, device=heatmaps.device).expand(*xy.shape[:-1], w)
            ys = torch.arange(h, device=heatmaps.device).expand(*xy.shape[:-1], h)
        else:
            weights, xs, ys = _patch(heatmaps.clamp_min(0), xy, self.window_radius)
        in_x, in_y = (xs >= 0) & (xs < w), (ys >= 0) & (ys < h)  # (B, K, P): clamped taps weigh 0
        weights = weights * (in_y.unsqueeze(-1) & in_x.unsqueeze(-2))
        px = weights.sum(dim=-2)  # (B, K, P) marginals
        py = weights.sum(dim=-1)
        xs, ys = xs.to(heatmaps.dtype), ys.to(heatmaps.dtype)
        total = px.sum(-1).clamp_min(1e-12)
        mean = torch.stack([(px * xs).sum(-1) / total, (py * ys).sum(-1) / total], dim=-1)
        if self.correct_truncation:
            mean = torch.stack([
                _untruncate(mean[..., 0], xs, in_x, sigma, self.iterations),
                _untruncate(mean[..., 1], ys, in_y, sigma, self.iterations),
            ], dim=-1)
        return mean, scores


def _untruncate(observed: torch.Tensor, coords: torch.Tensor, inside: torch.Tensor, sigma: float,
                iterations: int) -> torch.Tensor:
    """Centre mu of a sampled 1-D Gaussian whose mean over the `inside` samples at `coords`
    (..., N) is `observed` (...). Newton on mu: d(mean)/d(mu) = variance / sigma^2."""
    mu = observed
    for _ in range(iterations):
        g = torch.exp(-((coords - mu.unsqueeze(-1)) ** 2) / (2 * sigma**2)) * inside  # (..., N)
        z = g.sum(-1).clamp_min(1e-12)
        m = (g * coords).sum(-1) / z
        var = (g * (coords - m.unsqueeze(-1)) ** 2).sum(-1) / z
        mu = mu + (observed - m) * sigma**2 / var.clamp_min(1e-3 * sigma**2)
    return mu


Decoder = Argmax | QuarterOffset | Dark | SoftArgmax  # the type of a decoder setting


# --- Codecs ---------------------------------------------------------------------------------
@dataclass
class GaussianHeatmap:
    """Gaussian heatmap targets of std `sigma` heatmap pixels at 1/`stride` of the input size."""

    input_size: int
    stride: int = 4
    sigma: float = 2.0
    decoder: Decoder = field(default_factory=lambda: SoftArgmax(window_radius=5))

    def __post_init__(self) -> None:
        if self.input_size % self.stride:
            raise ValueError(f"input size {self.input_size} is not a multiple of stride {self.stride}")

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.stride

    def encode(self, points: torch.Tensor, visibility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (B, K, 2) input pixels, visibility (B, K) -> targets (B, K, H, W) with peak 1,
        and weights (B, K): visibility, zeroed for centres off the heatmap."""
        centres = to_heatmap_coords(points, self.stride)
        n = self.heatmap_size
        inside = ((centres >= -0.5) & (centres <= n - 0.5)).all(dim=-1)
        return gaussian_heatmaps(centres, n, n, self.sigma), visibility * inside

    def decode(self, heatmaps: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """heatmaps (B, K, H, W), non-negative -> points (B, K, 2) in input pixels, scores (B, K)."""
        centres, scores = (decoder or self.decoder)(heatmaps.float(), self.sigma)
        return to_input_coords(centres, self.stride), scores


@dataclass
class NormalisedCoordinates:
    """Direct regression targets: input pixels mapped to [-1, 1] across the input, (B, K, 2)."""

    input_size: int

    def encode(self, points: torch.Tensor, visibility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (points + 0.5) / self.input_size * 2 - 1, visibility

    def decode(self, outputs: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs (B, K, 2) -> points (B, K, 2) input pixels, scores (B, K) all ones."""
        points = (outputs.float() + 1) / 2 * self.input_size - 0.5
        return points, torch.ones(points.shape[:-1], device=points.device)


@dataclass
class CoordinatesWithScale(NormalisedCoordinates):
    """Normalised coordinates with a predicted scale per axis (RLE): outputs (B, K, 4), the
    coordinates then sigma in (0, 1) normalised units; the score is 1 - mean sigma."""

    def decode(self, outputs: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        points, _ = super().decode(outputs[..., :2])
        return points, 1 - outputs[..., 2:].float().mean(-1)


@dataclass
class AxisHeatmaps:
    """1-D heatmaps per axis (SimCC, Li et al. 2022, as in RTMPose): x and y each classified over
    `input_size * split_ratio` bins with a Gaussian of std `sigma` bins as the label. Outputs
    (B, K, 2N), the x bins then the y bins; bin i covers input pixel (i + 0.5) / split_ratio - 0.5.
    Decoding refines the argmax bin by the parabola through the log-probabilities of three bins
    around it: exact for a Gaussian, truncated at the border or not, so encode -> decode returns
    the points."""

    input_size: int
    split_ratio: float = 2.0
    sigma: float = 4.0

    @property
    def bins(self) -> int:
        return round(self.input_size * self.split_ratio)

    def to_bins(self, points: torch.Tensor) -> torch.Tensor:
        return to_heatmap_coords(points, 1 / self.split_ratio)

    def encode(self, points: torch.Tensor, visibility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (B, K, 2) input pixels, visibility (B, K) -> targets (B, K, 2, N) with peak 1 (x
        then y), and weights (B, K): visibility, zeroed for points off the input."""
        centres = self.to_bins(points)
        inside = ((centres >= -0.5) & (centres <= self.bins - 0.5)).all(dim=-1)
        grid = torch.arange(self.bins, device=points.device, dtype=points.dtype)
        targets = torch.exp(-((grid - centres[..., None]) ** 2) / (2 * self.sigma**2))  # (B, K, 2, N)
        return targets, visibility * inside

    def decode(self, probabilities: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, 2N) per-axis probabilities -> points (B, K, 2) in input pixels, scores (B, K):
        the smaller of the two axes' peak probabilities, scaled so that an exact label scores 1."""
        axes = probabilities.float().unflatten(-1, (2, self.bins))  # (B, K, 2, N)
        peaks, index = axes.max(dim=-1)  # (B, K, 2)
        middle = index.clamp(1, self.bins - 2)  # three bins around the peak, inside the axis
        log = axes.clamp_min(1e-30).log()
        left, centre, right = (log.gather(-1, (middle + step)[..., None]).squeeze(-1) for step in (-1, 0, 1))
        curvature = left - 2 * centre + right
        peaked = curvature < 0
        vertex = 0.5 * (left - right) / torch.where(peaked, curvature, -1.0)
        shift = torch.where(peaked, middle - index + vertex, 0.0).clamp(-1, 1)  # from the argmax bin
        points = to_input_coords(index + shift, 1 / self.split_ratio)
        label_peak = 1 / (math.sqrt(2 * math.pi) * self.sigma)  # a normalised Gaussian's peak
        return points, (peaks.amin(dim=-1) / label_peak).clamp_max(1.0)


@dataclass
class HeatmapOffsets:
    """A score map plus per-cell x / y offsets (as PIPNet, Jin et al. 2021, and CenterNet): the
    point lies in the cell nearest its heatmap position, at an offset in [-0.5, 0.5] cell from
    the cell's centre; the score target is the Gaussian of std `sigma` heatmap pixels.

    With `neighbours` (PIPNet's neighbour regression), point k's cell also regresses the offsets
    of its N neighbours `neighbours[k]` (all the same length), and each point is decoded as the
    mean of its own estimate and those of the points that have it as a neighbour.
    Outputs (B, K (1 + 2 (1 + N)), H, W): K score maps, then x offsets, then y offsets, each
    offset block point-major: channel k (1 + N) + j holds point k's own offset (j = 0) or its
    neighbour neighbours[k][j - 1]'s."""

    input_size: int
    stride: int = 4
    sigma: float = 1.0
    neighbours: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if len({len(row) for row in self.neighbours}) > 1:
            raise ValueError(f"HeatmapOffsets: every point needs as many neighbours; got {self.neighbours}")
        # once here, not per decode (and a tensor made while tracing for ONNX export would warn):
        self._neighbour_table = torch.tensor(self.neighbours)  # (K, N) int64
        # each point: the mean of the estimates that name it, as a (K, K (1 + N)) averaging matrix
        k = len(self.neighbours)
        votes = (self.targets_of(k).flatten() == torch.arange(k)[:, None]).float()
        self._averaging = votes / votes.sum(dim=1, keepdim=True)

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.stride

    @property
    def maps_per_point(self) -> int:
        return 1 + 2 * (1 + (len(self.neighbours[0]) if self.neighbours else 0))

    def split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, K (1 + 2 (1 + N)), H, W) -> score maps (B, K, H, W), x and y offsets (B, K (1 + N), H, W)."""
        k = outputs.shape[1] // self.maps_per_point
        per_axis = k * (self.maps_per_point - 1) // 2
        return outputs.split([k, per_axis, per_axis], dim=1)

    def targets_of(self, num_points: int) -> torch.Tensor:
        """(K, 1 + N) long: the point each offset channel of point k estimates (itself first)."""
        own = torch.arange(num_points)[:, None]
        return torch.cat([own, self._neighbour_table], dim=1) if self.neighbours else own

    def encode(self, points: torch.Tensor, visibility: torch.Tensor
               ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """points (B, K, 2) input pixels -> ((Gaussians (B, K, H, W) with peak 1, cells (B, K, 2)
        long, offsets (B, K, 1 + N, 2) in cells from point k's cell to itself and to its
        neighbours), weights (B, K): visibility, zeroed off the map)."""
        n = self.heatmap_size
        centres = to_heatmap_coords(points, self.stride)
        inside = ((centres >= -0.5) & (centres <= n - 0.5)).all(dim=-1)
        cells = centres.round().clamp(0, n - 1)
        offsets = centres[:, self.targets_of(points.shape[1])] - cells[:, :, None]  # (B, K, 1 + N, 2)
        return (gaussian_heatmaps(centres, n, n, self.sigma), cells.long(), offsets), visibility * inside

    def decode(self, outputs: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K (1 + 2 (1 + N)), H, W), score maps non-negative -> points (B, K, 2) in input
        pixels, scores (B, K): the best cell's score."""
        score_maps, x_offsets, y_offsets = self.split(outputs.float())
        cells, scores = heatmap_argmax(score_maps)
        estimates = cells[:, :, None] + offsets_at(x_offsets, y_offsets, cells)  # (B, K, 1 + N, 2)
        if self.neighbours:
            points = self._averaging.to(estimates.device) @ estimates.flatten(1, 2)
        else:
            points = estimates[:, :, 0]
        return to_input_coords(points, self.stride), scores


def offsets_at(x_offsets: torch.Tensor, y_offsets: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """(B, K M, H, W) x and y offset maps, M per point, read at point k's integer (B, K, 2) cell
    -> (B, K, M, 2)."""
    k = cells.shape[1]
    flat = (cells[..., 1] * x_offsets.shape[-1] + cells[..., 0])[..., None, None]  # (B, K, 1, 1)
    def read(maps: torch.Tensor) -> torch.Tensor:
        maps = maps.flatten(2).unflatten(1, (k, -1))  # (B, K, M, H W)
        return maps.gather(-1, flat.expand(-1, -1, maps.shape[2], 1))
    return torch.cat([read(x_offsets), read(y_offsets)], dim=-1)


def nearest_neighbours(shape: torch.Tensor, count: int) -> tuple[tuple[int, ...], ...]:
    """(K, 2) shape -> for each point, the indices of its `count` nearest other points, nearest first."""
    distances = torch.cdist(shape[None].double(), shape[None].double())[0]
    distances.fill_diagonal_(math.inf)
    return tuple(tuple(row) for row in distances.argsort()[:, :count].tolist())

DECODERS = {
    "argmax": Argmax(),
    "quarter": QuarterOffset(),
    "dark": Dark(),
    "dark_blur": Dark(blur=True),
    "softargmax": SoftArgmax(),
    "local_softargmax": SoftArgmax(window_radius=5),
}
