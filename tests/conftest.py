import contextlib
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heatnet.checkpoint import load_checkpoint
from heatnet.formats import write_pts

torch.set_num_threads(2)
# exported graphs go to a folder of the test session's own, not the user's cache
os.environ["HEATNET_CACHE"] = str(Path(tempfile.gettempdir()) / f"heatnet-tests-{os.getpid()}")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def pytest_collection_modifyitems(config, items):
    """Under `make mutation` (docs/mutation.md) a mutant of heatnet/NAME.py meets the tests of
    tests/test_NAME*.py first, then the rest fastest first (mutmut's recorded durations): with -x
    most mutants die in their first test. Two mutants run side by side, one thread each."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not mutant.startswith("heatnet."):
        return
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    stats = Path("mutmut-stats.json")  # the run's working folder is mutants/
    durations = json.loads(stats.read_text())["duration_by_test"] if stats.exists() else {}
    own = f"tests/test_{mutant.split('.')[1]}"
    items.sort(key=lambda item: (not item.nodeid.startswith(own), durations.get(item.nodeid, 1.0)))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Real datasets: $HEATNET_DATA, else ../shared/datasets (present in CI)."""
    root = Path(os.environ.get("HEATNET_DATA", SHARED))
    if not (root / "300w").is_dir():
        pytest.skip(f"real datasets not found at {root}")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def max_relative_difference(ours: dict, theirs: dict) -> float:
    """Largest |a - b| / max|b| over the floating-point tensors of two state dicts."""
    return max(float((ours[k].double() - v.double()).abs().max() / v.double().abs().max().clamp_min(1e-12))
               for k, v in theirs.items() if v.is_floating_point())


def _face_points(rng, w=200, h=200):
    return np.column_stack([rng.uniform(0.2 * w, 0.8 * w, 68), rng.uniform(0.2 * h, 0.8 * h, 68)])


@pytest.fixture
def w300_root(tmp_path):
    """A small 300-W layout: 4 good faces in afw, helen/trainset and lfpw/trainset (train)."""
    rng = np.random.default_rng(0)
    for folder in ("afw", "helen/trainset", "lfpw/trainset", "lfpw/testset"):
        (tmp_path / "300w" / folder).mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(tmp_path / "300w/afw" / f"good{i}.jpg"), rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
        write_pts(tmp_path / "300w/afw" / f"good{i}.pts", _face_points(rng))
    return tmp_path


def add_300w_face(root: Path, name: str, pts_text: str | None = None, image: bytes | None = None, folder="helen/trainset"):
    """A face in a 300-W layout: its .pts (given text, or random points) and its image (given
    bytes; None: a random 200 x 200 JPEG; b"": none)."""
    rng = np.random.default_rng(1)
    if pts_text is None:
        write_pts(root / "300w" / folder / f"{name}.pts", _face_points(rng))
    else:
        (root / "300w" / folder / f"{name}.pts").write_text(pts_text)
    if image is None:
        cv2.imwrite(str(root / "300w" / folder / f"{name}.jpg"), rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    elif image != b"":
        (root / "300w" / folder / f"{name}.jpg").write_bytes(image)


def wait_for(condition, process: subprocess.Popen | None = None) -> None:
    """Poll `condition` until true: an event the code emits (a file written, a step saved), never
    a deadline, so a slow or busy machine only waits longer. Fails when `process` ended first
    (the process's own work bounds the wait)."""
    while not condition():
        assert process is None or process.poll() is None, "the process ended before the condition held"
        time.sleep(0.05)


def start_interruptible(cmd: list, **popen_kwargs) -> subprocess.Popen:
    """Popen for a child the test stops with Ctrl-C (SIGINT). A shell that runs the tests in the
    background (`make test &`) starts them with SIGINT ignored, and children inherit that; restoring
    the default lets Python in the child raise KeyboardInterrupt as it would at a terminal."""
    return subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen_kwargs)


def interrupt(process: subprocess.Popen, timeout: float = 120) -> tuple:
    """Ctrl-C `process` and wait for it; kill it if it does not stop in time (no stray training)."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def checkpoint_step(run_dir: Path) -> int:
    """Optimizer steps in a run's last.pt (-1 while there is none)."""
    try:
        return load_checkpoint(run_dir / "last.pt")["training"]["progress"]["step"]
    except Exception:  # not written yet, or being replaced
        return -1


def in_process(*argv: str) -> subprocess.CompletedProcess:
    """A tool's main() run in this process (its imports are already paid for), with sys.argv set
    and its output captured: the same code path as the command line, in a fraction of the time."""
    module = runpy.run_path(str(ROOT / argv[0]))  # not as __main__: defines main() only
    saved, sys.argv = sys.argv, list(argv)
    threads = torch.get_num_threads()  # a tool may set its own (tools/predict.py: 1); the tests keep theirs
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                code = module["main"]()
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        sys.argv = saved
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def one_line_error(out: subprocess.CompletedProcess, message: str) -> None:
    """Exit code 2 and a single `error: ...` line holding `message`, no traceback."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(errors) == 1 and message in errors[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def settings_for(experiment: Path | str, overrides: list[str]):
    """An experiment file's settings with overrides written as on the command line (config's own
    parser, which tools/train.py uses): what `tools/train.py EXPERIMENT *overrides` trains."""
    from heatnet.experiment import experiment_settings

    return experiment_settings(experiment, overrides)
