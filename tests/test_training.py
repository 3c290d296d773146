"""The training tool end to end on tiny synthetic runs: run folder, TensorBoard, resume, evaluate."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import checkpoint_step, interrupt, max_relative_difference, settings_for, start_interruptible, wait_for
from heatnet.averaging import WeightAverage
from heatnet.checkpoint import load_checkpoint
from heatnet.training import NonFiniteLoss, train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
TINY = ["--input_size=64", "--train_limit=32", "--val_limit=16", "--test_limit=16", "--batch_size=8", "--epochs=2",
        "--workers=0", "--log_images=4", "--threads=2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = train(UNET_KL, settings_for(UNET_KL, TINY), run_dir=run_dir, progress=False)
    return run_dir, result


def test_run_folder_holds_everything(tiny_run):
    run_dir, result = tiny_run
    for name in ("settings.json", "experiment.py", "run.json", "metrics.json", "best.pt", "last.pt"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "settings.json").read_text())["input_size"] == 64
    assert len(json.loads((run_dir / "run.json").read_text())["git_commit"]) >= 7
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["final"]["nme_%"] == result.final["nme_%"]
    assert metrics["selection"]["checkpoint"] == "best.pt" and metrics["steps"] == 8 and metrics["samples"] == 64
    assert metrics["test"]["split"] == "test" and metrics["test"]["images"] == 16 and len(metrics["test"]["per_image_nme"]) == 16
    state = load_checkpoint(run_dir / "last.pt")
    assert state["scheme"] == "ibug68" and state["codec"]["stride"] == 4 and state["heatnet_version"]
    assert state["codec"]["decoder"] == "SoftArgmax(window_radius=4, correct_truncation=True, iterations=4)"
    assert set(state["experiment"]["sources"]) == {"experiments.unet_kl"} and "optimizer" in state["training"]
    best = load_checkpoint(run_dir / "best.pt")  # weights, how to rebuild them, the position: no optimizer
    assert set(best["training"]) == {"progress", "budget"} and best["training"]["progress"]["epoch"] >= 1


def test_tensorboard_has_scalars_and_images(tiny_run):
    run_dir, _ = tiny_run
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/samples_per_s", "val/nme_%", "val/mae_px", "val/fr@10_%", "val/auc@10_%",
            "val/loss"} <= scalars
    images = set(events.Tags()["images"])
    assert {"val/heatmaps", "val/error_curve"} <= images and any(t.startswith("val/predictions") for t in images)
    assert len(events.Scalars("val/nme_%")) == 2


def test_evaluate_tool_matches_training_validation(tiny_run, tmp_path):
    run_dir, result = tiny_run
    out = subprocess.run([sys.executable, str(ROOT / "tools/evaluate.py"), str(run_dir / "last.pt"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["nme_%"] == pytest.approx(result.final["nme_%"], rel=1e-4)
    assert metrics["mae_px"] == pytest.approx(result.final["mae_px"], rel=1e-4)
    assert (tmp_path / "error_curve.png").stat().st_size > 1000
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert len(rows) == 17 and rows[0].startswith("name,x0,y0,x1,y1,") and rows[0].endswith(",x67,y67")
    assert "synthetic/val" in out.stderr  # the progress bar


def test_non_finite_loss_stops_and_says_whether_a_checkpoint_is_kept(tmp_path):
    """Diverging before the first save keeps nothing, and says so; diverging after one keeps that
    checkpoint, intact (a save after every step: the first step's loss is finite, the second's not)."""
    diverging = TINY + ["--lr=1e30", "--grad_clip=0", "--warmup_epochs=0", "--epochs=3"]
    with pytest.raises(NonFiniteLoss, match="no checkpoint had been saved yet, so nothing is kept"):
        train(UNET_KL, settings_for(UNET_KL, diverging), run_dir=tmp_path / "early", progress=False)
    assert not (tmp_path / "early/last.pt").exists()
    with pytest.raises(NonFiniteLoss, match=r"step 1; the last good checkpoint .*last.pt is kept"):
        train(UNET_KL, settings_for(UNET_KL, diverging + ["--checkpoint_minutes=0"]), run_dir=tmp_path / "saved",
              progress=False)
    weights = load_checkpoint(tmp_path / "saved/last.pt")["model"].values()
    assert torch.isfinite(torch.cat([v.flatten().float() for v in weights])).all()


def _train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "tools/train.py"), str(UNET_KL), "--no-progress",
            "--run-dir", str(run_dir), *TINY, "--epochs=3", "--checkpoint_minutes=0.0001", *extra]


@pytest.mark.slow  # about a minute of processes started, killed and resumed: make test-slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    # with a weight average on: last.pt must bring back both the trained weights and their average
    averaged = ["--ema_decay=0.9"]
    reference = train(UNET_KL, settings_for(UNET_KL, TINY + ["--epochs=3", "--checkpoint_minutes=0.0001"] + averaged),
                      run_dir=tmp_path / "ref", progress=False)
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(run_dir, *averaged), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: checkpoint_step(run_dir) >= 6 or proc.poll() is not None)  # mid-epoch 2 (4 steps an epoch)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < checkpoint_step(run_dir) < 12  # it really was interrupted
    resumed = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), "--no-progress", "--resume",
                              str(run_dir / "last.pt")], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["final"]["epoch"] == 3 and final["steps"] == reference.steps == 12
    resumed_state, reference_state = load_checkpoint(run_dir / "last.pt"), load_checkpoint(tmp_path / "ref/last.pt")
    assert max_relative_difference(resumed_state["model"], reference_state["model"]) < 1e-6  # the average
    trained = resumed_state["training"]["weights"]
    assert max_relative_difference(trained, reference_state["training"]["weights"]) < 1e-6
    assert max_relative_difference(resumed_state["model"], trained) > 1e-3  # the average is not the trained weights
    for key in ("nme_%", "mae_px", "loss"):
        assert final["final"][key] == pytest.approx(reference.final[key], rel=1e-6)
        assert final["test"][key] == pytest.approx(reference.test[key], rel=1e-6)


def test_ctrl_c_saves_before_exiting(tmp_path):
    run_dir = tmp_path / "interrupted"
    cmd = [sys.executable, str(ROOT / "tools/train.py"), str(UNET_KL), "--no-progress",
           "--run-dir", str(run_dir), *TINY, "--epochs=50", "--checkpoint_minutes=0.0001"]
    proc = start_interruptible(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: checkpoint_step(run_dir) >= 1 or proc.poll() is not None)  # inside the training loop
    stdout, _ = interrupt(proc)
    assert proc.returncode == 130
    assert f"continue with --resume {run_dir}" in stdout
    assert 1 <= checkpoint_step(run_dir) < 200
    # the run can be read without resuming: its history so far, marked as interrupted, no test
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stopped_by"] == "interrupted" and metrics["steps"] == checkpoint_step(run_dir)
    assert "test" not in metrics and metrics["samples"] == metrics["steps"] * 8


def test_training_never_reads_a_test_sample(tmp_path, monkeypatch):
    """Every sample read is logged with its split, and every checkpoint save too: test samples
    are read only after the last save, and a run without a test split makes the same choices."""
    import heatnet.loading as loading
    import heatnet.training.setup as setup

    log = []

    class Spy:
        def __init__(self, source, split):
            self.source, self.split = source, split
            self.scheme, self.normaliser = source.scheme, source.normaliser
            self.has_annotation_boxes = source.has_annotation_boxes

        def __len__(self):
            return len(self.source)

        def __getitem__(self, index):
            log.append(("read", self.split))
            return self.source[index]

        def name_of(self, index):
            return self.source.name_of(index)

    real_load, real_save = loading.load_split, setup.save_atomic
    monkeypatch.setattr(loading, "load_split", lambda name, split, *a: Spy(real_load(name, split, *a), split))
    monkeypatch.setattr(setup, "save_atomic", lambda state, path: (log.append(("save", path.name)), real_save(state, path)))
    with_test = train(UNET_KL, settings_for(UNET_KL, TINY), run_dir=tmp_path / "a", progress=False)
    last_save = max(i for i, (kind, _) in enumerate(log) if kind == "save")
    assert {split for kind, split in log[:last_save] if kind == "read"} == {"train", "val"}
    assert {split for kind, split in log[last_save:] if kind == "read"} == {"test"}
    log.clear()
    without = train(UNET_KL, settings_for(UNET_KL, TINY + ["--test_split="]), run_dir=tmp_path / "b", progress=False)
    assert without.test is None and ("read", "test") not in log
    assert [h["nme_%"] for h in without.history] == [h["nme_%"] for h in with_test.history]


def test_time_budget_is_converted_once_into_steps(tmp_path):
    """The budget is timed before the first step and recorded; resume reuses the recorded steps."""
    result = train(UNET_KL, settings_for(UNET_KL, TINY + ["--epochs=1000", "--time_budget_min=0.05"]),
                   run_dir=tmp_path, progress=False)
    budget = json.loads((tmp_path / "run.json").read_text())["budget"]
    assert budget["measured_samples_per_s"] > 0 and budget["max_steps"] == result.steps == result.budget["total_steps"]
    assert json.loads((tmp_path / "settings.json").read_text())["max_steps"] == result.steps
    assert result.stopped_by == "step budget"


def test_checkpoint_rebuilds_from_stored_sources(tmp_path, monkeypatch):
    """A variant experiment that imports its base: after both files are edited or deleted, the
    checkpoint still rebuilds and evaluates to the same numbers, from another directory; the
    live files are used only when asked, with the differences reported, and the stored codec decodes."""
    import importlib
    import shutil

    from heatnet.evaluation import evaluate, load_trained
    from heatnet.loading import make_dataset, make_loader

    package = f"exps_{tmp_path.name.replace('-', '_')}"
    folder = tmp_path / "project" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "base.py").write_text((UNET_KL).read_text())
    (folder / "variant.py").write_text(f"from dataclasses import replace\nfrom {package}.base import build, settings\n"
                                       "settings = replace(settings, sigma=2.0)\n")
    run = train(folder / "variant.py", settings_for(folder / "variant.py", TINY + ["--epochs=1"]), run_dir=tmp_path / "run", progress=False)
    assert set(load_checkpoint(tmp_path / "run/best.pt")["experiment"]["sources"]) == {f"{package}.variant", f"{package}.base"}
    shutil.rmtree(folder)
    for name in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[name]
    importlib.invalidate_caches()
    monkeypatch.chdir(tmp_path / "project")

    def val_nme(**kwargs) -> float:
        method, s, _ = load_trained(tmp_path / "run/best.pt", **kwargs)
        assert s.sigma == 2.0 and method.codec.sigma == 2.0
        return evaluate(method, make_loader(make_dataset(s, s.val_split, s.val_limit), s), torch.device("cpu")).summary()["nme_%"]

    assert val_nme() == pytest.approx(run.final["nme_%"], rel=1e-6)
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "base.py").write_text((UNET_KL).read_text().replace(  # its build now decodes by argmax
        "return smp_method(s, scheme.num_points", "return smp_method(replace(s, decoder=Argmax()), scheme.num_points")
        .replace("import SoftArgmax", "import Argmax, SoftArgmax\nfrom dataclasses import replace"))
    (folder / "variant.py").write_text(f"from dataclasses import replace\nfrom {package}.base import build, settings\n"
                                       "settings = replace(settings, sigma=2.0)  # edited\n")
    with pytest.warns(UserWarning) as warned:
        assert val_nme(live_experiment=True) == pytest.approx(run.final["nme_%"], rel=1e-6)
    messages = " ".join(str(w.message) for w in warned)
    assert f"{package}.base: edited since training" in messages and f"{package}.variant: edited" in messages
    assert "decoding with the stored" in messages and "Argmax()" in messages


def test_early_stopping(tmp_path, monkeypatch):
    """Validation NME scripted to worsen every epoch: patience 2 stops after epoch 3 (best: 1)."""
    import heatnet.training.loop as training

    real_evaluate, scripted = training.evaluate, iter([10.0, 11.0, 12.0, 13.0, 14.0])

    def worsening(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        summary = {**result.summary(), "nme_%": next(scripted)}
        result.summary = lambda: summary
        return result

    monkeypatch.setattr(training, "evaluate", worsening)
    result = train(UNET_KL, settings_for(UNET_KL, TINY + ["--epochs=5", "--early_stop_patience=2"]),
                   run_dir=tmp_path, progress=False)
    assert result.stopped_by == "early stopping"
    assert [h["nme_%"] for h in result.history] == [10.0, 11.0, 12.0] and result.best_epoch == 1


def test_extra_decoders_score_the_same_forward_pass(tiny_run):
    from heatnet.codecs import Argmax
    from heatnet.evaluation import evaluate, load_trained
    from heatnet.loading import make_dataset, make_loader

    run_dir, result = tiny_run
    method, s, _ = load_trained(run_dir / "last.pt")
    result = evaluate(method, make_loader(make_dataset(s, s.val_split, s.val_limit), s), torch.device("cpu"),
                      extra_decoders={"own": method.codec.decoder, "argmax": Argmax()})
    assert result.by_decoder["own"].summary()["nme_%"] == pytest.approx(result.errors.summary()["nme_%"])
    assert result.by_decoder["argmax"].summary()["nme_%"] != pytest.approx(result.errors.summary()["nme_%"])


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
    train(UNET_KL, settings_for(UNET_KL, TINY + ["--epochs=1", f"--init_from={run_dir / 'last.pt'}"]),
          run_dir=tmp_path, progress=False)
    assert f"from {run_dir / 'last.pt'}; 0 left as built" in capsys.readouterr().out


def test_the_training_profile_gives_the_model_step_the_input_and_the_loop():
    from conftest import in_process

    result = in_process("tools/speed.py", "train", "--steps", "2", "--train_limit=16", "--batch_size=8",
                        "--input_size=64", "--workers=0")
    assert result.returncode == 0, result.stderr
    assert "input: workers path (0 loader workers" in result.stdout  # the CPU default
    rates = {line.split(" (")[0].split(":")[0]: float(line.split(":")[1].split()[0])
             for line in result.stdout.splitlines() if "samples/s" in line}
    assert set(rates) == {"model step alone", "input alone", "training loop"} and min(rates.values()) > 0
    assert "GFLOP/s in the loop" in result.stdout and "matrix multiply" in result.stdout


def test_weight_average_follows_the_weights_with_its_decay():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.99)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 5
    average.update(step=1)
    decay = average.decay_at(1)
    assert decay == pytest.approx(2 / 11)  # ramped up: early weights are forgotten fast
    averaged = average.model.state_dict()
    torch.testing.assert_close(averaged["0.weight"], start["0.weight"] + (1 - decay))
    torch.testing.assert_close(averaged["0.bias"], start["0.bias"])
    assert averaged["1.num_batches_tracked"] == 5  # integer buffers are copied, not averaged
    assert average.decay_at(10_000) == 0.99
    assert not any(p.requires_grad for p in average.model.parameters())
