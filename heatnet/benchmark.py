"""Benchmark pieces: model cost (parameters, FLOPs, latency), the codec's own error floor, and
mean/spread tables over seeds. (Decoders are compared by heatnet.evaluation.evaluate's
`extra_decoders`, on one forward pass.)"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from heatnet.codecs import GaussianHeatmap
from heatnet.config import Method
from heatnet.data import to_original
from heatnet.metrics import LandmarkErrors


def model_cost(method: Method, size: int, channels: int, device: torch.device,
               batches: tuple[int, ...] = (1, 32), repeats: int = 5) -> dict[str, float]:
    """Parameters (M), forward GFLOPs per image, and median latency (ms per batch, decode
    included) at each batch size on `device`."""
    model = method.model.eval()
    out = {"params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    with torch.no_grad():
        x = torch.rand(1, channels, size, size, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        out["gflops"] = counter.get_total_flops() / 1e9
        for b in batches:
            x = torch.rand(b, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
            method.decode(model(x))  # warm-up
            times = []
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                method.decode(model(x))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            out[f"latency_b{b}_ms"] = 1000 * float(np.median(times))
    return out


@torch.no_grad()
def codec_floor(codec: GaussianHeatmap, loader, decoder=None) -> float:
    """NME (%) of encoding the ground truth and decoding it again: what the codec alone costs."""
    errors = LandmarkErrors(loader.dataset.scheme)
    for batch in loader:
        targets, _ = codec.encode(batch["points"], batch["visibility"])
        decoded, _ = codec.decode(targets, decoder)
        errors.add(to_original(decoded, batch["affine"]), batch["orig_points"], batch["orig_visibility"], batch["normaliser"])
    return errors.summary()["nme"]


def mean_and_spread(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per key: (mean, sample standard deviation; 0 for one seed) over seeds."""
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    out = {}
    for k in keys:
        values = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return out


def markdown_table(results: dict[str, dict[str, tuple[float, float]]], columns: list[tuple[str, str, str]]) -> str:
    """results[method][key] = (mean, spread); columns = (key, header, format)."""
    lines = ["| method | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for name, stats in results.items():
        cells = []
        for key, _, fmt in columns:
            if key not in stats:
                cells.append("-")
                continue
            mean, spread = stats[key]
            cells.append(format(mean, fmt) + (f" ± {format(spread, fmt)}" if spread else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
