"""Speed probes that print numbers (no assertions; tools/speed.py is their command line): data
loading, the heatmap codec against mmpose-style references, the shipped predictor's latency, and
where a training step's time goes.

The codec reference re-implements the published per-sample algorithms that mmpose runs
(unbiased Gaussian encoding over the full grid per keypoint; argmax then DARK with an OpenCV
blur per heatmap) in NumPy, and times them in the same run, on one thread, for the ratio.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from heatnet.config import Settings


def rate(fn, count: int, repeats: int = 3) -> float:
    """Best-of-`repeats` items per second of fn(), which handles `count` items."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def bench_data(root: Path | None, workers: int, samples: int) -> None:
    import torch

    from heatnet.augment import Augmentation
    from heatnet.samples import LandmarkDataset, collate
    from heatnet.datasets import load_split
    from heatnet.synthetic import SyntheticFaces

    torch.set_num_threads(1)
    source = load_split("300w", "train", root)
    dataset = LandmarkDataset(source, 128, augmentation=Augmentation())
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0, collate_fn=collate)

    def run():
        seen = 0
        for batch in loader:
            seen += len(batch["image"])
            if seen >= samples:
                break

    run()  # start the workers
    print(f"300w train JPEGs -> 128 px crops, full augmentation, {workers} workers: {rate(run, samples, 2):.0f} samples/s")
    faces = SyntheticFaces(2000, image_size=128)
    print(f"synthetic faces, 128 x 128 canvas, one core: {rate(lambda: [faces[i] for i in range(300)], 300):.0f} faces/s")
    synthetic = LandmarkDataset(faces, 128, augmentation=Augmentation())
    print(f"synthetic faces -> augmented 128 px crops, one core: "
          f"{rate(lambda: [synthetic[i] for i in range(300)], 300):.0f} samples/s")


# --- mmpose-style per-sample references (NumPy, loops over keypoints) -----------------------------
def reference_encode_unbiased(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """One sample: (K, 2) heatmap coordinates -> (K, H, W), a full-grid exp per keypoint."""
    heatmaps = np.zeros((len(points), size, size), np.float32)
    x = np.arange(size, dtype=np.float32)
    y = x[:, None]
    for k, (px, py) in enumerate(points):
        heatmaps[k] = np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma**2))
    return heatmaps


