"""Signers: appearance and signing habits, drawn from a seeded generator.

Appearance follows broadcast sign-language video (a TV studio): dark clothing in front of a plain
mid-grey backdrop, whatever the skin tone, so a dark-skinned signer's hands stand out less against
the body - one of the reasons MediaPipe loses hands in real video. Habits follow real signers, who
sign faster than a citation form and let neighbouring signs run into each other (coarticulation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import numpy as np

# BGR skin tones from light to dark.
SKIN_TONES = (
    (178, 200, 236),
    (150, 180, 226),
    (122, 160, 210),
    (96, 134, 186),
    (72, 104, 156),
    (56, 80, 122),
)
HAIR_COLOURS = ((30, 30, 35), (40, 60, 95), (60, 90, 140), (90, 130, 170), (120, 120, 125))
IRIS_COLOURS = ((40, 60, 90), (110, 90, 50), (70, 110, 70), (30, 40, 60))
CLOTHING_LEVEL = (14, 50)  # grey level of the (always dark) studio clothing: black, charcoal, navy
BACKGROUND_GREY = (85, 150)  # the backdrop's grey level
SPEED_RANGE = (1.3, 1.8)  # signing speed relative to the lexicon's citation timing
COARTICULATION_RANGE = (0.3, 1.0)  # how much neighbouring signs blend into each other


@dataclass(frozen=True)
class Signer:
    """The appearance and habits of one synthetic signer."""

    id: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    clothing: tuple[int, int, int]
    background: tuple[int, int, int]
    head_scale: float
    shoulder_scale: float
    arm_scale: float
    hand_scale: float
    body_shift: float  # vertical offset of the whole body, reference pixels
    speed: float  # > 1 signs faster than the citation form
    left_handed: bool
    long_hair: bool
    coarticulation: float = 0.0  # 0: every sign in citation form; 1: strong blending and undershoot

    def to_dict(self) -> dict:
        return asdict(self)


def luma(bgr) -> float:
    """Brightness of a BGR colour (ITU-R BT.601 weights, as OpenCV's grey conversion)."""
    b, g, r = bgr
    return 0.114 * b + 0.587 * g + 0.299 * r


def make_signer(index: int, rng: np.random.Generator) -> Signer:
    """Draw signer `index` (0-based). Every fourth signer is left-handed."""
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    skin = cast("tuple[int, int, int]", tuple(int(np.clip(c + rng.integers(-8, 9), 0, 255)) for c in skin))
    clothing = cast("tuple[int, int, int]", tuple(int(c) for c in int(rng.integers(*CLOTHING_LEVEL)) + rng.integers(-5, 13, size=3)))
    grey = int(rng.integers(*BACKGROUND_GREY))
    tint = rng.integers(-10, 11, size=3)
    background = cast("tuple[int, int, int]", tuple(int(np.clip(grey + t, 0, 255)) for t in tint))
    return Signer(
        id=f"Signer{index + 1:02d}",
        skin=skin,
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        clothing=clothing,
        background=background,
        head_scale=float(rng.uniform(0.93, 1.07)),
        shoulder_scale=float(rng.uniform(0.9, 1.1)),
        arm_scale=float(rng.uniform(0.93, 1.07)),
        hand_scale=float(rng.uniform(0.95, 1.08)),
        body_shift=float(rng.uniform(-6, 6)),
        speed=float(rng.uniform(*SPEED_RANGE)),
        left_handed=index % 4 == 3,
        long_hair=bool(rng.random() < 0.5),
        coarticulation=float(rng.uniform(*COARTICULATION_RANGE)),
    )

