"""What a user may name as a model: a shipped model by name, a checkpoint file, or a run folder.

    path = resolve_model("fast")                   # heatnet/assets/heatnet_fast_300w_68.pt
    path = resolve_model("runs/unet_kl/<time>")    # its best.pt
    path = resolve_model("runs/quick/last.pt")     # the file itself

Every tool and heatnet.evaluation.load_trained resolve models through it, so a name that one
accepts every other accepts too. Torch-free: a tool can resolve before it imports torch.
"""
from __future__ import annotations

import enum
from pathlib import Path

from heatnet.errors import HeatnetError

ASSETS = Path(__file__).resolve().parent / "assets"


class ModelNotFound(HeatnetError, ValueError):
    """A named model is neither a shipped model, a checkpoint file nor a run folder."""


class ShippedModel(enum.Enum):
    """The models shipped with heatnet, both trained by heatnet on the 300-W training images
    (research use only; docs/shipped_model.md): `heatnet.load_pretrained("fast")`."""

    ACCURATE = "accurate"  # Unet-ResNet18, 160 px, 25 MB (the default)
    FAST = "fast"  # Unet-MobileNetV4-conv-small to stride 16, 112 px, 3 MB: a few ms per face on a CPU

    @property
    def path(self) -> Path:
        return ASSETS / {"accurate": "heatnet_300w_68.pt", "fast": "heatnet_fast_300w_68.pt"}[self.value]

    @property
    def min_score(self) -> float:
        """The face-score threshold chosen on validation for it by `python tools/choose_min_score.py`
        (docs/detectors.md): a detection whose points' mean heatmap peak is lower is dropped."""
        # --model accurate / fast, with BlazeFace, each for its model retrained with rotation_deg 10 (2026-12-03)
        return {"accurate": 0.1080, "fast": 0.1115}[self.value]

    @property
    def refine(self) -> int:
        """Refine passes by default: where one pays. The fast model's costs 40-60 % more time per photo
        (6.3 -> 10.2 ms, one thread) for 0.06 NME points on validation (3.79 -> 3.73 %), so it has
        none; the accurate model keeps one (docs/speed.md#detectors)."""
        return {"accurate": 1, "fast": 0}[self.value]

    @classmethod
    def named(cls, name: str) -> ShippedModel:
        try:
            return cls(name)
        except ValueError:
            raise ModelNotFound(f"no shipped model {name!r}; the shipped models: "
                                f"{', '.join(m.value for m in cls)}") from None


def resolve_model(model: str | Path | None) -> Path:
    """The checkpoint file a user means: a shipped model's name ("accurate", "fast"; None: the
    default, accurate), a checkpoint file, or a run folder (its best.pt, chosen on validation).
    ModelNotFound naming the three kinds otherwise."""
    if model is None:
        return ShippedModel.ACCURATE.path
    if str(model) in {m.value for m in ShippedModel}:
        return ShippedModel(str(model)).path
    path = Path(model)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / "best.pt").is_file():
            return path / "best.pt"
        saved = "only last.pt: give it to use the unfinished weights" if (path / "last.pt").is_file() else \
            "no checkpoint at all: the run was stopped before its first save"
        raise ModelNotFound(f"{path}: a folder without best.pt ({saved})")
    names = ", ".join(m.value for m in ShippedModel)
    raise ModelNotFound(f"{model}: no such model: give a shipped model ({names}), a checkpoint file or a run folder")


def shipped_model(path: Path | str) -> ShippedModel | None:
    """The shipped model whose file `path` is, or None."""
    return next((model for model in ShippedModel if model.path == Path(path).resolve()), None)


def shipped_refine(path: Path | str) -> int:
    """A shipped model's refine passes by default (ShippedModel.refine); 1 for other checkpoints."""
    shipped = shipped_model(path)
    return shipped.refine if shipped else 1


def shipped_min_score(path: Path | str) -> float:
    """A shipped model's face-score threshold; 0 (keep every face) for other checkpoints, whose
    score scale depends on their loss (tools/choose_min_score.py)."""
    shipped = shipped_model(path)
    return shipped.min_score if shipped else 0.0
