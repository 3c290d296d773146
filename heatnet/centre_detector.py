"""heatnet's own face detector: a heatmap of face centres, with each face's size and eye pair
regressed at its centre (CenterNet: Zhou et al. 2019, "Objects as Points"), trained on
heatnet.scenes at every roll, so one pass finds faces at any angle and reads their roll.

    net = centre_net()                              # (B, 3, S, S) [0, 1] -> (B, 8, S/4, S/4)
    loss, parts = centre_loss(net(images), faces)   # faces: heatnet.scenes' (B, MAX_FACES, 7) tables
    detector = CentreDetector.load(Path("results/detector/best.pt"))
    centres, sides, scores, eyes = detector(image)  # (N, 2), (N,), (N,), (N, 2, 2) image pixels

Output maps at stride 4: 0 the face-centre logit; 1-2 the centre's offset within its cell;
3 log of the face side in cells; 4-7 the subject's right and left eye (the scheme's eye pair)
relative to the centre, in face sides. A face is the square landmark box of heatnet.crop.face_frames
in its own upright frame: its centre and side are what a landmark crop takes, no BoxFit needed.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import maximum_filter

from heatnet.blazeface import canvas_to_image, fit_to_input
from heatnet.models import HeatmapModel
from heatnet.runtime import cpu_session, kept_graph

STRIDE = 4
CHANNELS = 8
ENCODER = "tu-mobilenetv4_conv_small"  # heatnet-fast's encoder: chosen for onnxruntime latency on CPUs
CENTRE_PRIOR = -2.19  # the centre logit's initial bias: p = 0.1 everywhere, as CenterNet starts


def centre_net(encoder: str = ENCODER) -> HeatmapModel:
    """The detector network: a Unet cut at stride 16 decoding to stride 4 (heatnet-fast's shape)."""
    net = HeatmapModel(CHANNELS, encoder=encoder, stride=STRIDE, encoder_depth=4, decoder_channels=(64, 32, 32, 16),
                       head_kernel_size=1)
    with torch.no_grad():
        net.net.segmentation_head[0].bias[0] = CENTRE_PRIOR
    return net


def cell_coordinates(pixels: torch.Tensor) -> torch.Tensor:
    """Input pixel coordinates -> output cell coordinates (pixel centres at integers in both)."""
    return (pixels + 0.5) / STRIDE - 0.5


def centre_targets(faces: torch.Tensor, cells: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, F, 7) face tables (a side of 0: no face) -> the centre heatmap (B, T, T) with a 1 at each
    face's cell and a Gaussian around it as wide as an eighth of the face, each face's flat cell
    index (B, F), its regression targets (B, F, 7) (offset x, y, log side, eyes) and mask (B, F)."""
    mask = faces[..., 2] > 0
    u = cell_coordinates(faces[..., :2])  # (B, F, 2)
    cell = u.round().clamp(0, cells - 1)
    side = faces[..., 2].clamp(min=1e-3)
    eyes = (faces[..., 3:7].view(*faces.shape[:2], 2, 2) - faces[..., None, :2]) / side[..., None, None]
    targets = torch.cat([u - cell, torch.log(side / STRIDE)[..., None], eyes.flatten(2)], dim=-1)
    sigma = (side / STRIDE / 8).clamp(min=0.7)  # (B, F)
    grid = torch.arange(cells, dtype=faces.dtype, device=faces.device)
    dx = grid.view(1, 1, 1, -1) - cell[..., 0, None, None]  # (B, F, 1, T)
    dy = grid.view(1, 1, -1, 1) - cell[..., 1, None, None]  # (B, F, T, 1)
    gauss = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma[..., None, None] ** 2)) * mask[..., None, None]
    heat = gauss.amax(dim=1) if faces.shape[1] else torch.zeros(faces.shape[0], cells, cells)
    index = (cell[..., 1] * cells + cell[..., 0]).long()
    return heat, index, targets, mask


def centre_loss(output: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet's loss: penalty-reduced focal loss on the centre map (alpha 2, beta 4) and L1 on the
    regressions at each face's cell, both per face. output (B, 8, T, T), faces (B, F, 7)."""
    cells = output.shape[-1]
    heat, index, targets, mask = centre_targets(faces.float(), cells)
    p = torch.sigmoid(output[:, 0].float()).clamp(1e-4, 1 - 1e-4)
    positive = torch.zeros_like(heat).flatten(1).scatter(1, index, mask.float()).view_as(heat) > 0
    focal = torch.where(positive, (1 - p) ** 2 * torch.log(p), (1 - heat) ** 4 * p ** 2 * torch.log(1 - p))
    count = mask.sum().clamp(min=1)
    focal = -focal.sum() / count
    predicted = output[:, 1:].float().flatten(2).gather(2, index[:, None].expand(-1, CHANNELS - 1, -1)).transpose(1, 2)
    l1 = ((predicted - targets).abs() * mask[..., None]).sum(dim=(0, 1)) / count  # (7,)
    regression = l1[:2].sum() + l1[2] + 2 * l1[3:].sum()  # eyes doubled: they carry the roll
    return focal + regression, {"focal": focal.item(), "offset": l1[:2].sum().item(), "size": l1[2].item(),
                                "eyes": l1[3:].sum().item()}


def decode_centres(output: np.ndarray, min_score: float, top: int = 20
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's (8, T, T) output -> centres (N, 2), sides (N,), scores (N,) and eyes (N, 2, 2) in
    input pixels, best first: the local maxima (3 x 3) of the centre map scoring >= min_score."""
    scores = 1 / (1 + np.exp(-np.clip(output[0], -50, 50)))
    peaks = (scores == maximum_filter(scores, size=3, mode="constant")) & (scores >= min_score)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-scores[ys, xs], kind="stable")[:top]
    ys, xs = ys[order], xs[order]
    u = np.stack([xs + output[1, ys, xs], ys + output[2, ys, xs]], axis=1)
    centres = (u + 0.5) * STRIDE - 0.5
    sides = np.exp(output[3, ys, xs]) * STRIDE
    eyes = centres[:, None] + output[4:8, ys, xs].T.reshape(-1, 2, 2) * sides[:, None, None]
    return centres.astype(np.float64), sides.astype(np.float64), scores[ys, xs].astype(np.float64), eyes.astype(np.float64)


class CentreDetector:
    """A trained centre net on whole photos: each photo is fitted into the size x size input (aspect
    kept, black borders, as BlazeFace fits it); the network runs in onnxruntime when it is installed
    (exported once per weights file and kept), else in PyTorch."""

    def __init__(self, net: HeatmapModel, size: int, min_score: float = 0.5, weights: Path | None = None,
                 threads: int = 1):
        self.net, self.size, self.min_score = net.eval(), size, min_score
        try:
            self.session = cpu_session(kept_graph(weights, self._export), threads) if weights is not None else None
        except ImportError:
            self.session = None

    @classmethod
    def load(cls, path: Path, min_score: float | None = None, threads: int = 1) -> CentreDetector:
        """From a checkpoint of tools/train_detector.py: its weights, input size, encoder and the
        score threshold chosen on validation (unless `min_score` is given)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = centre_net(state["encoder"])
        net.load_state_dict(state["model"])
        return cls(net, state["size"], state.get("min_score", 0.5) if min_score is None else min_score, path, threads)

    def _export(self, stream) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(self.net, (torch.zeros(1, 3, self.size, self.size),), stream, input_names=["images"],
                              output_names=["maps"], opset_version=17, dynamo=False)

    def maps(self, canvas: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 canvas -> the network's (8, S/4, S/4) output maps."""
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255
        if self.session is not None:
            return self.session.run(None, {"images": x})[0][0]
        with torch.no_grad():
            return self.net(torch.from_numpy(x))[0].numpy()

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 RGB -> centres (N, 2), sides (N,), scores (N,), eyes (N, 2, 2), image pixels."""
        canvas, scale, corner = fit_to_input(image, self.size)
        centres, sides, scores, eyes = decode_centres(self.maps(canvas), self.min_score)
        return (canvas_to_image(centres, scale, corner), sides / scale.mean(), scores,  # the scales differ by a pixel at most
                canvas_to_image(eyes, scale, corner))
