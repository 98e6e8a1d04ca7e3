"""Draws a signing person with OpenCV, frame by frame, and returns the ground-truth joints.

The figure is deliberately human-like (a shaded face, neck, clothed torso and arms, and hands with
five articulated fingers in MediaPipe's 21-joint layout) because the pipeline extracts keypoints
with real MediaPipe Holistic: a figure MediaPipe does not recognise as a person yields no hands.

Coordinates. Images are not mirrored and the signer faces the camera, so the signer's RIGHT hand
appears on the image's LEFT. "Left"/"right" below always mean the signer's anatomical side, which
is how MediaPipe Holistic names `left_hand_landmarks` / `right_hand_landmarks` and the pose
landmarks (see benchmarks/detection_probe.py, which checks it). Hand index 0 is the left hand,
1 the right hand.

Motion is planned per hand in a *side-relative* frame - lateral distance from the body's midline
(positive outward), image y, and wrist angles whose sign is mirrored for the left hand - so a
symmetric two-handed sign, or a left-handed signer, is the same plan applied to the other hand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from signkd.data.signs import (
    BASE_HANDSHAPE,
    BASE_ORIENTATION,
    HANDSHAPES,
    LEXICON,
    Handshape,
)

REFERENCE_HEIGHT, REFERENCE_WIDTH = 260, 210  # Phoenix frame size; geometry is defined at this size
NUM_HAND_JOINTS = 21
HANDS = ("left", "right")  # hand index 0 / 1
POSE_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
)
# index of each POSE_NAMES entry among MediaPipe's 33 pose landmarks
POSE_MEDIAPIPE_INDEX = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24)

# ------------------------------------------------------------------------------------------------
# Signers
# ------------------------------------------------------------------------------------------------

# BGR skin tones from light to dark; hands must contrast with clothing, which is chosen to suit.
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
    speed: float  # > 1 signs faster
    left_handed: bool
    long_hair: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _luma(bgr) -> float:
    b, g, r = bgr
    return 0.114 * b + 0.587 * g + 0.299 * r


def make_signer(index: int, rng: np.random.Generator) -> Signer:
    """Draw signer `index` (0-based). Every fourth signer is left-handed."""
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    skin = tuple(int(np.clip(c + rng.integers(-8, 9), 0, 255)) for c in skin)
    # Clothing far darker (or, for dark skin, lighter) than the skin keeps hands separable.
    if _luma(skin) > 120:
        base = rng.integers(25, 75, size=3)
    else:
        base = rng.integers(150, 215, size=3)
    clothing = tuple(int(c) for c in base)
    grey = int(rng.integers(110, 170))
    tint = rng.integers(-12, 13, size=3)
    background = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
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
        speed=float(rng.uniform(0.85, 1.2)),
        left_handed=index % 4 == 3,
        long_hair=bool(rng.random() < 0.5),
    )


# ------------------------------------------------------------------------------------------------
# Render settings
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderParams:
    """Image size and the degradations applied to every video."""

    height: int = REFERENCE_HEIGHT
    width: int = REFERENCE_WIDTH
    jitter_px: float = 1.5  # camera shake amplitude (reference pixels)
    blur_sigma: tuple[float, float] = (0.3, 0.8)  # per-video Gaussian blur range
    noise_sigma: tuple[float, float] = (0.5, 1.5)  # per-video pixel noise range (grey levels)
    occlusion_prob: float = 0.15  # chance that a video contains one brief hand occlusion
    supersample: int = 2  # draw at this multiple and downscale, for smooth edges

    def __post_init__(self) -> None:
        if self.height < 64 or self.width < 48:
            raise ValueError(f"frame size {self.height}x{self.width} is too small (need >= 64x48)")
        if not 0.0 <= self.occlusion_prob <= 1.0:
            raise ValueError(f"occlusion_prob must be in [0, 1], got {self.occlusion_prob}")
        if self.supersample not in (1, 2, 3, 4):
            raise ValueError(f"supersample must be 1..4, got {self.supersample}")


# ------------------------------------------------------------------------------------------------
# Hand kinematics
# ------------------------------------------------------------------------------------------------

# A right hand, palm toward the viewer, fingers up, in units of hand length (wrist to middle tip).
# x: toward the thumb (image right), y: image down, z: toward the viewer (the palm side).
_FINGER_MCP = np.array([[0.155, -0.455, 0.0], [0.05, -0.47, 0.0], [-0.05, -0.445, 0.0], [-0.145, -0.39, 0.0]])
_FINGER_SEGMENTS = np.array([[0.215, 0.125, 0.1], [0.24, 0.145, 0.105], [0.22, 0.135, 0.1], [0.17, 0.1, 0.09]])
_FINGER_WIDTH = np.array([0.095, 0.098, 0.092, 0.082])
_THUMB_CMC = np.array([0.105, -0.1, 0.02])
_THUMB_SEGMENTS = np.array([0.2, 0.155, 0.125])
_THUMB_WIDTH = 0.11
# the palm's outline (pinky heel, pinky side, MCP knuckles, index side, thumb web, thenar, wrist)
_PALM_OUTLINE = np.array(
    [
        [-0.12, -0.02, 0.0],
        [-0.175, -0.16, 0.0],
        [-0.19, -0.33, 0.0],
        [-0.17, -0.41, 0.0],
        [-0.05, -0.475, 0.0],
        [0.05, -0.5, 0.0],
        [0.17, -0.47, 0.0],
        [0.2, -0.42, 0.0],
        [0.17, -0.3, 0.0],
        [0.165, -0.15, 0.0],
        [0.12, -0.02, 0.0],
        [0.0, 0.03, 0.0],
    ]
)
_PALM_ANCHOR = np.array([0.01, -0.26, 0.0])  # the point a sign's location refers to
REST_HANDSHAPE = Handshape("rest", ((8.0, 12.0, 6.0),) * 4, (4.0, 0.0, -4.0, -8.0), (30.0, 15.0, 5.0, 5.0))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@dataclass
class HandGeometry:
    """A posed hand in hand-local units (right-hand model) before placement in the image."""

    joints: np.ndarray  # [21, 3]
    palm: np.ndarray  # [12, 3] palm outline
    nail_normals: np.ndarray  # [5, 3] outward normal of each distal segment's nail side (thumb first)


def hand_model(angles: np.ndarray) -> HandGeometry:
    """Forward kinematics of a right hand from a 20-value Handshape vector."""
    flex = np.deg2rad(angles[:12].reshape(4, 3))
    splay = np.deg2rad(angles[12:16])
    thumb = np.deg2rad(angles[16:20])
    palm_normal = np.array([0.0, 0.0, 1.0])
    joints = np.zeros((NUM_HAND_JOINTS, 3))
    nails = np.zeros((5, 3))

    # thumb: metacarpal direction from abduction (in the palm plane) and elevation (toward the palm side)
    abd, elev, mcp, ip = thumb
    in_plane = np.array([np.sin(abd), -np.cos(abd), 0.0])
    d = _unit(np.cos(elev) * in_plane + np.sin(elev) * palm_normal)
    across = np.array([-1.0, 0.15, 1.0])  # the way a flexing thumb bends: across and into the palm
    f = _unit(across - across.dot(d) * d)
    joints[1] = _THUMB_CMC
    angle = 0.0
    for k, (length, bend) in enumerate(zip(_THUMB_SEGMENTS, (0.0, mcp, ip))):
        angle += bend
        seg = np.cos(angle) * d + np.sin(angle) * f
        joints[2 + k] = joints[1 + k] + length * seg
    nails[0] = -(-np.sin(angle) * d + np.cos(angle) * f)

    for i in range(4):
        base = 5 + 4 * i
        d = np.array([np.sin(splay[i]), -np.cos(splay[i]), 0.0])
        joints[base] = _FINGER_MCP[i]
        angle = 0.0
        for k in range(3):
            angle += flex[i, k]
            seg = np.cos(angle) * d + np.sin(angle) * palm_normal
            joints[base + k + 1] = joints[base + k] + _FINGER_SEGMENTS[i, k] * seg
        nails[i + 1] = -(-np.sin(angle) * d + np.cos(angle) * palm_normal)
    return HandGeometry(joints, _PALM_OUTLINE.copy(), nails)


def _rotation(roll: float, yaw: float, pitch: float) -> np.ndarray:
    """Rotation (degrees): pitch about x, then yaw about the vertical axis, then roll in the image plane."""
    r, y, p = np.deg2rad([roll, yaw, pitch])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rz @ ry @ rx


# ------------------------------------------------------------------------------------------------
# Body geometry
# ------------------------------------------------------------------------------------------------


@dataclass
class Body:
    """Key body measurements of one signer in reference pixels (260x210 frame)."""

    cx: float
    head: np.ndarray  # centre
    head_rx: float
    head_ry: float
    shoulder_y: float
    shoulder_half: float
    upper_arm: float
    forearm: float
    hand_length: float

    @classmethod
    def of(cls, signer: Signer) -> "Body":
        hs = signer.head_scale
        y0 = signer.body_shift
        return cls(
            cx=REFERENCE_WIDTH / 2,
            head=np.array([REFERENCE_WIDTH / 2, 64.0 + y0]),
            head_rx=22.0 * hs,
            head_ry=28.5 * hs,
            shoulder_y=120.0 + y0,
            shoulder_half=50.0 * signer.shoulder_scale,
            upper_arm=70.0 * signer.arm_scale,
            forearm=62.0 * signer.arm_scale,
            hand_length=48.0 * signer.hand_scale,
        )

    def location(self, name: str) -> tuple[float, float]:
        """(lateral, y) of a sign location, for the hand's palm centre."""
        L, sw = self.hand_length, self.shoulder_half
        chin_y = self.head[1] + self.head_ry
        return {
            "forehead": (1.05 * self.head_rx + 0.1 * L, self.head[1] - 0.35 * self.head_ry),
            "chin": (0.45 * self.head_rx, chin_y + 0.5 * L),
            "chest": (0.4 * sw, self.shoulder_y + 0.5 * sw),
            "neutral": (0.6 * sw, self.shoulder_y + 1.05 * sw),
            "neutral_high": (0.8 * sw, self.shoulder_y + 0.3 * sw),
            "base": (0.15 * sw, self.shoulder_y + 1.3 * sw),
            "other_hand": (0.3 * sw, self.shoulder_y + 1.3 * sw - 0.62 * L),
            "rest": (0.85 * sw, self.shoulder_y + 1.85 * sw),
        }[name]


