"""Models: heatmap networks over segmentation-models-pytorch, and direct-regression baselines.

All models take float images (B, C, S, S) in [0, 1] and normalise them themselves, so a
checkpoint or an ONNX export carries its preprocessing. Heatmap models return (B, K, H, W)
logits at 1/stride of the input; regression models return (B, K, 2) normalised coordinates.
"""
from __future__ import annotations

import inspect
import math
import os
import socket
from urllib.parse import urlparse

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from heatnet.samples import MEAN, STD
from heatnet.errors import HeatnetError


# The type of an architecture setting: the smp architectures heatnet is tested with.
Architecture = (type[smp.Unet] | type[smp.FPN] | type[smp.UnetPlusPlus] | type[smp.Linknet] | type[smp.MAnet]
                | type[smp.PAN] | type[smp.DeepLabV3Plus])


class ModelConfigError(HeatnetError, ValueError):
    """A model cannot be built as asked; the message says why and what to do."""


class ImageNorm(nn.Module):
    """[0, 1] images to ImageNet statistics (what smp encoders expect), or to (x - mean) / std."""

    def __init__(self, channels: int, mean: float | None = None, std: float | None = None):
        super().__init__()
        mean = torch.tensor(MEAN[channels] if mean is None else (mean,) * channels)
        std = torch.tensor(STD[channels] if std is None else (std,) * channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def require_pretrained_weights_available(encoder_weights: str | None) -> None:
    """Fail at once, with a way forward, when ImageNet weights cannot be fetched, instead of
    letting the hub client retry for minutes."""
    if encoder_weights is None:
        return
    advice = ("Train from scratch (encoder_weights=None) or initialise from a heatnet checkpoint "
              "(--init-from runs/.../best.pt, e.g. a model trained on the built-in synthetic faces).")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return  # the hub client then only looks in its cache, and fails fast; caught in build
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as e:
        raise ModelConfigError(f"ImageNet weights ({encoder_weights!r}) need {host}, which cannot be reached "
                               f"({e}). {advice} If the weights are in your Hugging Face cache, set HF_HUB_OFFLINE=1.") from None


def _check_kwargs(cls: type, kwargs: dict, reserved: set[str]) -> None:
    """smp silently accepts unknown keyword arguments; heatnet does not."""
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "args"}
    bad = set(kwargs) - (params - reserved)
    if bad:
        raise ModelConfigError(f"{cls.__name__} does not take {sorted(bad)}; valid options: "
                               f"{sorted(params - reserved)}")