def reference_decode_dark(heatmaps: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """One sample: argmax, then per keypoint an OpenCV blur, log and a Taylor step."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1).argmax(1)
    coords = np.stack([flat % w, flat // w], 1).astype(np.float32)
    border = (blur_kernel - 1) // 2
    for i in range(k):
        origin_max = heatmaps[i].max()
        dr = np.zeros((h + 2 * border, w + 2 * border), np.float32)
        dr[border:-border, border:-border] = heatmaps[i]
        dr = cv2.GaussianBlur(dr, (blur_kernel, blur_kernel), 0)
        hm = dr[border:-border, border:-border] * (origin_max / max(dr.max(), 1e-12))
        hm = np.log(np.maximum(hm, 1e-10))
        px, py = int(coords[i, 0]), int(coords[i, 1])
        if 1 < px < w - 2 and 1 < py < h - 2:
            dx = 0.5 * (hm[py, px + 1] - hm[py, px - 1])
            dy = 0.5 * (hm[py + 1, px] - hm[py - 1, px])
            dxx = 0.25 * (hm[py, px + 2] - 2 * hm[py, px] + hm[py, px - 2])
            dxy = 0.25 * (hm[py + 1, px + 1] - hm[py - 1, px + 1] - hm[py + 1, px - 1] + hm[py - 1, px - 1])
            dyy = 0.25 * (hm[py + 2, px] - 2 * hm[py, px] + hm[py - 2, px])
            hessian = np.array([[dxx, dxy], [dxy, dyy]])
            if dxx * dyy - dxy**2 != 0:
                coords[i] -= np.linalg.solve(hessian, np.array([dx, dy]))
    return coords


def bench_codec(batch: int, k: int, size: int) -> None:
    import torch

    from heatnet.codecs import DECODERS, GaussianHeatmap
    from heatnet.runtime import tune_allocator

    torch.set_num_threads(1)
    codec = GaussianHeatmap(size * 4, stride=4, sigma=2.0)
    points = torch.rand(batch, k, 2) * (size * 4 - 1)
    visibility = torch.ones(batch, k)
    per_ms = lambda r: 1000 / r  # noqa: E731
    print(f"B = {batch}, K = {k}, {size} x {size} heatmaps, one thread, ms per sample (lower is better)")
    for tuned in (False, True):
        if tuned:
            tune_allocator()
        encode = per_ms(rate(lambda: codec.encode(points, visibility), batch, 10))
        print(f"  heatnet encode{' (tuned allocator)' if tuned else '                  '}: {encode:.3f}")
    heatmaps, _ = codec.encode(points, visibility)
    ms = {}
    for name, decoder in DECODERS.items():
        ms[name] = per_ms(rate(lambda: codec.decode(heatmaps, decoder), batch, 10))
        print(f"  heatnet decode {name:17s}: {ms[name]:.3f}")
    sample_points = (points[0].numpy() + 0.5) / 4 - 0.5
    ref_encode = per_ms(rate(lambda: reference_encode_unbiased(sample_points, size, 2.0), 1, 10))
    sample_heatmaps = heatmaps[0].numpy()
    ref_dark = per_ms(rate(lambda: reference_decode_dark(sample_heatmaps), 1, 10))
    print(f"  reference (mmpose-style) encode unbiased: {ref_encode:.3f}")
    print(f"  reference (mmpose-style) argmax + DARK  : {ref_dark:.3f}")
    print(f"  speed-up: encode {ref_encode / encode:.1f}x, DARK decode {ref_dark / ms['dark']:.1f}x "
          f"(DARK with blur {ref_dark / ms['dark_blur']:.1f}x)")


def bench_predict(root: Path | None, threads: int, repeats: int = 50) -> None:
    """Median per-face latency at batch 1 of the shipped model (crop + network + decoder + mapping
    back: PyTorch, and the ONNX graph in onnxruntime), and of each available detector, on a
    300-W test photo."""
    import torch

    import heatnet
    from heatnet.config import ConfigError
    from heatnet.samples import read_image
    from heatnet.datasets import default_data_root
    from heatnet.detect import DETECTORS

    torch.set_num_threads(threads)
    image = read_image((root or default_data_root()) / "300w/lfpw/testset/image_0001.jpg", upright=True)
    predictor = heatnet.load_pretrained()
    boxes, _ = predictor.detector(image)
    crop_boxes = predictor.crop_boxes(image, boxes[:1])

    def median_ms(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * float(np.median(times))

    print(f"{threads} thread(s), {image.shape[1]} x {image.shape[0]} photo, batch 1, median of {repeats}")
    print(f"landmarks, PyTorch (one pass):          {median_ms(lambda: predictor.predict_crop_boxes(image, crop_boxes)):.1f} ms per face")
    print(f"landmarks, PyTorch (+ refine pass):     {median_ms(lambda: predictor.predict_boxes(image, boxes[:1])):.1f} ms per face")
    try:
        predictor.use_onnxruntime(threads)
        print(f"landmarks, onnxruntime (one pass):      {median_ms(lambda: predictor.predict_crop_boxes(image, crop_boxes)):.1f} ms per face")
        print(f"landmarks, onnxruntime (+ refine pass): {median_ms(lambda: predictor.predict_boxes(image, boxes[:1])):.1f} ms per face")
    except ImportError:
        print("onnxruntime not installed: pip install -e \".[onnx]\"")
    for name, detector in DETECTORS.items():
        try:
            found = detector()
        except ConfigError:
            continue
        print(f"detector {name:9s}                      {median_ms(lambda: found(image)):.1f} ms per photo")


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 matrix-multiply rate with torch's threads: the ceiling for convolutions."""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def bench_train(experiment: Path, s: Settings, steps: int, channels_last: bool) -> None:
    """Wall time of a training step split into data (waiting for the loader), forward, loss
    (target encoding included), backward and optimizer, over `steps` steps after 3 warm-up ones;
    the model's training GFLOP/s (3x the forward count) against the matrix-multiply rate."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from heatnet.samples import has_samples
    from heatnet.evaluation import to_device_batch
    from heatnet.experiment import build_method, load_experiment
    from heatnet.loading import EpochSampler, make_dataset, make_loader
    from heatnet.runtime import set_threads
    from heatnet.training import make_optimizer

    module = load_experiment(experiment)
    set_threads(s.threads)
    train_set = make_dataset(s, s.train_split, s.train_limit, augment=True)
    method = build_method(module, s, train_set.scheme)
    model = method.model.to(memory_format=torch.channels_last) if channels_last else method.model
    model.train()
    optimizer = make_optimizer(model, s)
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, s.channels, s.input_size, s.input_size))
    train_gflop = 3 * counter.get_total_flops() / 1e9  # forward + backward (about twice the forward)
    loader = make_loader(train_set, s, EpochSampler(len(train_set), s.seed, 0, 0), drop_last=True)
    phases = dict.fromkeys(("data", "forward", "loss", "backward", "optimizer"), 0.0)
    batches, samples = (batch for _ in iter(int, 1) for batch in loader), 0  # epochs without end
    for step in range(steps + 3):
        if step == 3:
            phases, samples, start = dict.fromkeys(phases, 0.0), 0, time.perf_counter()
        t0 = time.perf_counter()
        batch = next(batches)
        while not has_samples(batch):
            batch = next(batches)
        images, points, visibility = to_device_batch(batch, torch.device("cpu"))
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        outputs = model(images)
        t2 = time.perf_counter()
        loss = method.loss(outputs, points, visibility)
        t3 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        if s.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        optimizer.step()
        t5 = time.perf_counter()
        for name, (a, b) in zip(phases, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
            phases[name] += b - a
        samples += len(images)
    total = time.perf_counter() - start
    print(f"{experiment} ({s.input_size} px, batch {s.batch_size}, {s.workers} loader workers, "
          f"{torch.get_num_threads()} threads{', channels_last' if channels_last else ''}): {steps} steps")
    _print_profile(phases, steps, samples, total, train_gflop)


def _print_profile(phases: dict[str, float], steps: int, samples: int, total: float, train_gflop: float) -> None:
    """A training step's phases (seconds over `steps`), its rate and its share of the matmul rate."""
    compute = phases["forward"] + phases["backward"]
    peak = matmul_gflops()
    print("| phase | ms per step | share |\n|---|---|---|")
    for name, seconds in phases.items():
        print(f"| {name} | {1000 * seconds / steps:.1f} | {100 * seconds / total:.0f} % |")
    print(f"\ntraining: {samples / total:.1f} samples/s; {train_gflop:.2f} GFLOP per sample (3x forward)")
    print(f"achieved: {train_gflop * samples / total:.1f} GFLOP/s over the whole step, "
          f"{train_gflop * samples / compute:.1f} GFLOP/s in forward + backward")
    print(f"float32 matrix multiply on this machine: {peak:.1f} GFLOP/s -> {100 * train_gflop * samples / total / peak:.0f} % "
          f"of it over the whole step, {100 * train_gflop * samples / compute / peak:.0f} % in forward + backward")