# ------------------------------------------------------------------------------------------------
# Motion planning
# ------------------------------------------------------------------------------------------------

# Hand state: lateral, y, roll, yaw, pitch, then the 20 handshape angles.
STATE_SIZE = 5 + 20
ORIENTATION_ANGLES = {  # (roll, yaw, pitch) in the side-relative frame
    "up_front": (10.0, 15.0, 0.0),
    "up_back": (10.0, 165.0, 0.0),
    "medial_front": (72.0, 20.0, 0.0),
    "medial_back": (72.0, 160.0, 0.0),
    "rest": (30.0, 20.0, 0.0),
}
MOVEMENT_FRAMES = {  # frames at speed 1.0
    "hold": 8,
    "straight_up": 10,
    "straight_down": 10,
    "straight_in": 10,
    "straight_out": 10,
    "circle": 13,
    "tap": 10,
    "twist": 12,
    "repeat_down": 13,
    "repeat_side": 13,
}


def _state(lateral: float, y: float, orientation: str, handshape: Handshape) -> np.ndarray:
    return np.concatenate([[lateral, y], ORIENTATION_ANGLES[orientation], handshape.vector()])


def _movement_offset(movement: str, t: float, L: float, amp: float) -> tuple[float, float, float, float]:
    """(d_lateral, d_y, d_roll, d_yaw) of a movement at normalised time t in [0, 1]."""
    a = 0.38 * L * amp
    if movement == "hold":
        return 0.0, 0.03 * L * np.sin(np.pi * t), 0.0, 0.0
    if movement in ("straight_up", "straight_down", "straight_in", "straight_out"):
        s = a * (0.5 - 0.5 * np.cos(np.pi * t)) * 2 - a  # eased from -a to +a
        return {
            "straight_up": (0.0, -s, 0.0, 0.0),
            "straight_down": (0.0, s, 0.0, 0.0),
            "straight_in": (-s, 0.0, 0.0, 0.0),
            "straight_out": (s, 0.0, 0.0, 0.0),
        }[movement]
    if movement == "circle":
        r = 0.75 * a
        return r * np.sin(2 * np.pi * t), -r * np.cos(2 * np.pi * t) + r, 0.0, 0.0
    if movement == "tap":
        return 0.0, -0.55 * a * abs(np.sin(2 * np.pi * t)), 0.0, 0.0
    if movement == "twist":
        return 0.0, 0.0, 8.0 * np.sin(4 * np.pi * t), 40.0 * amp * np.sin(4 * np.pi * t)
    if movement == "repeat_down":
        return 0.0, 0.9 * a * np.sin(2 * np.pi * t) ** 2, 0.0, 0.0
    if movement == "repeat_side":
        return 0.8 * a * np.sin(4 * np.pi * t), 0.0, 12.0 * np.sin(4 * np.pi * t), 0.0
    raise ValueError(f"unknown movement {movement!r}")


