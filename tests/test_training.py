"""The training tool end to end on tiny synthetic runs: run folder, TensorBoard, resume, evaluate."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from heatnet.checkpoint import load_checkpoint
from heatnet.training import NonFiniteLoss, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--input_size=64", "--train_limit=32", "--val_limit=16", "--batch_size=8", "--epochs=2", "--workers=0",
        "--log_images=4", "--threads=2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = train(ROOT / "experiments/unet_kl.py", TINY, run_dir=run_dir, progress=False)
    return run_dir, result


def test_run_folder_holds_everything(tiny_run):
    run_dir, result = tiny_run
    for name in ("settings.json", "experiment.py", "run.json", "metrics.json", "best.pt", "last.pt"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "settings.json").read_text())["input_size"] == 64
    assert len(json.loads((run_dir / "run.json").read_text())["git_commit"]) >= 7
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["final"]["nme"] == result["final"]["nme"]
    state = load_checkpoint(run_dir / "last.pt")
    assert state["scheme"] == "ibug68" and state["codec"]["stride"] == 4 and state["heatnet_version"]


def test_tensorboard_has_scalars_and_images(tiny_run):
    run_dir, _ = tiny_run
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/samples_per_s", "val/nme", "val/mae_px", "val/fr@0.1", "val/auc@0.1",
            "val/loss"} <= scalars
    images = set(events.Tags()["images"])
    assert {"val/heatmaps", "val/error_curve"} <= images and any(t.startswith("val/predictions") for t in images)
    assert len(events.Scalars("val/nme")) == 2


def test_evaluate_tool_matches_training_validation(tiny_run, tmp_path):
    run_dir, result = tiny_run
    out = subprocess.run([sys.executable, str(ROOT / "tools/evaluate.py"), str(run_dir / "last.pt"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["nme"] == pytest.approx(result["final"]["nme"], rel=1e-4)
    assert metrics["mae_px"] == pytest.approx(result["final"]["mae_px"], rel=1e-4)
    assert (tmp_path / "error_curve.png").stat().st_size > 1000
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 17


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match="last good checkpoint"):
        train(ROOT / "experiments/unet_kl.py", TINY + ["--lr=1e30", "--grad_clip=0", "--epochs=3"],
              run_dir=tmp_path, progress=False)
    if (tmp_path / "last.pt").exists():  # diverged after a finished epoch: that checkpoint is intact
        assert torch.isfinite(torch.cat([v.flatten().float() for v in load_checkpoint(tmp_path / "last.pt")["model"].values()])).all()


def _train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "tools/train.py"), str(ROOT / "experiments/unet_kl.py"), "--no-progress",
            "--run-dir", str(run_dir), *TINY, "--epochs=3", "--checkpoint_minutes=0.0001", *extra]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    reference = train(ROOT / "experiments/unet_kl.py", TINY + ["--epochs=3", "--checkpoint_minutes=0.0001"],
                      run_dir=tmp_path / "ref", progress=False)
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once a mid-run checkpoint exists (epoch 1 or later)
        if (run_dir / "last.pt").exists() and load_checkpoint(run_dir / "last.pt")["step"] >= 5:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] < 12  # it really was interrupted
    resumed = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), str(ROOT / "experiments/unet_kl.py"),
                              "--no-progress", "--resume", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = json.loads((run_dir / "metrics.json").read_text())["final"]
    assert final["epoch"] == 3
    assert final["nme"] == pytest.approx(reference["final"]["nme"], rel=0.02)


def test_ctrl_c_saves_before_exiting(tmp_path):
    run_dir = tmp_path / "interrupted"
    cmd = [sys.executable, str(ROOT / "tools/train.py"), str(ROOT / "experiments/unet_kl.py"), "--no-progress",
           "--run-dir", str(run_dir), *TINY, "--epochs=50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # inside the training loop
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"continue with --resume {run_dir}" in stdout
    state = load_checkpoint(run_dir / "last.pt")
    assert state["epoch"] < 50 and (state["step"] > 0 or state["epoch"] > 0)


def test_early_stopping(tmp_path, monkeypatch):
    """Validation NME scripted to worsen every epoch: patience 2 stops after epoch 3 (best: 1)."""
    import heatnet.training as training

    real_evaluate, scripted = training.evaluate, iter([10.0, 11.0, 12.0, 13.0, 14.0])

    def worsening(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        summary = {**result.summary(), "nme": next(scripted)}
        result.summary = lambda: summary
        return result

    monkeypatch.setattr(training, "evaluate", worsening)
    result = train(ROOT / "experiments/unet_kl.py", TINY + ["--epochs=5", "--early_stop_patience=2"],
                   run_dir=tmp_path, progress=False)
    assert result["stopped_by"] == "early stopping"
    assert [h["nme"] for h in result["history"]] == [10.0, 11.0, 12.0] and result["best_epoch"] == 1


def test_extra_decoders_score_the_same_forward_pass(tiny_run):
    from heatnet.codecs import Argmax
    from heatnet.evaluation import evaluate, load_trained
    from heatnet.training import make_dataset, make_loader

    run_dir, result = tiny_run
    method, s, _ = load_trained(run_dir / "last.pt")
    result = evaluate(method, make_loader(make_dataset(s, s.val_split, s.val_limit), s), torch.device("cpu"),
                      extra_decoders={"own": method.codec.decoder, "argmax": Argmax()})
    assert result.by_decoder["own"].summary()["nme"] == pytest.approx(result.errors.summary()["nme"])
    assert result.by_decoder["argmax"].summary()["nme"] != pytest.approx(result.errors.summary()["nme"])


def test_init_from_a_heatnet_checkpoint(tiny_run, tmp_path, capsys):
    """The offline route to pretraining: matching tensors load, a different head is left as built."""
    from heatnet.checkpoint import load_matching_weights
    from heatnet.evaluation import load_trained
    from heatnet.schemes import IMM58

    run_dir, _ = tiny_run
    weights = load_checkpoint(run_dir / "last.pt")["model"]
    method, s, _ = load_trained(run_dir / "last.pt")
    other = __import__("experiments.unet_kl", fromlist=["build"]).build(s, IMM58)  # 58 points
    loaded, skipped = load_matching_weights(other.model, weights)
    assert skipped and all("segmentation_head" in k for k in skipped)
    assert all(torch.equal(other.model.state_dict()[k], weights[k]) for k in loaded)
    train(ROOT / "experiments/unet_kl.py", TINY + ["--epochs=1", f"--init_from={run_dir / 'last.pt'}"],
          run_dir=tmp_path, progress=False)
    assert f"from {run_dir / 'last.pt'}; 0 left as built" in capsys.readouterr().out
