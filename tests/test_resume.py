"""What --resume does with what it is given: a larger budget extends a run (finished or not),
the same budget leaves a finished run alone, a checkpoint file is the one resumed from, settings
that cannot change are refused, and settings an experiment's method does not read are errors."""
import json
from pathlib import Path

import pytest

from heatnet.training import loop, setup
from conftest import in_process, one_line_error, settings_for
from heatnet.checkpoint import CheckpointError, load_checkpoint
from heatnet.config import ConfigError
from heatnet.training import resume, steps_for_minutes, train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
TINY = ["--input_size=64", "--train_limit=32", "--val_limit=16", "--test_limit=16", "--batch_size=8", "--epochs=1",
        "--workers=0", "--log_images=0", "--threads=2"]


@pytest.fixture
def splits_read(monkeypatch) -> list[str]:
    """The splits each training loads, in order."""
    read = []
    real = setup.make_dataset

    def spy(s, split, *args, **kwargs):
        read.append(split)
        return real(s, split, *args, **kwargs)

    for module in (setup, loop):  # set-up loads train and val, the loop's end the test
        monkeypatch.setattr(module, "make_dataset", spy)
    return read


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("one_epoch") / "run"
    first = train(UNET_KL, settings_for(UNET_KL, TINY), run_dir=run_dir, progress=False)
    assert first.steps == 4 and first.stopped_by == "epochs"
    return run_dir


def _copy_run(run_dir: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run_dir, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def test_a_larger_budget_extends_a_finished_run_and_reads_the_test_once_at_the_new_end(one_epoch, tmp_path,
                                                                                       splits_read, capsys):
    run_dir = _copy_run(one_epoch, tmp_path / "run")
    result = resume(run_dir, {"epochs": 3}, progress=False)
    assert result.steps == 12 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.stopped_by == "epochs" and result.test is not None and splits_read.count("test") == 1
    extension = {"at_step": 4, "previous_total_steps": 4, "total_steps": 12}
    assert result.budget["extensions"] == [extension] and result.budget["schedule_from_step"] == 4
    assert json.loads((run_dir / "run.json").read_text())["budget"]["extensions"] == [extension]
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 12
    assert "budget changed: 4 -> 12 steps; the learning-rate schedule is planned anew from step 4" in capsys.readouterr().out


def test_the_schedule_is_planned_anew_from_the_step_of_the_change(one_epoch, tmp_path):
    """After the extension the learning rate follows warm-up and cosine over steps 4..12, as a
    run of 8 steps would from its start (TensorBoard's lr at step 8 and 12: the lr of the
    optimizer steps numbered 7 and 11 from 0)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from heatnet.config import Settings
    from heatnet.schedules import lr_factor

    run_dir = _copy_run(one_epoch, tmp_path / "run")
    resume(run_dir, {"epochs": 3}, progress=False)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("train/lr")}
    s = json.loads((run_dir / "settings.json").read_text())
    for logged_step in (8, 12):
        expected = s["lr"] * lr_factor(Settings().schedule, s["warmup_epochs"], logged_step - 1 - 4, 12 - 4, 4)
        assert logged[logged_step] == pytest.approx(expected, rel=1e-6)


def test_a_finished_run_resumed_without_a_new_budget_trains_and_reads_nothing(one_epoch, tmp_path, splits_read,
                                                                               capsys):
    run_dir = _copy_run(one_epoch, tmp_path / "run")
    before = (run_dir / "metrics.json").read_text()
    result = resume(run_dir, progress=False)
    assert result.steps == 4 and (run_dir / "metrics.json").read_text() == before
    assert "test" not in splits_read
    assert "finished (epochs, 4 steps); nothing to train, and the test split is not read again" in capsys.readouterr().out


def test_a_budget_that_ends_before_the_current_step_is_refused(one_epoch, tmp_path):
    run_dir = _copy_run(one_epoch, tmp_path / "run")
    with pytest.raises(ConfigError, match="the run is at step 4, and the new budget ends at step 2"):
        resume(run_dir, {"max_steps": 2}, progress=False)


@pytest.mark.parametrize("override", ["--sigma=2", "--input_size=96", "--dataset=300w", "--lr=0.1"])
def test_settings_that_cannot_change_on_resume_are_refused_in_one_line(one_epoch, tmp_path, override):
    run_dir = _copy_run(one_epoch, tmp_path / "run")
    key = override[2:].split("=")[0]
    one_line_error(in_process("tools/train.py", "--resume", str(run_dir), override),
                   f"--resume: --{key} cannot change in a resumed run")


def test_resume_from_a_checkpoint_file_uses_that_file(one_epoch, tmp_path, capsys):
    run_dir = _copy_run(one_epoch, tmp_path / "run")
    (run_dir / "after_epoch_1.pt").write_bytes((run_dir / "last.pt").read_bytes())
    resume(run_dir, {"epochs": 2}, progress=False)  # last.pt moves on to step 8
    assert load_checkpoint(run_dir / "last.pt")["training"]["progress"]["step"] == 8
    capsys.readouterr()
    result = resume(run_dir / "after_epoch_1.pt", {"epochs": 3}, progress=False)
    assert f"resumed {run_dir} at epoch 2, batch 0, step 4" in capsys.readouterr().out
    assert result.steps == 12 and [h["epoch"] for h in result.history] == [1, 2, 3]


def test_resume_from_a_checkpoint_without_a_training_position_is_refused(tmp_path):
    from heatnet.export import slim_checkpoint

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    slim_checkpoint(load_checkpoint(ROOT / "heatnet/assets/heatnet_300w_68.pt"), run_dir / "model.pt")
    with pytest.raises(CheckpointError, match="holds no training position .* --init_from="):
        resume(run_dir / "model.pt", progress=False)


def test_method_settings_the_experiment_does_not_read_are_errors(tmp_path):
    out = in_process("tools/train.py", "experiments/regression_resnet18.py", "--run-dir", str(tmp_path / "run"),
                     *TINY, "--sigma=7", "--decoder=Dark", "--architecture=FPN")
    one_line_error(out, "unknown settings --sigma, --decoder, --architecture for experiment "
                        "experiments.regression_resnet18; its method reads --blurpool, --dropout, --encoder, --loss")
    assert not (tmp_path / "run").exists()


def test_method_settings_the_experiment_reads_are_taken(tmp_path):
    result = train(ROOT / "experiments/regression_resnet18.py", settings_for(ROOT / "experiments/regression_resnet18.py", TINY + ["--dropout=0.2", "--epochs=1"]),
                   run_dir=tmp_path / "run", progress=False)
    assert result.steps == 4
    assert json.loads((tmp_path / "run/settings.json").read_text())["dropout"] == 0.2


def test_a_time_budget_becomes_steps_at_the_given_rate():
    assert steps_for_minutes(2, samples_per_s=32.0, batch_size=16) == 240
    assert steps_for_minutes(0.001, samples_per_s=1.0, batch_size=16) == 1  # never zero steps
