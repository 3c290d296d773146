"""Landmark schemes: point names, horizontal-flip map, NME normalising pair and regions.

"Right" and "left" are the subject's: the subject's right eye is on the image's left.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LandmarkScheme:
    name: str
    point_names: tuple[str, ...]
    flip_map: tuple[int, ...]  # flip_map[i]: index that point i becomes after a mirror
    norm_pair: tuple[int, int] | None  # outer eye corners; None when the scheme has no eyes
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.point_names)
        flip = np.asarray(self.flip_map)
        if sorted(self.flip_map) != list(range(k)) or not np.array_equal(flip[flip], np.arange(k)):
            raise ValueError(f"scheme {self.name}: flip map must be an involutive permutation of {k} points")
        covered = sorted(i for idx in self.regions.values() for i in idx)
        if covered != list(range(k)):
            raise ValueError(f"scheme {self.name}: regions must cover each point exactly once")

    @property
    def num_points(self) -> int:
        return len(self.point_names)

    def region_of(self) -> np.ndarray:
        """(K,) index into list(self.regions) for each point."""
        out = np.empty(self.num_points, dtype=np.int64)
        for r, idx in enumerate(self.regions.values()):
            out[list(idx)] = r
        return out


def _pairs_to_flip_map(k: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    flip = list(range(k))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(flip)


def _span(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


# --- iBUG 68 (300-W, YouTube Faces / Udacity P1, dlib) ---------------------------------------
_IBUG_PAIRS = (
    [(i, 16 - i) for i in range(8)]  # jaw
    + [(17 + i, 26 - i) for i in range(5)]  # brows
    + [(31, 35), (32, 34)]  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]  # inner lips
)
IBUG68 = LandmarkScheme(
    name="ibug68",
    point_names=tuple(
        [f"jaw_{i}" for i in range(17)]
        + [f"right_brow_{i}" for i in range(5)]
        + [f"left_brow_{i}" for i in range(5)]
        + [f"nose_bridge_{i}" for i in range(4)]
        + [f"nose_base_{i}" for i in range(5)]
        + [f"right_eye_{i}" for i in range(6)]
        + [f"left_eye_{i}" for i in range(6)]
        + [f"outer_lip_{i}" for i in range(12)]
        + [f"inner_lip_{i}" for i in range(8)]
    ),
    flip_map=_pairs_to_flip_map(68, _IBUG_PAIRS),
    norm_pair=(36, 45),
    regions={
        "jaw": _span(0, 16),
        "brows": _span(17, 26),
        "nose": _span(27, 35),
        "eyes": _span(36, 47),
        "mouth": _span(48, 67),
    },
)

# --- IMM 58 (Stegmann et al.); path order of the .asf files ---------------------------------
# jaw 0-12; subject's left eye 13-20 (13 outer corner); right eye 21-28 (21 outer corner);
# left brow 29-33 and right brow 34-38 (inner to outer); mouth 39-46; nose 47-57 (52 = tip).
_IMM_PAIRS = (
    [(i, 12 - i) for i in range(6)]
    + [(13 + i, 21 + i) for i in range(8)]
    + [(29 + i, 34 + i) for i in range(5)]
    + [(39, 43), (40, 42), (44, 46)]
    + [(47, 57), (48, 56), (49, 55), (50, 54), (51, 53)]
)
IMM58 = LandmarkScheme(
    name="imm58",
    point_names=tuple(
        [f"jaw_{i}" for i in range(13)]
        + [f"left_eye_{i}" for i in range(8)]
        + [f"right_eye_{i}" for i in range(8)]
        + [f"left_brow_{i}" for i in range(5)]
        + [f"right_brow_{i}" for i in range(5)]
        + [f"mouth_{i}" for i in range(8)]
        + [f"nose_{i}" for i in range(11)]
    ),
    flip_map=_pairs_to_flip_map(58, _IMM_PAIRS),
    norm_pair=(21, 13),
    regions={
        "jaw": _span(0, 12),
        "eyes": _span(13, 28),
        "brows": _span(29, 38),
        "mouth": _span(39, 46),
        "nose": _span(47, 57),
    },
)
IMM_NOSE_TIP_INDEX = 52

# Single nose tip (the seeds' first CNN). No eyes, so NME uses the normaliser the dataset
# computes from the full annotation it came from (see heatnet.datasets).
NOSE_TIP = LandmarkScheme(
    name="nose_tip", point_names=("nose_tip",), flip_map=(0,), norm_pair=None,
    regions={"nose": (0,)},
)

# --- Kaggle facial keypoints (15 points), CSV column order -----------------------------------
KAGGLE15 = LandmarkScheme(
    name="kaggle15",
    point_names=(
        "left_eye_center", "right_eye_center",
        "left_eye_inner_corner", "left_eye_outer_corner",
        "right_eye_inner_corner", "right_eye_outer_corner",
        "left_eyebrow_inner_end", "left_eyebrow_outer_end",
        "right_eyebrow_inner_end", "right_eyebrow_outer_end",
        "nose_tip",
        "mouth_left_corner", "mouth_right_corner",
        "mouth_center_top_lip", "mouth_center_bottom_lip",
    ),
    flip_map=_pairs_to_flip_map(15, [(0, 1), (2, 4), (3, 5), (6, 8), (7, 9), (11, 12)]),
    norm_pair=(3, 5),
    regions={
        "eyes": _span(0, 5),
        "brows": _span(6, 9),
        "nose": (10,),
        "mouth": _span(11, 14),
    },
)

# --- WFLW 98 ----------------------------------------------------------------------------------
_WFLW_PAIRS = (
    [(i, 32 - i) for i in range(16)]
    + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    + [(55, 59), (56, 58)]
    + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]
    + [(88, 92), (89, 91), (93, 95), (96, 97)]
)
WFLW98 = LandmarkScheme(
    name="wflw98",
    point_names=tuple(
        [f"jaw_{i}" for i in range(33)]
        + [f"right_brow_{i}" for i in range(9)]
        + [f"left_brow_{i}" for i in range(9)]
        + [f"nose_{i}" for i in range(9)]
        + [f"right_eye_{i}" for i in range(8)]
        + [f"left_eye_{i}" for i in range(8)]
        + [f"outer_lip_{i}" for i in range(12)]
        + [f"inner_lip_{i}" for i in range(8)]
        + ["right_pupil", "left_pupil"]
    ),
    flip_map=_pairs_to_flip_map(98, _WFLW_PAIRS),
    norm_pair=(60, 72),
    regions={
        "jaw": _span(0, 32),
        "brows": _span(33, 50),
        "nose": _span(51, 59),
        "eyes": _span(60, 75) + (96, 97),
        "mouth": _span(76, 95),
    },
)

SCHEMES = {s.name: s for s in (IBUG68, IMM58, NOSE_TIP, KAGGLE15, WFLW98)}