def _sign_states(gloss: str, body: Body, n: int, rng: np.random.Generator) -> np.ndarray:
    """States [n, 2, STATE_SIZE] of (dominant, non-dominant) hand over one sign."""
    sign = LEXICON[gloss]
    L = body.hand_length
    amp = float(rng.uniform(0.85, 1.15))
    dlat, dy = rng.normal(0.0, 0.04 * L, size=2)
    lat, y = body.location(sign.location)
    dom0 = _state(lat + dlat, y + dy, sign.orientation, HANDSHAPES[sign.handshape])
    if sign.nondominant == "base":
        non0 = _state(*body.location("base"), BASE_ORIENTATION, HANDSHAPES[BASE_HANDSHAPE])
    elif sign.nondominant == "mirror":
        non0 = dom0.copy()
        non0[0] += float(rng.normal(0.0, 0.03 * L))
        non0[1] += float(rng.normal(0.0, 0.03 * L))
    else:
        non0 = _state(*body.location("rest"), "rest", REST_HANDSHAPE)
    out = np.empty((n, 2, STATE_SIZE))
    for k in range(n):
        t = k / max(n - 1, 1)
        off = np.array(_movement_offset(sign.movement, t, L, amp))
        dom = dom0.copy()
        dom[[0, 1, 2, 3]] += off
        non = non0.copy()
        if sign.nondominant == "mirror":
            non[[0, 1, 2, 3]] += off
        else:
            non[1] += 0.02 * L * np.sin(2 * np.pi * t)  # the idle hand is never perfectly still
        out[k, 0], out[k, 1] = dom, non
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3 - 2 * x)


