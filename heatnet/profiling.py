"""Speed probes that print numbers (no assertions; tools/speed.py is their command line): data
loading, the heatmap codec against mmpose-style references, the shipped predictor's latency, and
where a training step's time goes.

The codec reference re-implements the published per-sample algorithms that mmpose runs
(unbiased Gaussian encoding over the full grid per keypoint; argmax then DARK with an OpenCV
blur per heatmap) in NumPy, and times them in the same run, on one thread, for the ratio.
"""
from __future__ import annotations

import os
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


def bench_predict(root: Path | None, threads: int, models: list[Path], repeats: int = 50, batch: int = 16,
                  rounds: int = 5, checkpoints: tuple[str, ...] = ()) -> None:
    """Median per-face latency of each model (crop + network + decoder + mapping back, in PyTorch
    and in onnxruntime), of dlib's 68-point predictor and of each available detector, in one run,
    on a 300-W test photo: one face at a time (one pass, and with the refine pass), and `batch`
    copies of the face per call (ms per face); `checkpoints`: heatnet's own detectors to time too. The
    candidates take turns, `repeats / rounds` calls
    each per round, so a machine whose speed drifts during the run slows them all alike."""
    import torch

    from heatnet.config import ConfigError
    from heatnet.samples import read_image
    from heatnet.datasets import default_data_root
    from heatnet.detect import make_detector
    from heatnet.predict import DlibPredictor, FacePredictor

    torch.set_num_threads(threads)
    image = read_image((root or default_data_root()) / "300w/lfpw/testset/image_0001.jpg", upright=True)
    detector = make_detector()  # the predictors' default
    detections = detector(image)[:1]
    many = detections[np.zeros(batch, np.int64)]

    rows: dict[str, list] = {}  # "| name | runtime" -> per column: (call, faces per call), or None
    for model in models:
        for runtime in ("PyTorch", "onnxruntime"):
            predictor = FacePredictor.from_checkpoint(model)
            predictor.batch_size = batch
            if runtime == "onnxruntime":
                try:
                    predictor.use_onnxruntime(threads)
                except ImportError:
                    print(f"{model.name}: onnxruntime not installed (pip install -e \".[onnx]\")")
                    continue
            boxes, rolls = predictor.crop_boxes(image, detections)
            rows[f"| {model.name} | {runtime}"] = [
                (lambda p=predictor, b=boxes, r=rolls: p.predict_crop_boxes(image, b, rolls=r), 1),
                (lambda p=predictor: p.predict_boxes(image, detections), 1),
                (lambda p=predictor, b=np.repeat(boxes, batch, axis=0), r=np.repeat(rolls, batch):
                 p.predict_crop_boxes(image, b, rolls=r), batch)]
    try:
        dlib = DlibPredictor(detector)
        rows["| dlib shape_predictor_68_face_landmarks | dlib"] = [
            (lambda: dlib.predict_boxes(image, detections), 1), None, (lambda: dlib.predict_boxes(image, many), batch)]
    except ConfigError as e:
        print(f"dlib's predictor: {e}")

    times = {key: [[] for _ in columns] for key, columns in rows.items()}  # seconds per face
    for _ in range(rounds):
        for key, columns in rows.items():
            for column, case in enumerate(columns):
                if case is None:
                    continue
                call, faces = case
                times[key][column] += [t / faces for t in call_seconds(call, max(1, repeats // rounds))]

    print(f"{threads} thread(s), {image.shape[1]} x {image.shape[0]} photo, median of {repeats} taken in {rounds} "
          f"interleaved rounds, ms per face\n")
    print(f"| model | runtime | batch 1, one pass | batch 1, + refine pass | batch {batch}, one pass |\n|---|---|---|---|---|")
    for key, columns in times.items():
        print(key + " | " + " | ".join(f"{1000 * float(np.median(t)):.2f}" if t else "" for t in columns) + " |")
    print()
    bench_detectors(image, threads, checkpoints=checkpoints)


def twelve_megapixels(image: np.ndarray) -> np.ndarray:
    """The photo enlarged 6x onto a black 4000 x 3000 canvas: a 12-megapixel photo with its face."""
    large = np.zeros((3000, 4000, 3), np.uint8)
    face = cv2.resize(image, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)[:3000, :4000]
    large[:face.shape[0], :face.shape[1]] = face
    return large


def bench_detectors(image: np.ndarray, threads: int, repeats: int = 5, checkpoints: tuple[str, ...] = ()) -> None:
    """Median ms per photo of every detector of heatnet.detect.DETECTORS that is installed, and of
    heatnet's own detector from each of `checkpoints` (tools/train_detector.py), on the photo as it
    is, enlarged to 1280 px on its longer side, and on twelve_megapixels(photo)."""
    from heatnet.config import ConfigError
    from heatnet.detect import DETECTORS, make_detector

    cv2.setNumThreads(threads)
    factor = 1280 / max(image.shape[:2])
    photos = {f"{image.shape[1]} x {image.shape[0]}": image,
              "1280 px": cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR),
              "12 Mpx": twelve_megapixels(image)}
    print(f"| detector, {threads} thread(s) | " + " | ".join(f"ms, {size}" for size in photos) + " |\n"
          + "|---" * (len(photos) + 1) + "|")
    makers = {**DETECTORS, **{path: (lambda p=path: make_detector(p)) for path in checkpoints}}
    for name, make in makers.items():
        try:
            detector = make()
        except ConfigError:
            continue
        times = [1000 * float(np.median(call_seconds(lambda p=photo: detector(p), repeats))) for photo in photos.values()]
        print(f"| {name} | " + " | ".join(f"{t:.1f}" for t in times) + " |")


def bench_photos(root: Path | None, threads: int, models: list[str], detectors: list[str], photos: int = 20,
                 rounds: int = 3, mediapipe_python: str | None = None, refines: tuple[int, ...] = ()) -> None:
    """The whole photo pipeline as a user calls it, `load_pretrained(model).predict_image(image)`
    (detector, crops, network, refine pass), median ms per photo over the first `photos` lfpw test
    photos and on a 12-megapixel one (the first photo enlarged onto a 4000 x 3000 canvas); the
    model and detector pairs take turns in `rounds`, so a machine whose speed drifts slows them alike.
    `mediapipe_python`: a Python with mediapipe installed (its own venv), which times MediaPipe's
    face mesh on the same photos afterwards (tools/mediapipe_speed.py), a row of the same table.
    `refines`: the refine passes each pair is timed with (none given: each model's own, ShippedModel.refine)."""
    import torch

    from heatnet.datasets import default_data_root
    from heatnet.detect import make_detector
    from heatnet.predict import FacePredictor, Runtime
    from heatnet.samples import read_image

    torch.set_num_threads(threads)
    folder = (root or default_data_root()) / "300w/lfpw/testset"
    images = [read_image(path, upright=True) for path in sorted(folder.glob("*.jpg"))[:photos]]
    large = twelve_megapixels(images[0])
    pairs = {}
    for model in models:  # a shipped model's name or a checkpoint
        for name in detectors:
            for refine in refines or (None,):
                predictor = FacePredictor.from_checkpoint(model, detector=make_detector(name))  # its own refine
                predictor.refine = predictor.refine if refine is None else refine
                predictor.use_runtime(Runtime.AUTO, threads)  # as load_pretrained runs it
                pairs[model, name, predictor.refine] = predictor
    times = {pair: ([], []) for pair in pairs}
    for _ in range(rounds):
        for pair, predictor in pairs.items():
            times[pair][0].extend(call_seconds(lambda: [predictor.predict_image(image) for image in images], 1))
            times[pair][1].extend(call_seconds(lambda: predictor.predict_image(large), 1))
    print(f"\nthe whole photo pipeline, load_pretrained(model).predict_image, {threads} thread(s), median of {rounds} "
          f"rounds\n\n| model | detector | refine passes | ms per photo ({len(images)} lfpw test photos) "
          f"| ms, 12-megapixel photo |\n|---|---|---|---|---|")
    for (model, name, refine), (small, big) in times.items():
        print(f"| {model} | {name} | {refine} | {1000 * float(np.median(small)) / len(images):.1f} "
              f"| {1000 * float(np.median(big)):.0f} |")
    if mediapipe_python:
        import json
        import subprocess

        tool = Path(__file__).resolve().parents[1] / "tools" / "mediapipe_speed.py"
        out = subprocess.run([mediapipe_python, str(tool), "--data-root", str(root or default_data_root()),
                              "--photos", str(photos), "--rounds", str(rounds)], capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        if out.returncode:
            print(f"| MediaPipe face mesh | (failed: {out.stderr.strip().splitlines()[-1:]}) | | | |")
        else:
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| MediaPipe face mesh 0.10.21 (468 points) | BlazeFace (its own) | | {row['ms_per_photo']:.1f} "
                  f"| {row['ms_12mp']:.0f} |")


def call_seconds(call, repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls, after one untimed call (another candidate's run may have
    left other data in the caches)."""
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 matrix-multiply rate with torch's threads: the ceiling for convolutions."""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def bench_train(experiment: Path, s: Settings, steps: int) -> None:
    """Three training rates of an experiment, measured in one run on its device (--device): the
    model-step ceiling (one batch already on the device, stepped on again and again), the input
    alone (the run's input path: loader workers, or canvases warped and augmented on the device),
    and the training loop (both, as heatnet.training runs them); with the share of the loop's time
    the device spends in model steps, and on a CPU the GFLOP/s against its matrix-multiply rate."""
    import itertools

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from heatnet.samples import to_device_batch
    from heatnet.experiment import build_method, load_experiment
    from heatnet.loading import TrainingInput, make_dataset
    from heatnet.runtime import choose_device, choose_precision, set_threads
    from heatnet.samples import has_samples
    from heatnet.training import make_optimizer
    from heatnet.training.step import training_step

    set_threads(s.threads)
    device = choose_device(s.device)
    precision = choose_precision(device, s.amp)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    train_set = make_dataset(s, s.train_split, s.train_limit, augment=True)
    method = build_method(load_experiment(experiment), s, train_set.scheme)
    method.model.to(device, memory_format=torch.channels_last).train()
    with FlopCounterMode(display=False) as counter:
        method.model(torch.rand(1, s.channels, s.input_size, s.input_size, device=device))
    train_gflop = 3 * counter.get_total_flops() / 1e9  # forward + backward (about twice the forward)
    optimizer, scaler = make_optimizer(method.model, s), precision.grad_scaler()
    model = torch.compile(method.model) if s.compile else method.model
    train_input = TrainingInput(train_set, s, device)
    batches = (batch for epoch in itertools.count() for batch in train_input.epoch(epoch) if has_samples(batch))
    timer = StepTimer(device)

    def step(batch: dict) -> None:
        with timer:
            training_step(method, optimizer, scaler, precision, s.grad_clip, batch, s.lr, device, model)

    images, points, visibility = to_device_batch(next(batches), device)
    on_device = {"image": images, "points": points, "visibility": visibility}
    ceiling = timed_rate(lambda: step(on_device), steps, s.batch_size, device)
    loader = timed_rate(lambda: next(batches)["points"], steps, s.batch_size, device)
    timer.reset()
    loop = timed_rate(lambda: step(next(batches)), steps, s.batch_size, device)
    busy = timer.busy_share()
    print(f"{experiment}: {s.input_size} px, batch {s.batch_size}, {device} {precision.dtype or torch.float32}, "
          f"{torch.get_num_threads()} threads{', compiled' if s.compile else ''}; {steps} steps each after warm-up")
    print(f"input: {train_input.describe()}")
    print(f"model step alone (a batch already on the device): {ceiling:8.1f} samples/s")
    print(f"input alone:                                      {loader:8.1f} samples/s")
    print(f"training loop (input + model step):               {loop:8.1f} samples/s = {100 * loop / ceiling:.0f} % of "
          f"the model step; the {device.type.upper()} is in model steps {100 * busy:.0f} % of the loop's time")
    if device.type == "cpu":
        peak = matmul_gflops()
        print(f"{train_gflop:.2f} GFLOP per sample (3x forward): {train_gflop * loop:.1f} GFLOP/s in the loop, "
              f"{100 * train_gflop * loop / peak:.0f} % of this machine's float32 matrix multiply ({peak:.1f} GFLOP/s)")


def timed_rate(fn, steps: int, batch_size: int, device, warmup: int = 3) -> float:
    """Samples per second of `steps` calls of fn() (a batch each), after `warmup` untimed ones,
    waiting for the device at both ends."""
    from heatnet.runtime import synchronize

    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


class StepTimer:
    """How much of a stretch of wall time the device spent in the timed blocks. On a GPU, events
    recorded in its stream before and after each block: when the GPU waits for input the start
    event runs at once and the gap is idle; when it is the bottleneck the intervals tile its time."""

    def __init__(self, device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        import torch

        self.seconds, self.events, self.started = 0.0, [], time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> None:
        import torch

        if self.device.type == "cuda":
            self.events.append(torch.cuda.Event(enable_timing=True))
            self.events[-1].record()
        self.entered = time.perf_counter()

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            self.events.append(torch.cuda.Event(enable_timing=True))
            self.events[-1].record()
        self.seconds += time.perf_counter() - self.entered

    def busy_share(self) -> float:
        """Since reset: on a GPU the events' intervals over the wall time, on a CPU the blocks' own."""
        import torch

        wall = time.perf_counter() - self.started
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            pairs = zip(self.events[::2], self.events[1::2])
            return sum(start.elapsed_time(end) for start, end in pairs) / 1000 / wall
        return self.seconds / wall
