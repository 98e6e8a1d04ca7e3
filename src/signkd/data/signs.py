"""The synthetic lexicon: weather-domain signs built from phonological parameters.

A sign is described the way sign-language phonology describes it - handshape, palm orientation,
location, movement and the role of the non-dominant hand - so that the vocabulary can contain
*minimal pairs*: glosses that differ in exactly one parameter. Handshape pairs are nearly
invisible in low-resolution RGB but clear in finger keypoints; movement pairs are clear in
optical flow; location pairs show in body keypoints. That split of information across
modalities is what multi-modal distillation needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from itertools import combinations
from typing import Any

import numpy as np

# --- handshapes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshape:
    """Joint angles of one hand, in degrees.

    `flexion[f]` holds (MCP, PIP, DIP) flexion of finger f (index, middle, ring, pinky);
    `splay[f]` is that finger's sideways angle in the palm plane (positive: toward the thumb).
    `thumb` is (abduction in the palm plane, elevation out of it toward the palm side,
    MCP flexion, IP flexion).
    """

    name: str
    flexion: tuple[tuple[float, float, float], ...]
    splay: tuple[float, float, float, float]
    thumb: tuple[float, float, float, float]

    def vector(self) -> np.ndarray:
        """All angles as one float vector (20 values), the form the renderer interpolates."""
        return np.array([a for f in self.flexion for a in f] + list(self.splay) + list(self.thumb), dtype=np.float64)


_EXT = (0.0, 5.0, 3.0)  # a straight finger, relaxed
_CURLED = (88.0, 100.0, 55.0)  # a finger rolled into the fist
_THUMB_OVER = (18.0, 48.0, 38.0, 35.0)  # thumb lying across the curled fingers

HANDSHAPES: dict[str, Handshape] = {
    h.name: h
    for h in (
        Handshape("flat", (_EXT, _EXT, _EXT, _EXT), (3.0, 0.0, -3.0, -6.0), (14.0, 12.0, 8.0, 5.0)),
        Handshape("spread5", (_EXT, _EXT, _EXT, _EXT), (13.0, 2.0, -10.0, -22.0), (58.0, 10.0, 0.0, 5.0)),
        Handshape("fist", (_CURLED,) * 4, (2.0, 0.0, -2.0, -4.0), _THUMB_OVER),
        Handshape("index", (_EXT, _CURLED, _CURLED, _CURLED), (2.0, 0.0, -2.0, -4.0), _THUMB_OVER),
        Handshape("V", (_EXT, _EXT, _CURLED, _CURLED), (14.0, -9.0, -2.0, -4.0), _THUMB_OVER),
        Handshape("L", (_EXT, _CURLED, _CURLED, _CURLED), (2.0, 0.0, -2.0, -4.0), (80.0, 0.0, 0.0, 0.0)),
        Handshape("Y", (_CURLED, _CURLED, _CURLED, _EXT), (2.0, 0.0, -2.0, -25.0), (70.0, 5.0, 0.0, 0.0)),
        Handshape("thumb_up", (_CURLED,) * 4, (2.0, 0.0, -2.0, -4.0), (30.0, 0.0, 0.0, 0.0)),
        Handshape("claw", ((18.0, 65.0, 45.0),) * 4, (12.0, 2.0, -9.0, -20.0), (48.0, 35.0, 15.0, 25.0)),
        Handshape("C", ((35.0, 40.0, 25.0),) * 4, (3.0, 0.0, -3.0, -6.0), (40.0, 45.0, 10.0, 10.0)),
    )
}

# --- the other parameters ----------------------------------------------------------------------

# Where the dominant hand is placed. "other_hand" means on top of the passive non-dominant hand;
# "face" in front of it (the hand covers part of the face, as in real signing).
LOCATIONS = ("forehead", "face", "chin", "chest", "neutral", "neutral_high", "other_hand")

# Palm orientation: where the fingers point and whether the palm or the back faces the viewer.
ORIENTATIONS = ("up_front", "up_back", "medial_front", "medial_back")

# Movement of the dominant hand; "in"/"out" are toward / away from the body's midline; "cross"
# goes inward past the midline, so that the two hands of a mirrored sign cross each other.
MOVEMENTS = (
    "hold",
    "straight_up",
    "straight_down",
    "straight_in",
    "straight_out",
    "circle",
    "tap",
    "twist",
    "repeat_down",
    "repeat_side",
    "cross",
)

# Role of the non-dominant hand: resting, mirroring the dominant hand, or a passive base.
NONDOMINANT = ("none", "mirror", "base")

# The parameters that make up a sign's form; a minimal pair differs in exactly one of them.
PARAMETERS = ("handshape", "orientation", "location", "movement", "nondominant")
MINIMAL_PAIR_KINDS = ("handshape", "movement", "location")


@dataclass(frozen=True)
class Sign:
    """One lexical sign: a gloss and its phonological form."""

    gloss: str
    handshape: str
    orientation: str
    location: str
    movement: str
    nondominant: str = "none"

    def __post_init__(self) -> None:
        checks = (
            ("handshape", HANDSHAPES),
            ("orientation", ORIENTATIONS),
            ("location", LOCATIONS),
            ("movement", MOVEMENTS),
            ("nondominant", NONDOMINANT),
        )
        for name, allowed in checks:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"sign {self.gloss}: {name}={value!r} is not one of {sorted(allowed)}")
        if (self.location == "other_hand") != (self.nondominant == "base"):
            raise ValueError(f"sign {self.gloss}: location 'other_hand' and nondominant 'base' go together")

    def form(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in PARAMETERS}


# The handshape of the passive hand in "base" signs (a flat hand, back to the viewer).
BASE_HANDSHAPE = "flat"
BASE_ORIENTATION = "medial_back"

_S = Sign
LEXICON: dict[str, Sign] = {
    s.gloss: s
    for s in (
        # time
        _S("HEUTE", "index", "up_front", "neutral", "tap"),
        _S("MORGEN", "index", "up_front", "chin", "tap"),
        _S("ABEND", "flat", "medial_back", "forehead", "straight_down"),
        _S("NACHT", "flat", "medial_back", "neutral_high", "cross", "mirror"),
        # regions
        _S("NORD", "index", "up_front", "neutral", "straight_up"),
        _S("SUED", "index", "up_front", "neutral", "straight_down"),
        _S("WEST", "L", "up_front", "neutral", "straight_out"),
        _S("OST", "L", "up_front", "neutral", "straight_in"),
        # weather
        _S("REGEN", "spread5", "up_back", "neutral_high", "repeat_down", "mirror"),
        _S("SCHNEE", "claw", "up_back", "neutral_high", "repeat_down", "mirror"),
        _S("SONNE", "spread5", "up_front", "face", "twist"),
        _S("WOLKE", "C", "up_front", "neutral_high", "circle", "mirror"),
        _S("WIND", "flat", "up_front", "neutral", "repeat_side", "mirror"),
        _S("GEWITTER", "V", "up_front", "neutral_high", "straight_down"),
        _S("NEBEL", "flat", "up_back", "face", "circle"),
        _S("FROST", "claw", "up_front", "chest", "twist", "mirror"),
        # temperature
        _S("WARM", "flat", "up_back", "chest", "circle"),
        _S("KALT", "fist", "up_front", "chest", "twist", "mirror"),
        # degree
        _S("STARK", "fist", "up_front", "neutral", "tap"),
        _S("MEHR", "flat", "medial_front", "other_hand", "tap", "base"),
        _S("WENIG", "Y", "up_front", "neutral", "twist"),
        _S("SCHOEN", "thumb_up", "medial_front", "neutral", "hold"),
    )
}


def vocabulary() -> list[str]:
    """All glosses, sorted (the order class ids are derived from)."""
    return sorted(LEXICON)


def differing_parameters(a: Sign, b: Sign) -> tuple[str, ...]:
    """The phonological parameters in which two signs differ."""
    return tuple(p for p in PARAMETERS if getattr(a, p) != getattr(b, p))


def minimal_pairs(lexicon: dict[str, Sign] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Gloss pairs that differ in exactly one parameter, grouped by that parameter.

    Computed from the lexicon rather than listed by hand, so the claim cannot go stale.
    Every kind in MINIMAL_PAIR_KINDS is present as a key, possibly with an empty list.
    """
    lexicon = LEXICON if lexicon is None else lexicon
    pairs: dict[str, list[tuple[str, str]]] = {kind: [] for kind in MINIMAL_PAIR_KINDS}
    for ga, gb in combinations(sorted(lexicon), 2):
        diff = differing_parameters(lexicon[ga], lexicon[gb])
        if len(diff) == 1 and diff[0] in pairs:
            pairs[diff[0]].append((ga, gb))
    return pairs


def lexicon_description() -> dict[str, Any]:
    """JSON-ready description of every sign and handshape (written into corpus.json)."""
    return {
        "signs": {g: LEXICON[g].form() for g in vocabulary()},
        "handshapes": {name: asdict(h) for name, h in sorted(HANDSHAPES.items())},
        "parameters": [f.name for f in fields(Sign) if f.name != "gloss"],
    }