def _transition(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """n in-between states from a to b (exclusive of both), eased in and out (coarticulation)."""
    w = _smoothstep(np.arange(1, n + 1) / (n + 1))[:, None, None]
    return a[None] * (1 - w) + b[None] * w


@dataclass
class MotionPlan:
    """Per-frame states of the dominant and non-dominant hand, and where each sign lies."""

    states: np.ndarray  # [T, 2, STATE_SIZE], index 0 = dominant
    gloss_spans: np.ndarray  # [N, 2] start (inclusive), end (exclusive) frame of each sign


def plan_motion(glosses: list[str] | tuple[str, ...], signer: Signer, rng: np.random.Generator) -> MotionPlan:
    """Rest -> sign -> transition -> sign ... -> rest, timed by the signer's speed."""
    body = Body.of(signer)
    rest = np.stack(
        [_state(*body.location("rest"), "rest", REST_HANDSHAPE), _state(*body.location("rest"), "rest", REST_HANDSHAPE)]
    )
    chunks = [np.repeat(rest[None], int(rng.integers(2, 4)), axis=0)]
    spans = []
    frame = len(chunks[0])
    for gloss in glosses:
        n_trans = int(np.clip(round(4 / signer.speed) + int(rng.integers(-1, 2)), 3, 5))
        nominal = MOVEMENT_FRAMES[LEXICON[gloss].movement] / signer.speed
        n_sign = int(np.clip(round(nominal) + int(rng.integers(-1, 2)), 7, 16))
        core = _sign_states(gloss, body, n_sign, rng)
        chunks.append(_transition(chunks[-1][-1], core[0], n_trans))
        frame += n_trans
        spans.append((frame, frame + n_sign))
        chunks.append(core)
        frame += n_sign
    n_trans = int(np.clip(round(4 / signer.speed), 3, 5))
    chunks.append(_transition(chunks[-1][-1], rest, n_trans))
    chunks.append(np.repeat(rest[None], int(rng.integers(2, 4)), axis=0))
    states = np.concatenate(chunks, axis=0)
    return MotionPlan(states=states, gloss_spans=np.array(spans, dtype=np.int32).reshape(-1, 2))


# ------------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------------


def _shade(colour, factor: float) -> tuple[int, int, int]:
    return tuple(min(255, max(0, int(c * factor))) for c in colour)


class _Canvas:
    """Draws in reference pixels onto a supersampled image through the camera transform.

    Points are converted with plain Python arithmetic: a frame has a few hundred primitives and
    numpy's per-call overhead would dominate the render time.
    """

    SHIFT = 4  # fixed-point bits for sub-pixel drawing

    def __init__(self, image: np.ndarray, scale: float, offset):
        self.image = image
        self.scale = float(scale)  # reference px -> canvas px
        self.ox, self.oy = float(offset[0]), float(offset[1])  # canvas px
        self.k = self.scale * (1 << self.SHIFT)

    def _pt(self, p) -> tuple[int, int]:
        one = 1 << self.SHIFT
        return int(round((p[0] * self.scale + self.ox) * one)), int(round((p[1] * self.scale + self.oy) * one))

    def _len(self, v: float) -> int:
        return max(1, int(round(v * self.scale)))

    def line(self, a, b, colour, width: float) -> None:
        cv2.line(self.image, self._pt(a), self._pt(b), colour, self._len(width), cv2.LINE_AA, self.SHIFT)

    def circle(self, c, r: float, colour) -> None:
        cv2.circle(self.image, self._pt(c), int(round(r * self.k)), colour, -1, cv2.LINE_AA, self.SHIFT)

    def ellipse(self, c, axes, angle: float, colour, start=0, end=360, thickness: float = -1) -> None:
        ax = (int(round(axes[0] * self.k)), int(round(axes[1] * self.k)))
        th = -1 if thickness < 0 else self._len(thickness)
        cv2.ellipse(self.image, self._pt(c), ax, angle, start, end, colour, th, cv2.LINE_AA, self.SHIFT)

    def poly(self, pts, colour, outline=None, width: float = 1.0) -> None:
        p = np.array([self._pt(q) for q in pts], np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(self.image, [p], colour, cv2.LINE_AA, self.SHIFT)
        if outline is not None:
            cv2.polylines(self.image, [p], True, outline, self._len(width), cv2.LINE_AA, self.SHIFT)


def _limb(cv: _Canvas, a, b, colour, width: float) -> None:
    """A thick shaded segment: dark rim, body, and a highlight toward the light (upper left)."""
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    cv.line((ax, ay), (bx, by), _shade(colour, 0.62), width + 1.4)
    cv.line((ax, ay), (bx, by), colour, width)
    dx, dy = bx - ax, by - ay
    norm = math.hypot(dx, dy)
    if norm > 1e-6:
        nx, ny = -dy / norm, dx / norm
        if nx + ny > 0:
            nx, ny = -nx, -ny
        ox, oy = nx * width * 0.22, ny * width * 0.22
        cv.line((ax + ox, ay + oy), (bx + ox, by + oy), _shade(colour, 1.13), max(width * 0.35, 0.6))


def _background(signer: Signer, height: int, width: int) -> np.ndarray:
    """The studio backdrop: the signer's colour with a soft vertical gradient."""
    grad = np.linspace(1.06, 0.9, height)[:, None, None]
    column = np.clip(np.array(signer.background, np.float64)[None, None] * grad, 0, 255).astype(np.uint8)
    return column.repeat(width, axis=1)


def _draw_torso(cv: _Canvas, signer: Signer, body: Body, head: np.ndarray) -> None:
    cx, sy, sw = head[0], body.shoulder_y + (head[1] - body.head[1]) * 0.5, body.shoulder_half
    cloth = signer.clothing
    neck_w = 0.5 * body.head_rx
    chin_y = head[1] + body.head_ry
    # neck, with a shadow under the chin
    neck = [(cx - neck_w, chin_y - 12), (cx + neck_w, chin_y - 12), (cx + neck_w * 1.1, sy), (cx - neck_w * 1.1, sy)]
    cv.poly(neck, _shade(signer.skin, 0.9))
    cv.ellipse((cx, chin_y + 1), (neck_w * 1.05, 4.0), 0, _shade(signer.skin, 0.68), 0, 180)
    bottom = REFERENCE_HEIGHT + 40
    torso = [
        (cx - neck_w * 1.2, sy - 12),
        (cx - sw * 0.55, sy - 6),
        (cx - sw, sy + 2),
        (cx - sw * 1.08, sy + 20),
        (cx - sw * 1.02, bottom),
        (cx + sw * 1.02, bottom),
        (cx + sw * 1.08, sy + 20),
        (cx + sw, sy + 2),
        (cx + sw * 0.55, sy - 6),
        (cx + neck_w * 1.2, sy - 12),
    ]
    cv.poly(torso, cloth, _shade(cloth, 0.7), 1.0)
    cv.circle((cx - sw * 0.88, sy + 10), 13, cloth)
    cv.circle((cx + sw * 0.88, sy + 10), 13, cloth)
    # the collar opening
    cv.poly([(cx - neck_w * 1.2, sy - 12), (cx, sy + 10), (cx + neck_w * 1.2, sy - 12)], _shade(signer.skin, 0.82))
    cv.line((cx - neck_w * 1.25, sy - 12), (cx, sy + 11), _shade(cloth, 0.75), 2.0)
    cv.line((cx + neck_w * 1.25, sy - 12), (cx, sy + 11), _shade(cloth, 0.75), 2.0)
    # folds and side shading give the torso volume
    cv.line((cx - sw * 0.95, sy + 30), (cx - sw * 0.9, bottom), _shade(cloth, 0.8), 6.0)
    cv.line((cx + sw * 0.95, sy + 30), (cx + sw * 0.9, bottom), _shade(cloth, 0.8), 6.0)


def _draw_head(cv: _Canvas, signer: Signer, body: Body, head: np.ndarray) -> dict[str, np.ndarray]:
    """Face and hair; returns the pose points of the face."""
    rx, ry = body.head_rx, body.head_ry
    cx, cy = head
    skin, hair = signer.skin, signer.hair
    if signer.long_hair:  # strands down to the shoulders, outside the neck
        for sd in (-1, 1):
            cv.poly(
                [
                    (cx + sd * 0.6 * rx, cy - 0.9 * ry),
                    (cx + sd * 1.2 * rx, cy - 0.3 * ry),
                    (cx + sd * 1.28 * rx, cy + 1.3 * ry),
                    (cx + sd * 0.72 * rx, cy + 1.2 * ry),
                    (cx + sd * 0.8 * rx, cy),
                ],
                hair,
            )
    cv.ellipse((cx, cy - 0.12 * ry), (rx * 1.1, ry * 1.05), 0, hair)
    # ears
    ear_y = cy + 0.05 * ry
    for s in (-1, 1):
        cv.ellipse((cx + s * rx * 0.98, ear_y), (rx * 0.17, ry * 0.22), 0, _shade(skin, 0.85))
        cv.ellipse((cx + s * rx * 0.98, ear_y), (rx * 0.08, ry * 0.12), 0, _shade(skin, 0.7))
    # face: darker rim, lighter centre
    cv.ellipse((cx, cy + 0.04 * ry), (rx, ry), 0, _shade(skin, 0.8))
    cv.ellipse((cx - 0.03 * rx, cy + 0.02 * ry), (rx * 0.9, ry * 0.93), 0, _shade(skin, 0.93))
    cv.ellipse((cx - 0.06 * rx, cy - 0.02 * ry), (rx * 0.7, ry * 0.78), 0, skin)
    # fringe
    cv.ellipse((cx, cy - 0.72 * ry), (rx * 1.02, ry * 0.42), 0, hair, 180, 360)
    cv.ellipse((cx, cy - 0.72 * ry), (rx * 1.0, ry * 0.16), 0, hair, 0, 180)
    # eyebrows
    eye_y = cy - 0.12 * ry
    for s in (-1, 1):
        ex = cx + s * 0.4 * rx
        cv.line((ex - 0.2 * rx, eye_y - 0.2 * ry), (ex + 0.2 * rx, eye_y - 0.24 * ry), _shade(hair, 0.8), 2.0)
    # eyes
    eyes = {}
    for name, s in (("right_eye", -1), ("left_eye", 1)):
        ex = cx + s * 0.4 * rx
        cv.ellipse((ex, eye_y), (0.2 * rx, 0.085 * ry), 0, (235, 238, 240))
        cv.circle((ex, eye_y), 0.085 * ry, signer.iris)
        cv.circle((ex, eye_y), 0.04 * ry, (15, 15, 15))
        cv.circle((ex - 0.03 * rx, eye_y - 0.03 * ry), 0.018 * ry, (250, 250, 250))
        cv.ellipse((ex, eye_y), (0.21 * rx, 0.1 * ry), 0, _shade(skin, 0.45), 190, 350, 1.2)
        eyes[name] = np.array([ex, eye_y])
    # nose: bridge shadow, tip, nostrils
    nose_tip = np.array([cx, cy + 0.28 * ry])
    cv.line((cx + 0.06 * rx, eye_y + 0.05 * ry), (cx + 0.09 * rx, nose_tip[1] - 0.04 * ry), _shade(skin, 0.8), 1.4)
    cv.ellipse(nose_tip, (0.15 * rx, 0.08 * ry), 0, _shade(skin, 0.82))
    cv.circle(nose_tip - (0.02 * rx, 0.02 * ry), 0.06 * ry, _shade(skin, 1.06))
    for s in (-1, 1):
        cv.circle((cx + s * 0.09 * rx, nose_tip[1] + 0.04 * ry), 0.03 * ry, _shade(skin, 0.5))
    # mouth
    mouth_y = cy + 0.55 * ry
    lips = (int(skin[0] * 0.6), int(skin[1] * 0.55), int(min(255, skin[2] * 0.85)))
    cv.ellipse((cx, mouth_y), (0.3 * rx, 0.09 * ry), 0, lips)
    cv.line((cx - 0.3 * rx, mouth_y), (cx + 0.3 * rx, mouth_y), _shade(lips, 0.55), 1.2)
    # chin shading
    cv.ellipse((cx, cy + 0.85 * ry), (0.35 * rx, 0.1 * ry), 0, _shade(skin, 0.88), 0, 180)
    return {
        "nose": nose_tip,
        **eyes,
        "right_ear": np.array([cx - rx * 0.98, ear_y]),
        "left_ear": np.array([cx + rx * 0.98, ear_y]),
    }


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, outward: float, upper: float, fore: float) -> np.ndarray:
    """Elbow position: the upper arm hangs down and out, foreshortened when the hand is raised
    toward the camera; plain two-bone IK only when the wrist is too far away for that."""
    raise_ = float(np.clip((shoulder[1] + upper - wrist[1]) / upper, 0.0, 1.5))
    phi = np.deg2rad(12.0 + 14.0 * raise_)
    hang = np.array([outward * np.sin(phi), np.cos(phi)])
    elbow = shoulder + upper * (0.95 - 0.3 * raise_) * hang
    to_elbow = elbow - wrist
    if np.linalg.norm(to_elbow) > fore:  # the forearm cannot reach: pull the elbow toward the wrist
        elbow = wrist + fore * to_elbow / np.linalg.norm(to_elbow)
    if np.linalg.norm(elbow - shoulder) <= upper:
        return elbow
    d = wrist - shoulder
    dist = float(np.clip(np.linalg.norm(d), 1e-6, upper + fore - 1e-3))
    cos_a = np.clip((upper**2 + dist**2 - fore**2) / (2 * upper * dist), -1.0, 1.0)
    base = np.arctan2(d[1], d[0])
    angles = (base - np.arccos(cos_a), base + np.arccos(cos_a))
    candidates = [shoulder + upper * np.array([np.cos(a), np.sin(a)]) for a in angles]
    return max(candidates, key=lambda e: e[1])


@dataclass
class PosedHand:
    joints: np.ndarray  # [21, 3] reference pixels (x, y) and depth z (toward viewer)
    palm: np.ndarray  # [12, 3]
    nail_normals: np.ndarray  # [5, 3]
    palm_facing: float  # z of the palm normal: > 0 when the palm faces the viewer
    length: float


def pose_hand(state: np.ndarray, hand: str, body: Body) -> PosedHand:
    """Place a hand from its side-relative state: rotate, mirror for the left hand, translate."""
    geo = hand_model(state[5:])
    rot = _rotation(*state[2:5])
    L = body.hand_length
    pts = np.concatenate([geo.joints, geo.palm, _PALM_ANCHOR[None]]) @ rot.T * L
    nails = geo.nail_normals @ rot.T
    side = 1.0 if hand == "left" else -1.0  # the left hand is on the image's right
    if hand == "left":
        pts[:, 0] *= -1
        nails[:, 0] *= -1
    anchor = np.array([body.cx + side * state[0], state[1], 0.0])
    pts = pts - pts[-1] + anchor
    return PosedHand(pts[:NUM_HAND_JOINTS], pts[NUM_HAND_JOINTS:-1], nails, float(rot[2, 2]), L)


# joint chains drawn as one finger each (thumb first), with widths per segment (hand lengths)
_CHAINS = ((1, 2, 3, 4),) + tuple(tuple(range(5 + 4 * i, 9 + 4 * i)) for i in range(4))
_CHAIN_WIDTHS = ((_THUMB_WIDTH * 1.35, _THUMB_WIDTH, _THUMB_WIDTH * 0.9),) + tuple(
    (w, w * 0.93, w * 0.86) for w in _FINGER_WIDTH.tolist()
)


def _lerp(a, b, t: float) -> tuple[float, float]:
    return a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t


def _draw_finger(cv: _Canvas, hand: PosedHand, k: int, skin) -> None:
    """One finger: rim, then flesh, then highlight, so its joints do not show as seams; a nail
    where the fingertip's back faces the viewer."""
    j, L = hand.joints.tolist(), hand.length  # plain floats: far cheaper per primitive than numpy scalars
    chain, widths = _CHAINS[k], _CHAIN_WIDTHS[k]
    segs = [(j[a], j[b], w * L) for a, b, w in zip(chain[:-1], chain[1:], widths)]
    rim = _shade(skin, 0.62)
    for a, b, w in segs:
        cv.line(a, b, rim, w + 1.4)
    for a, b, w in segs:
        cv.line(a, b, skin, w)
    light = _shade(skin, 1.13)
    for a, b, w in segs:
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = math.hypot(dx, dy)
        if norm > 1e-6:
            nx, ny = -dy / norm, dx / norm
            if nx + ny > 0:
                nx, ny = -nx, -ny
            off = (nx * w * 0.22, ny * w * 0.22)
            cv.line((a[0] + off[0], a[1] + off[1]), (b[0] + off[0], b[1] + off[1]), light, max(w * 0.3, 0.6))
    if hand.nail_normals[k, 2] > 0.3:
        a, b, w = segs[-1]
        centre = _lerp(b, a, 0.38)
        seg_len = math.hypot(b[0] - a[0], b[1] - a[1])
        angle = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
        nail = tuple(int(0.55 * c + 0.45 * n) for c, n in zip(skin, (205, 210, 240)))
        cv.ellipse(centre, (max(seg_len * 0.34, 0.5), w * 0.3), angle, nail)


def _draw_palm(cv: _Canvas, hand: PosedHand, skin) -> None:
    """The palm (creases) or the back of the hand (knuckles, tendons), whichever faces the viewer."""
    j, L = hand.joints.tolist(), hand.length
    cv.poly(hand.palm, _shade(skin, 0.97), _shade(skin, 0.66), 0.8)
    crease = _shade(skin, 0.8)
    if hand.palm_facing >= 0:
        palm = hand.palm.tolist()
        cv.line(palm[2], _lerp(j[0], _lerp(j[5], j[9], 0.5), 0.8), crease, 0.03 * L)
        cv.line(palm[8], _lerp(j[0], j[1], 0.6), crease, 0.03 * L)
        cv.line(_lerp(j[1], j[2], 0.2), _lerp(j[0], j[9], 0.3), _shade(skin, 0.9), 0.09 * L)  # thenar shadow
    else:
        for m in (5, 9, 13, 17):
            cv.line(_lerp(j[0], j[m], 0.25), _lerp(j[0], j[m], 0.85), _shade(skin, 0.9), 0.035 * L)
            cv.circle(j[m], 0.035 * L, _shade(skin, 1.1))


def _draw_hand(cv: _Canvas, hand: PosedHand, skin) -> None:
    """Palm and five fingers, painted back to front."""
    z = hand.joints[:, 2]
    items = [(float(hand.palm[:, 2].mean()), -1)] + [(float(z[list(c)].mean()), k) for k, c in enumerate(_CHAINS)]
    for _, k in sorted(items):
        if k < 0:
            _draw_palm(cv, hand, skin)
        else:
            _draw_finger(cv, hand, k, skin)


def _draw_arm(cv: _Canvas, signer: Signer, shoulder, elbow, wrist, width: float) -> None:
    cloth = _shade(signer.clothing, 1.12)
    _limb(cv, shoulder, elbow, cloth, width)
    cuff = wrist + (elbow - wrist) * 0.1
    _limb(cv, elbow, cuff, cloth, width * 0.82)
    cv.line(cuff, wrist, _shade(signer.skin, 0.9), width * 0.5)


# ------------------------------------------------------------------------------------------------
# Whole videos
# ------------------------------------------------------------------------------------------------


@dataclass
class RenderedVideo:
    """Frames plus ground truth; 'visible' means inside the frame and not covered by an occluder.

    Joint coordinates are output pixels with pixel centres at integer values (OpenCV's convention).
    """

    frames: list[np.ndarray]  # BGR uint8 [H, W, 3]
    hand_joints: np.ndarray  # float32 [T, 2, 21, 2] pixels; hand 0 = left, 1 = right
    hand_joint_visible: np.ndarray  # bool [T, 2, 21]
    hand_visible: np.ndarray  # bool [T, 2]
    pose_joints: np.ndarray  # float32 [T, len(POSE_NAMES), 2] pixels
    pose_visible: np.ndarray  # bool [T, len(POSE_NAMES)]
    gloss_spans: np.ndarray  # int32 [N, 2] start (inclusive), end (exclusive) frame
    extra: dict = field(default_factory=dict)


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, amplitude: float) -> np.ndarray:
    """A slowly drifting random walk, low-pass filtered (camera shake, body sway)."""
    raw = rng.normal(0.0, 1.0, size=(n + 6, dims))
    kernel = np.ones(5) / 5
    smooth = np.stack([np.convolve(raw[:, d], kernel, mode="same") for d in range(dims)], axis=1)[3 : n + 3]
    return smooth * amplitude / max(float(smooth.std()), 1e-6)