class HeatmapModel(nn.Module):
    """Any smp architecture (smp.Unet, smp.FPN, ...) with any smp encoder, predicting K heatmaps
    at 1/stride of the input. Architectures whose decoder ends coarser are upsampled bilinearly;
    finer ones are average-pooled to the stride. `head_kernel_size` (smp.Unet only): the output
    convolution's kernel, 3 as smp builds it, or 1 (a fifth of a small model's time at 112 px).
    `maps_per_point` > 1 gives K * maps_per_point maps (3 for heatnet.codecs.HeatmapOffsets)."""

    def __init__(self, num_points: int, architecture: type = smp.Unet, encoder: str = "resnet18",
                 in_channels: int = 3, stride: int = 4, encoder_weights: str | None = None, head_kernel_size: int = 3,
                 maps_per_point: int = 1, **options):
        super().__init__()
        if stride not in (1, 2, 4):
            raise ModelConfigError(f"stride must be 1, 2 or 4, got {stride}")
        if in_channels not in (1, 3):
            raise ModelConfigError(f"in_channels must be 1 or 3, got {in_channels}")
        if head_kernel_size not in (1, 3) or (head_kernel_size != 3 and architecture is not smp.Unet):
            raise ModelConfigError(f"head_kernel_size must be 3, or 1 with smp.Unet; got {head_kernel_size} "
                                   f"with {architecture.__name__}")
        reserved = {"encoder_name", "encoder_weights", "in_channels", "classes", "activation", "aux_params"}
        _check_kwargs(architecture, options, reserved)
        require_pretrained_weights_available(encoder_weights)
        if "upsampling" in inspect.signature(architecture.__init__).parameters:
            options.setdefault("upsampling", 1)  # heatnet resizes to the stride itself
        try:
            self.net = architecture(encoder_name=encoder, encoder_weights=encoder_weights,
                                    in_channels=in_channels, classes=num_points * maps_per_point, **options)
        except (KeyError, ValueError, OSError) as e:
            raise ModelConfigError(f"cannot build {architecture.__name__} with encoder {encoder!r}: {e}") from None
        if architecture is smp.Unet:
            self._trim_unet_decoder(stride, options.get("decoder_channels", (256, 128, 64, 32, 16)),
                                    num_points * maps_per_point, head_kernel_size)
        self.norm = ImageNorm(in_channels)
        self.stride, self.num_points, self.in_channels = stride, num_points, in_channels
        self.input_multiple = self._input_multiple()
        native = self._native_stride()
        if native > stride:
            self.resize: nn.Module = nn.Upsample(scale_factor=native // stride, mode="bilinear", align_corners=False)
        elif native < stride:
            self.resize = nn.AvgPool2d(stride // native)
        else:
            self.resize = nn.Identity()

    def _trim_unet_decoder(self, stride: int, decoder_channels, maps: int, head_kernel_size: int) -> None:
        """Drop the Unet decoder blocks finer than the stride (each doubles the resolution), instead
        of decoding at full resolution and pooling: a third less compute for Unet-ResNet18 at
        stride 4. Relies on smp's UnetDecoder looping over `blocks`. The output convolution is
        rebuilt for the coarser blocks' channels, with `head_kernel_size`."""
        drop = int(math.log2(stride))
        if drop:
            self.net.decoder.blocks = self.net.decoder.blocks[:-drop]
        if drop or head_kernel_size != 3:
            self.net.segmentation_head = smp.base.SegmentationHead(decoder_channels[-1 - drop], maps,
                                                                   kernel_size=head_kernel_size)

    def _input_multiple(self) -> int:
        multiple = getattr(self.net.encoder, "output_stride", 32)
        return max(multiple, self.stride)

    @torch.no_grad()
    def _native_stride(self) -> int:
        size = max(128, self.input_multiple * 2)  # large enough for every smp decoder (PAN needs 128)
        was_training = self.net.training
        self.net.eval()
        out = self.net(torch.zeros(1, self.in_channels, size, size))
        self.net.train(was_training)
        return size // out.shape[-1]

    def check_input_size(self, size: int) -> None:
        if size % self.input_multiple:
            raise ModelConfigError(f"input size {size} is not a multiple of {self.input_multiple}, which "
                                   f"{type(self.net).__name__} with this encoder needs; try "
                                   f"{(size // self.input_multiple + 1) * self.input_multiple}")
        try:  # some decoders (e.g. PAN's pyramid pooling) need more than divisibility
            with torch.no_grad():
                was_training = self.training
                self.eval()
                self(torch.zeros(1, self.in_channels, size, size, device=self.norm.mean.device))
                self.train(was_training)
        except RuntimeError as e:
            raise ModelConfigError(f"{type(self.net).__name__} cannot take {size} px inputs: {e}") from None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.resize(self.net(self.norm(images)))  # (B, K * maps_per_point, S/stride, S/stride)


class AxisModel(nn.Module):
    """SimCC on any smp architecture: the HeatmapModel's K feature maps at 1/stride, each
    flattened and mapped by two linear layers shared across points to x and y bin logits
    -> (B, K, 2N). The linear layers fix the input size."""

    def __init__(self, num_points: int, input_size: int, bins: int, architecture: type = smp.Unet,
                 encoder: str = "resnet18", in_channels: int = 3, stride: int = 4, **options):
        super().__init__()
        self.maps = HeatmapModel(num_points, architecture, encoder, in_channels, stride, **options)
        self.maps.check_input_size(input_size)
        cells = (input_size // stride) ** 2
        self.to_x, self.to_y = nn.Linear(cells, bins), nn.Linear(cells, bins)
        self.input_size, self.num_points, self.in_channels = input_size, num_points, in_channels
        self.input_multiple = input_size  # the linear layers take this size only

    def check_input_size(self, size: int) -> None:
        if size != self.input_size:
            raise ModelConfigError(f"this SimCC model takes {self.input_size} px inputs only, not {size}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.maps(images).flatten(2)  # (B, K, H * W)
        return torch.cat([self.to_x(features), self.to_y(features)], dim=-1)  # (B, K, 2N)


# --- Regression baselines --------------------------------------------------------------------
class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang 2019): [1 2 1] x [1 2 1] / 16 low-pass, then stride 2, on
    `channels` channels (a kernel of fixed shape: one shaped from the input at run time does not
    export to ONNX)."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :] / 16).expand(channels, 1, 3, 3).contiguous()  # (C, 1, 3, 3)
        self.register_buffer("kernel", kernel, persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=self.channels)


def antialias(module: nn.Module) -> nn.Module:
    """Replace each stride-2 conv by BlurPool -> conv(stride 1) and each stride-2 max-pool by
    max-pool(stride 1) -> BlurPool, in place, for any encoder. A max-pool's channels are those of
    the last conv before it in the module order (ResNet's stem: conv1, bn1, relu, maxpool)."""
    channels = None

    def visit(parent: nn.Module) -> None:
        nonlocal channels
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.stride == (2, 2):
                    child.stride = (1, 1)
                    setattr(parent, name, nn.Sequential(BlurPool(child.in_channels), child))
                channels = child.out_channels
            elif isinstance(child, nn.MaxPool2d) and child.stride in (2, (2, 2)):
                if channels is None:
                    raise ModelConfigError(f"antialias: a stride-2 max-pool ({name}) before any convolution")
                child.stride = 1
                setattr(parent, name, nn.Sequential(child, BlurPool(channels)))
            else:
                visit(child)

    visit(module)
    return module


class EncoderRegressor(nn.Module):
    """An smp encoder (ResNet-18/34/50 or any other) + global average pool + FC to (B, K, 2)."""

    def __init__(self, num_points: int, encoder: str = "resnet18", in_channels: int = 3,
                 encoder_weights: str | None = None, blurpool: bool = False, dropout: float = 0.0,
                 values_per_point: int = 2):
        super().__init__()
        require_pretrained_weights_available(encoder_weights)
        try:
            self.encoder = smp.encoders.get_encoder(encoder, in_channels=in_channels, depth=5, weights=encoder_weights)
        except (KeyError, ValueError, OSError) as e:
            raise ModelConfigError(f"cannot build encoder {encoder!r}: {e}") from None
        if blurpool:
            antialias(self.encoder)
        self.norm = ImageNorm(in_channels)
        self.num_points, self.input_multiple = num_points, self.encoder.output_stride
        self.values_per_point = values_per_point  # 2: (x, y); 4 with RLE's scales
        self.head = nn.Sequential(nn.Dropout(dropout),
                                  nn.Linear(self.encoder.out_channels[-1], num_points * values_per_point))

    def check_input_size(self, size: int) -> None:
        if size % self.input_multiple:
            raise ModelConfigError(f"input size {size} is not a multiple of {self.input_multiple}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(self.norm(images))[-1]  # (B, C, S/32, S/32)
        return self.head(features.mean(dim=(2, 3))).view(-1, self.num_points, self.values_per_point)


class RealNVP(nn.Module):
    """A 2-D RealNVP flow (Dinh et al. 2017) as RLE uses it: `layers` affine couplings with
    alternating masks, each scale and shift an MLP of `hidden` units; standard normal base."""

    def __init__(self, layers: int = 6, hidden: int = 64):
        super().__init__()

        def mlp(last: list[nn.Module]) -> nn.Sequential:
            return nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
                                 nn.Linear(hidden, 2), *last)

        self.register_buffer("masks", torch.tensor([[0.0, 1.0], [1.0, 0.0]] * (layers // 2)))
        self.scales = nn.ModuleList(mlp([nn.Tanh()]) for _ in range(len(self.masks)))
        self.shifts = nn.ModuleList(mlp([]) for _ in range(len(self.masks)))
        for layer in self.modules():
            if isinstance(layer, nn.Linear):  # start near the identity, as RLE does
                nn.init.xavier_uniform_(layer.weight, gain=0.01)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 2) -> (N,) log density: inverted coupling by coupling back to the base."""
        z, log_det = x, x.new_zeros(x.shape[0])
        for mask, scale, shift in reversed(list(zip(self.masks, self.scales, self.shifts))):
            kept = mask * z
            s, t = scale(kept) * (1 - mask), shift(kept) * (1 - mask)
            z = kept + (1 - mask) * (z - t) * torch.exp(-s)
            log_det = log_det - s.sum(-1)
        return -0.5 * (z**2).sum(-1) - math.log(2 * math.pi) + log_det


class RleRegressor(EncoderRegressor):
    """EncoderRegressor predicting (x, y, raw sigma_x, raw sigma_y) per point, holding the RLE
    flow its loss (heatnet.losses.RLE) trains, so that the optimizer and checkpoints cover it."""

    def __init__(self, num_points: int, encoder: str = "resnet18", in_channels: int = 3,
                 encoder_weights: str | None = None, blurpool: bool = False, dropout: float = 0.0):
        super().__init__(num_points, encoder, in_channels, encoder_weights, blurpool, dropout, values_per_point=4)
        self.flow = RealNVP()


class SmallCNN(nn.Module):
    """The seeds' small CNNs: a stack of conv blocks, flatten, and fully connected layers.
    Use the constructors below; `input_size` fixes the flattened width."""

    def __init__(self, num_points: int, blocks: list[nn.Module], fc: list[int], in_channels: int,
                 input_size: int, dropout: float = 0.0, norm: ImageNorm | None = None):
        super().__init__()
        self.norm = norm or ImageNorm(in_channels)
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, input_size, input_size)).numel()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in fc:
            layers += [nn.Linear(flat, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            flat = width
        layers.append(nn.Linear(flat, num_points * 2))
        self.head = nn.Sequential(*layers)
        self.num_points, self.input_size, self.input_multiple = num_points, input_size, 1

    def check_input_size(self, size: int) -> None:
        if size != self.input_size:
            raise ModelConfigError(f"this CNN was built for {self.input_size} px inputs, got {size}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(images))).view(-1, self.num_points, 2)


def _conv(cin: int, cout: int, k: int, act: type[nn.Module] = nn.ReLU, bn: bool = False,
          pool: bool = True, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2)]
    layers += [nn.BatchNorm2d(cout)] if bn else []
    layers += [act(), nn.MaxPool2d(2)] if pool else [act()]
    layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers)


def nose_tip_cnn(num_points: int = 1, in_channels: int = 1, input_size: int = 80) -> SmallCNN:
    """3 conv + 2 FC on pixels scaled to [-0.5, 0.5], the IMM nose-tip net."""
    blocks = [_conv(in_channels, 32, 5), _conv(32, 64, 3), _conv(64, 128, 3)]
    return SmallCNN(num_points, blocks, [256, 128], in_channels, input_size, norm=ImageNorm(in_channels, 0.5, 1.0))


def face_points_cnn(num_points: int = 58, in_channels: int = 1, input_size: int = 96, first_kernel: int = 3) -> SmallCNN:
    """5 conv + FC, the IMM 58-point net; `first_kernel` is the first layer's kernel side."""
    widths = [in_channels, 32, 64, 96, 128, 192]
    blocks = [_conv(widths[i], widths[i + 1], first_kernel if i == 0 else 3) for i in range(5)]
    return SmallCNN(num_points, blocks, [512], in_channels, input_size)


def youtube_faces_cnn(num_points: int = 68, in_channels: int = 1, input_size: int = 224) -> SmallCNN:
    """5 conv with growing dropout + 2 FC, the YouTube-Faces tutorial net (224 x 224)."""
    widths = [in_channels, 32, 64, 128, 256, 512]
    blocks = [_conv(widths[i], widths[i + 1], 5 - (i >= 2) * 2, act=nn.ELU, dropout=0.1 * (i + 1)) for i in range(5)]
    return SmallCNN(num_points, blocks, [1024, 512], in_channels, input_size, dropout=0.5)


def kaggle_cnn(num_points: int = 15, in_channels: int = 1, input_size: int = 96) -> SmallCNN:
    """(conv-BN-LeakyReLU) x 2 + max-pool blocks, the Kaggle facial-keypoints notebook net."""
    blocks = []
    widths = [in_channels, 32, 64, 96, 128]
    for i in range(4):
        blocks += [_conv(widths[i], widths[i + 1], 3, act=nn.LeakyReLU, bn=True, pool=False),
                   _conv(widths[i + 1], widths[i + 1], 3, act=nn.LeakyReLU, bn=True, pool=True)]
    return SmallCNN(num_points, blocks, [512], in_channels, input_size, dropout=0.1)
