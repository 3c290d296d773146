"""A newcomer's first hour: bad files mixed into the data and ordinary command-line mistakes end
in one clear message (exit code 2) or a counted warning, and nothing already written is lost."""
import dataclasses
import json
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import add_300w_face, in_process, interrupt, one_line_error, settings_for, start_interruptible, wait_for
from heatnet.config import Settings
from heatnet.datasets import MAX_IMAGE_PIXELS, is_validation_group, load_split
from heatnet.training import train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
TINY = ["--input_size=64", "--train_limit=32", "--val_limit=16", "--test_limit=16", "--batch_size=8", "--epochs=1",
        "--workers=0", "--log_images=2", "--threads=2"]


def _tool(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def _truncated_jpeg(seed: int) -> bytes:
    """A JPEG whose header reads (size known) but whose data stops half-way."""
    image = np.random.default_rng(seed).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    return data[: len(data) // 2]


def _names(count: int, validation: bool, prefix: str) -> list[str]:
    """Face names in helen/trainset whose image groups land in (or out of) the validation split."""
    found = (f"{prefix}{i}" for i in range(10_000))
    return [n for n in found if is_validation_group(f"trainset/{n}") == validation][:count]


@pytest.fixture
def w300_with_truncated_jpegs(w300_root):
    """12 good training faces, 2 good validation and 3 good test faces, and one truncated JPEG in
    each of train, val and test."""
    for name in _names(12, False, "good_train"):
        add_300w_face(w300_root, name)
    for name in _names(2, True, "good_val"):
        add_300w_face(w300_root, name)
    for i in range(3):
        add_300w_face(w300_root, f"good_test{i}", folder="lfpw/testset")
    add_300w_face(w300_root, _names(1, False, "trunc_train")[0], image=_truncated_jpeg(0))
    add_300w_face(w300_root, _names(1, True, "trunc_val")[0], image=_truncated_jpeg(1))
    add_300w_face(w300_root, "trunc_test", image=_truncated_jpeg(2), folder="lfpw/testset")
    return w300_root


def test_truncated_jpegs_are_skipped_and_counted_in_training_and_evaluation(w300_with_truncated_jpegs, tmp_path):
    root = w300_with_truncated_jpegs
    run_dir = tmp_path / "run"
    overrides = TINY + ["--dataset=300w", f"--data_root={root}", "--batch_size=4", "--workers=1", "--epochs=2",
                        "--flip_test=true"]  # evaluate.py then flips too, as the run's test did
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(UNET_KL, settings_for(UNET_KL, overrides), run_dir=run_dir, progress=False)
    messages = [str(w.message) for w in caught if "bad sample" in str(w.message)]
    for where, name in (("300w/train epoch 1", "trunc_train"), ("300w/train epoch 2", "trunc_train"),
                        ("evaluation", "trunc_val"), ("evaluation", "trunc_test")):
        assert any(m.startswith(f"{where}: skipped 1 bad sample") and name in m and "cannot decode" in m
                   for m in messages), (where, messages)
    assert [h["train_skipped"] for h in result.history] == [1, 1]
    assert result.samples == result.steps * 4 - 2  # the dropped JPEG (once an epoch) is not counted as trained
    assert [h["val_skipped"] for h in result.history] == [1, 1]
    assert len(result.test["skipped"]) == 1 and result.test["images"] == 3
    assert (run_dir / "last.pt").is_file() and (run_dir / "best.pt").is_file()

    out = _tool("tools/evaluate.py", str(run_dir / "best.pt"), "--split", "test", "--out", str(tmp_path / "eval"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "3 images, 1 unreadable left out" in out.stdout and "skipped 1 bad sample" in out.stderr
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert metrics["flip_test"] is True and result.test["flip_test"] is True
    assert metrics["metrics"]["nme_%"] == pytest.approx(result.test["nme_%"], rel=1e-5)


def test_a_batch_keeps_its_readable_samples(w300_with_truncated_jpegs):
    from heatnet.samples import LandmarkDataset, collate

    dataset = LandmarkDataset(load_split("300w", "test", w300_with_truncated_jpegs), 64)
    batch = collate(dataset.__getitems__(list(range(len(dataset)))))
    assert batch["image"].shape == (3, 3, 64, 64) and len(batch["skipped"]) == 1
    assert "trunc_test.jpg: cannot decode" in batch["skipped"][0]


def test_images_above_the_decompression_bomb_limit_are_skipped_with_a_message(w300_root):
    side = int(np.sqrt(MAX_IMAGE_PIXELS)) + 100  # above the limit: Pillow would warn
    huge = w300_root / "300w/helen/trainset/huge.png"
    Image.new("1", (side, side)).save(huge)
    add_300w_face(w300_root, "huge", image=b"")  # its .pts; the image is the PNG above
    side2 = int(np.sqrt(2 * MAX_IMAGE_PIXELS)) + 100  # above twice the limit: Pillow would raise
    Image.new("1", (side2, side2)).save(w300_root / "300w/helen/trainset/bomb.png")
    add_300w_face(w300_root, "bomb", image=b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = load_split("300w", "trainval", w300_root)
    assert len(source) == 4
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "skipped 2 bad sample(s)" in messages[0], messages
    assert "DecompressionBomb" not in " ".join(type(w.message).__name__ for w in caught)
    from heatnet.datasets import BadSamples

    bad = BadSamples("300w/trainval", quiet=True)
    load_split("300w", "trainval", w300_root, bad=bad)
    assert any(f"bomb.png: image is {side2} x {side2} px, above the" in p and "downscale it" in p for p in bad.problems)
    assert any(f"huge.png: image is {side} x {side} px, above the" in p and "downscale it" in p for p in bad.problems)


def test_check_data_lists_every_skipped_sample_and_unannotated_image(w300_with_truncated_jpegs):
    root = w300_with_truncated_jpegs
    add_300w_face(root, "broken", pts_text="version: 1\n{\n1 2 3\n}\n")
    cv2.imwrite(str(root / "300w/helen/trainset/no_points.jpg"), np.zeros((50, 50, 3), np.uint8))
    out = in_process("tools/check_data.py", "--dataset", "300w", "--split", "trainval", "--data-root", str(root),
                     "--no-progress")
    assert out.returncode == 1, out.stderr
    assert "broken.pts" in out.stdout and "expected 'x y'" in out.stdout
    assert "trunc_train" in out.stdout and "trunc_val" in out.stdout and "cannot decode" in out.stdout
    assert "no_points.jpg" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == ("300w/trainval: 18 usable sample(s); skipped 1 at load and 2 that "
                                                   "do not decode; 1 image(s) without annotation")
    clean = in_process("tools/check_data.py", "--dataset", "300w", "--split", "test", "--data-root", str(root),
                       "--no-progress")
    assert clean.returncode == 1 and "skipped 0 at load and 1 that do not decode" in clean.stdout


# --- run folders ---------------------------------------------------------------------------------
def _train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return ["tools/train.py", "experiments/unet_kl.py", "--no-progress", "--run-dir", str(run_dir), *TINY, *extra]


def test_a_second_training_into_the_same_run_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    first = start_interruptible([sys.executable, *_train_cmd(run_dir, "--epochs=1000")], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (run_dir / "run.json").exists(), first)  # set-up done, lock held: it is training
        one_line_error(in_process(*_train_cmd(run_dir)), "another training is writing to this run folder")
        wait_for(lambda: (run_dir / "last.pt").exists(), first)
        one_line_error(in_process(*_train_cmd(run_dir)), f"{run_dir} already holds a run; continue it with --resume")
        one_line_error(in_process("tools/train.py", "--resume", str(run_dir)),
                        "another training is writing to this run folder")
    finally:
        interrupt(first)
    assert first.returncode == 130 and (run_dir / "last.pt").is_file()


def test_a_run_stopped_before_its_first_checkpoint_is_started_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    (run_dir / "events.out.tfevents.1.old").write_bytes(b"stale")
    train(UNET_KL, settings_for(UNET_KL, TINY), run_dir=run_dir, progress=False)
    assert not (run_dir / "events.out.tfevents.1.old").exists() and (run_dir / "last.pt").is_file()
    assert json.loads((run_dir / "run.json").read_text())["train_samples"] == 32


@pytest.mark.parametrize("args, message", [
    (["--batch_size=0"], "--batch_size=0: must be >= 1 (samples per optimizer step)"),
    (["--channels=2"], "--channels=2: must be one of 1, 3 (1 for grayscale input)"),
    (["--epochs=0"], "--epochs must be positive, got 0"),
    (["--ema_decay=1"], "--ema_decay=1.0: must be in [0, 1) (exponential moving average"),
    (["--sigma=0"], "--sigma=0.0: must be in (0, 64] (target Gaussian std in heatmap pixels)"),
    (["--sigma=-1"], "--sigma=-1.0: must be in (0, 64]"),
    (["--rotation_deg=-5"], "--rotation_deg=-5.0: must be in [0, 180] (uniform in +-rotation_deg)"),
    (["--box_scale=0"], "--box_scale=0.0: must be in (0, 10]"),
    (["--mirror_prob=2"], "--mirror_prob=2.0: must be in [0, 1]"),
    (["--device=cuda:7"], "--device=cuda:7"),
    (["--dataset=300w", "--data_root=/nowhere"], "data root /nowhere is not a folder"),
])
def test_train_errors_are_one_line_and_leave_no_run_folder(tmp_path, args, message):
    if args == ["--device=cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    one_line_error(in_process(*_train_cmd(tmp_path / "run", *args)), message)
    assert not (tmp_path / "run").exists()


def test_an_unwritable_run_folder_is_reported_at_start_up(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    one_line_error(in_process(*_train_cmd(tmp_path / "file" / "run")), "is a file, not a folder")


def test_resume_of_a_run_with_another_experiment_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    train(UNET_KL, settings_for(UNET_KL, TINY), run_dir=run_dir, progress=False)
    one_line_error(in_process("tools/train.py", "experiments/fpn_kl.py", "--resume", str(run_dir)),
                    "--resume continues the run in its own folder with the experiment it trained; leave "
                    "experiments/fpn_kl.py out")


def test_an_experiment_outside_the_repository_may_import_the_shipped_ones(tmp_path):
    (tmp_path / "my_idea.py").write_text("from dataclasses import replace\n"
                                         "from experiments.unet_kl import build, settings as base  # noqa: F401\n"
                                         "settings = replace(base, sigma=2.0)\n")
    out = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), str(tmp_path / "my_idea.py"), "--no-progress",
                          "--run-dir", str(tmp_path / "run"), *TINY], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads((tmp_path / "run/settings.json").read_text())["sigma"] == 2.0


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow  # about a minute of processes started, killed and resumed: make test-slow
def test_a_failed_save_stops_with_the_newest_good_checkpoint_and_resume_falls_back_to_best(tmp_path):
    """A real failed write: the process may not write files larger than best.pt (weights only),
    so last.pt (with AdamW's moments, about 3x bigger) cannot be written."""
    run_dir = tmp_path / "run"
    limit = 100 * 2**20  # between best.pt (~57 MB for Unet-ResNet18) and last.pt (~172 MB)
    out = subprocess.run([sys.executable, *_train_cmd(run_dir, "--epochs=2")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, preexec_fn=_limit_file_size(limit))
    one_line_error(out, f"could not write {run_dir / 'last.pt'} (File too large); the newest good checkpoint is "
                         f"{run_dir / 'best.pt'}; free space, then --resume {run_dir}")
    assert sorted(p.name for p in run_dir.glob("*.pt*")) == ["best.pt"] and not list(run_dir.glob(".*tmp*"))
    assert (run_dir / "best.pt").stat().st_size < limit
    stopped = json.loads((run_dir / "metrics.json").read_text())  # readable before --resume
    assert stopped["stopped_by"] == "save failed" and stopped["steps"] == 4 and "test" not in stopped
    resumed = _tool("tools/train.py", "--no-progress", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "no last.pt; resuming from best.pt (epoch 1, step 4)" in resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["final"]["epoch"] == 2 and metrics["steps"] == 8


# --- tools that explain themselves ------------------------------------------------------------------
def _help_probe(tool: str, *args: str, env: dict | None = None) -> tuple[str, bool]:
    """`tools/<tool>.py *args --help` in a fresh interpreter -> (its output, whether it imported torch)."""
    probe = (f"import runpy, sys\nsys.argv = ['tools/{tool}.py', *{list(args)!r}, '--help']\n"
             f"try:\n    runpy.run_path('tools/{tool}.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('TORCH IMPORTED' if 'torch' in sys.modules else 'no torch')")
    out = _tool("-c", probe, env=env)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stdout[-500:] + out.stderr[-500:]
    text, marker = out.stdout.strip().rsplit("\n", 1)
    return text, marker == "TORCH IMPORTED"


def _help_without_torch(tool: str) -> str:
    """`tools/<tool>.py --help` in a fresh interpreter; asserts it never imported torch (seconds)."""
    text, imported = _help_probe(tool)
    assert not imported, text[-500:]
    return text


def test_an_experiments_help_is_kept_and_then_answers_without_torch(tmp_path):
    """The first --help of an experiment imports it (torch, smp) and keeps the text; the next
    answers the same without torch; an experiment whose source differs gets its own text."""
    env = {**os.environ, "HEATNET_CACHE": str(tmp_path / "cache")}
    first, imported = _help_probe("train", "experiments/w300_fast.py", env=env)
    assert imported and "--input_size=112" in first
    second, imported = _help_probe("train", "experiments/w300_fast.py", env=env)
    assert not imported and second == first
    variant = tmp_path / "experiments" / "w300_fast.py"
    variant.parent.mkdir()
    variant.write_text((ROOT / "experiments" / "w300_fast.py").read_text().replace('"input_size": 112', '"input_size": 96'))
    changed, imported = _help_probe("train", str(variant), env=env)
    assert imported and "--input_size=96" in changed


def test_train_help_lists_every_setting_without_importing_torch():
    text = _help_without_torch("train")
    for field in dataclasses.fields(Settings):
        assert f"--{field.name}=" in text, field.name
    assert "--box=landmarks  (landmarks | annotation | image)" in text and "EXPERIMENT --help" in text


def test_an_experiments_help_lists_its_method_settings_with_its_values():
    text = in_process("tools/train.py", "experiments/w300_unet_js.py", "--help").stdout
    assert "--input_size=160  (int, in [8, 4096])" in text and "--loss=HeatmapJS  (HeatmapKL | HeatmapMSE" in text
    assert "--decoder=SoftArgmax(window_radius=4, correct_truncation=True, iterations=4)  (Argmax | QuarterOffset" in text
    text = in_process("tools/train.py", "experiments/regression_resnet18.py", "--help").stdout
    assert "--blurpool=true  (bool)" in text and "--loss=L1  (L1 | SmoothL1 | MSE | Wing | RLE)" in text
    assert "    --sigma=" not in text and "    --architecture=" not in text


@pytest.mark.parametrize("tool", sorted(path.stem for path in (ROOT / "tools").glob("*.py")))
def test_every_tool_answers_help_without_importing_torch(tool):
    _help_without_torch(tool)


@pytest.mark.parametrize("args, message", [
    (["tools/benchmark.py", "--seeds", "0"], "--seeds must be at least 1"),
    (["tools/benchmark.py", "--budgets", "1,x"], "--budgets expects comma-separated positive minutes (e.g. 1,5,20), got '1,x'"),
    (["tools/benchmark.py", "--budget-report", "results/heads_5min"], "--budget-report: give --out"),
    (["tools/benchmark.py", "--merge", "results/heads_5min"], "--merge: give --out"),
    (["tools/benchmark.py", "--seeds", "1", "--first-seed", "-1"], "--first-seed at least 0"),
    (["tools/benchmark.py", "--merge", "docs/studies", "--out", "/tmp/x"], "docs/studies/results.json: not a finished"),
    (["tools/benchmark.py", "--dataset", "celeb"], "unknown dataset 'celeb'"),
    (["tools/benchmark.py", "--dataset", "300w", "--data-root", "/nowhere"], "data root /nowhere is not a folder"),
    (["tools/benchmark.py", "--quick", "--out", "/dev/null/results"], "is a file, not a folder"),
    (["tools/evaluate.py", "/nowhere/best.pt"], "/nowhere/best.pt: no such model: give a shipped model (accurate, fast), "
                                                "a checkpoint file or a run folder"),
    (["tools/evaluate.py", "/nowhere/best.pt", "--device=cuda:7"], "--device=cuda:7"),
    (["tools/visualize.py", "dataset", "--out", "/tmp/heatnet_view.txt"], "not an image file name"),
    (["tools/visualize.py", "dataset", "--count", "0"], "--count must be at least 1"),
    (["tools/evaluate.py", "/nowhere/best.pt", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["tools/evaluate.py"], "give a checkpoint, or --dlib"),
    (["tools/evaluate.py", "fast", "--detector", "mtcnn", "--flip-test"], "--flip-test applies to the evaluation from "
                                                                          "ground-truth crops; --detector predicts"),
    (["tools/evaluate.py", "fast", "--shifts", "1", "--decoder", "Dark"], "--decoder applies to the evaluation from"),
    (["tools/evaluate.py", "fast", "--refine", "2"], "--refine applies with --detector only"),
    (["tools/predict.py", "heatnet/assets", "--beta", "1"], "--beta: for a video only"),
    (["tools/evaluate.py", "--dlib", "--dataset", "300w"], "--dlib needs --dataset and --split (or --images), --detector and --out"),
    (["tools/export.py", "--out", "/tmp/heatnet_model.zip"], "the suffix chooses the format"),
    (["tools/export.py", "/nowhere/best.pt", "--out", "/tmp/heatnet_model.onnx"], "no such model"),
    (["tools/jitter.py", "/nowhere/photo.jpg"], "image file not found"),
    (["tools/jitter.py"], "give a photo or --dataset"),
    (["tools/fit_detector_box.py", "--detector", "yolo"], "choose from mtcnn"),
    (["tools/visualize.py", "dataset", "--dataset", "300w", "--data-root", "/nowhere"], "data root /nowhere"),
    (["tools/speed.py", "data", "--data-root", "/nowhere"], "data root /nowhere is not a folder"),
    (["tools/check_data.py", "--dataset", "celeb"], "unknown dataset 'celeb'"),
    (["tools/sweep.py", "experiments/unet_kl.py", "--grid", "sigma=1,x"], "--sigma expects float, got 'x'"),
    (["tools/sweep.py", "experiments/unet_kl.py", "--grid", "sigmaa=1,2"], "unknown setting --sigmaa"),
])
def test_other_tools_turn_known_errors_into_one_line(args, message):
    if "--device=cuda:7" in args and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    one_line_error(in_process(*args), message)


TOOLS = sorted((Path(__file__).resolve().parents[1] / "tools").glob("*.py"))


@pytest.mark.parametrize("tool", TOOLS, ids=lambda path: path.name)
def test_every_tool_option_has_help_and_help_imports_no_torch(tool):
    """--help answers without importing torch (what makes it take seconds), lists --no-progress,
    and every option has a line of help."""
    import re

    probe = ("import runpy, sys\nsys.argv = [sys.argv[1], '--help']\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    out = subprocess.run([sys.executable, "-c", probe, str(tool)], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert out.stdout.rstrip().endswith("NO TORCH"), out.stdout[-300:] + out.stderr[-300:]
    lines = out.stdout.splitlines()
    assert any(line.strip().startswith("--no-progress") for line in lines)
    for i, line in enumerate(lines):
        option = re.match(r"^  (-[-\w]+)", line)
        if option and option.group(1) not in ("-h",):
            has_text = re.search(r"\S\s{2,}\S", line.strip()) or re.match(r"^\s{6,}\S", lines[i + 1] if i + 1 < len(lines) else "")
            assert has_text, f"{tool.name}: {option.group(1)} has no help"