def _plan_occlusion(rng: np.random.Generator, n_frames: int, prob: float) -> tuple[int, int, int] | None:
    """(first frame, last frame + 1, hand index) of one brief occlusion, or None."""
    if n_frames < 12 or rng.random() >= prob:
        return None
    length = int(rng.integers(2, 5))
    start = int(rng.integers(4, n_frames - length - 4))
    return start, start + length, int(rng.integers(2))


def render_video(
    glosses, signer: Signer, rng: np.random.Generator, params: RenderParams = RenderParams()
) -> RenderedVideo:
    """Render one signed sentence; every random choice comes from `rng`, so it is reproducible."""
    unknown = [g for g in glosses if g not in LEXICON]
    if unknown:
        raise ValueError(f"glosses not in the lexicon: {unknown}")
    body = Body.of(signer)
    plan = plan_motion(list(glosses), signer, rng)
    n = len(plan.states)
    H, W, ss = params.height, params.width, params.supersample
    u = min(H / REFERENCE_HEIGHT, W / REFERENCE_WIDTH)  # reference px -> output px
    origin = np.array([(W - REFERENCE_WIDTH * u) / 2, (H - REFERENCE_HEIGHT * u) / 2])
    shake = _smooth_noise(rng, n, 2, params.jitter_px)
    sway = _smooth_noise(rng, n, 2, 1.5)
    blur = float(rng.uniform(*params.blur_sigma))
    noise = float(rng.uniform(*params.noise_sigma))
    occlusion = _plan_occlusion(rng, n, params.occlusion_prob)
    dominant, passive = ("left", "right") if signer.left_handed else ("right", "left")

    P = len(POSE_NAMES)
    out = RenderedVideo(
        frames=[],
        hand_joints=np.zeros((n, 2, NUM_HAND_JOINTS, 2), np.float32),
        hand_joint_visible=np.zeros((n, 2, NUM_HAND_JOINTS), bool),
        hand_visible=np.zeros((n, 2), bool),
        pose_joints=np.zeros((n, P, 2), np.float32),
        pose_visible=np.zeros((n, P), bool),
        gloss_spans=plan.gloss_spans,
        extra={"glosses": tuple(glosses), "blur_sigma": blur, "noise_sigma": noise, "occlusion": occlusion},
    )
    backdrop = _background(signer, H * ss, W * ss)
    canvas_img = np.empty_like(backdrop)
    # one pool of sensor noise per video; each frame reads a random window of it
    pad = 16
    noise_pool = np.round(rng.normal(0.0, noise, (H + pad, W + pad, 3))).astype(np.int16)
    for t in range(n):
        cam_offset = (origin + shake[t] * u) * ss
        cv = _Canvas(canvas_img, u * ss, cam_offset)
        head = body.head + sway[t]
        np.copyto(canvas_img, backdrop)
        _draw_torso(cv, signer, body, head)
        face = _draw_head(cv, signer, body, head)
        sy = body.shoulder_y + sway[t, 1] * 0.5
        shoulders = {
            "right": np.array([head[0] - body.shoulder_half * 0.9, sy + 8]),
            "left": np.array([head[0] + body.shoulder_half * 0.9, sy + 8]),
        }
        hands = {
            dominant: pose_hand(plan.states[t, 0], dominant, body),
            passive: pose_hand(plan.states[t, 1], passive, body),
        }
        points = dict(face)
        for name in (passive, dominant):  # the dominant arm is drawn last, in front
            hand = hands[name]
            outward = -1.0 if name == "right" else 1.0
            wrist = hand.joints[0, :2]
            elbow = _elbow(shoulders[name], wrist, outward, body.upper_arm, body.forearm)
            _draw_arm(cv, signer, shoulders[name], elbow, wrist, 0.36 * body.hand_length)
            _draw_hand(cv, hand, signer.skin)
            points[f"{name}_shoulder"], points[f"{name}_elbow"], points[f"{name}_wrist"] = shoulders[name], elbow, wrist
        for s, name in ((1, "left"), (-1, "right")):
            points[f"{name}_hip"] = np.array([head[0] + s * body.shoulder_half * 0.75, sy + 150.0])

        occluded_hand = None
        if occlusion and occlusion[0] <= t < occlusion[1]:
            occluded_hand = HANDS[occlusion[2]]
            j = hands[occluded_hand].joints[:, :2]
            lo, hi = j.min(axis=0) - 6, j.max(axis=0) + 6
            card = [lo, (hi[0], lo[1]), hi, (lo[0], hi[1])]  # a plain card passing in front of the hand
            cv.poly(card, _shade(signer.background, 0.8), _shade(signer.background, 0.55), 1.5)

        image = cv2.resize(canvas_img, (W, H), interpolation=cv2.INTER_AREA) if ss > 1 else canvas_img.copy()
        if blur > 0:
            image = cv2.GaussianBlur(image, (0, 0), blur)
        if noise > 0:
            dy, dx = rng.integers(0, pad, size=2)
            image = cv2.add(image, noise_pool[dy : dy + H, dx : dx + W], dtype=cv2.CV_8U)  # saturating
        out.frames.append(image)

        to_px = lambda p: np.asarray(p, np.float64)[..., :2] * u + origin + shake[t] * u  # noqa: E731
        for h, name in enumerate(HANDS):
            xy = to_px(hands[name].joints)
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
            vis = inside & (occluded_hand != name)
            out.hand_joints[t, h] = xy
            out.hand_joint_visible[t, h] = vis
            out.hand_visible[t, h] = vis.sum() >= NUM_HAND_JOINTS - 2
        for p, name in enumerate(POSE_NAMES):
            xy = to_px(points[name])
            out.pose_joints[t, p] = xy
            out.pose_visible[t, p] = 0 <= xy[0] < W and 0 <= xy[1] < H
    return out
