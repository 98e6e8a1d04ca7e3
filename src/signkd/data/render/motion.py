"""Motion planning: per-frame states of both hands over a signed sentence.

Timing follows the signer's speed; coarticulation (a per-signer amount) makes a sign start nearer
to where the previous one ended (undershoot), shrinks its movement, and low-pass filters the whole
trajectory so that handshapes and positions run into the neighbouring signs, as in fluent signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from signkd.data.render.body import Body
from signkd.data.render.hands import REST_HANDSHAPE
from signkd.data.render.signer import Signer
from signkd.data.signs import BASE_HANDSHAPE, BASE_ORIENTATION, HANDSHAPES, LEXICON, Handshape, Sign

# Hand state: lateral, y, roll, yaw, pitch, then the 20 handshape angles.
STATE_SIZE = 5 + 20
ORIENTATION_ANGLES = {  # (roll, yaw, pitch) in the side-relative frame
    "up_front": (10.0, 15.0, 0.0),
    "up_back": (10.0, 165.0, 0.0),
    "medial_front": (72.0, 20.0, 0.0),
    "medial_back": (72.0, 160.0, 0.0),
    "rest": (40.0, 55.0, 0.0),  # turned toward the body: seen partly from the side
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
    "cross": 11,
}
RAISE_FRAMES = 6  # rest -> first sign and last sign -> rest, at speed 1.0
TRANSITION_FRAMES = 3  # from one sign to the next, at speed 1.0
UNDERSHOOT = 0.25  # at coarticulation 1, a sign's location moves this far toward the previous sign's end
REDUCTION = 0.25  # at coarticulation 1, movements shrink by this fraction


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
    if movement == "cross":  # inward past the midline: with a mirroring hand, the two hands cross
        s = 0.5 - 0.5 * np.cos(np.pi * t)
        return (0.2 - 1.35 * s * amp) * L, 0.5 * a * s, -10.0 * s, 0.0
    raise ValueError(f"unknown movement {movement!r}")


def _sign_states(gloss: str, body: Body, n: int, rng: np.random.Generator, reduction: float = 0.0,
                 lexicon: Mapping[str, Sign] = LEXICON) -> np.ndarray:
    """States [n, 2, STATE_SIZE] of (dominant, non-dominant) hand over one sign; `reduction`
    shrinks the movement (coarticulation)."""
    sign = lexicon[gloss]
    L = body.hand_length
    amp = float(rng.uniform(0.85, 1.15)) * (1.0 - reduction)
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


def _low_pass(states: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time (edges held), so neighbouring states blend."""
    if sigma <= 0:
        return states
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(states[:1], radius, 0), states, np.repeat(states[-1:], radius, 0)])
    out = np.zeros_like(states)
    for k, w in enumerate(kernel):
        out += w * padded[k : k + len(states)]
    return out


def plan_motion(glosses: list[str] | tuple[str, ...], signer: Signer, rng: np.random.Generator,
                lexicon: Mapping[str, Sign] = LEXICON) -> MotionPlan:
    """Rest -> sign -> transition -> sign ... -> rest, timed by the signer's speed and blended by
    the signer's coarticulation (see the module docstring). `lexicon`: where the glosses' forms
    are looked up (signs outside the corpus's own: inputs a model has never seen)."""
    body = Body.of(signer)
    c = signer.coarticulation
    rest_state = _state(*body.location("rest"), "rest", REST_HANDSHAPE)
    rest = np.stack([rest_state, rest_state])
    chunks = [np.repeat(rest[None], int(rng.integers(2, 4)), axis=0)]
    spans = []
    frame = len(chunks[0])
    for i, gloss in enumerate(glosses):
        nominal = (TRANSITION_FRAMES if i else RAISE_FRAMES) / signer.speed
        n_trans = int(np.clip(round(nominal) + int(rng.integers(-1, 2)), 2, 8))
        nominal = MOVEMENT_FRAMES[lexicon[gloss].movement] / signer.speed
        n_sign = int(np.clip(round(nominal) + int(rng.integers(-1, 2)), 5, 16))
        core = _sign_states(gloss, body, n_sign, rng, reduction=REDUCTION * c, lexicon=lexicon)
        if i:  # undershoot: the sign is made nearer to where the previous one ended
            core[:, :, :2] += UNDERSHOOT * c * (chunks[-1][-1, :, :2] - core[0, :, :2])
        chunks.append(_transition(chunks[-1][-1], core[0], n_trans))
        frame += n_trans
        spans.append((frame, frame + n_sign))
        chunks.append(core)
        frame += n_sign
    n_trans = int(np.clip(round(RAISE_FRAMES / signer.speed), 3, 8))
    chunks.append(_transition(chunks[-1][-1], rest, n_trans))
    chunks.append(np.repeat(rest[None], int(rng.integers(2, 4)), axis=0))
    states = _low_pass(np.concatenate(chunks, axis=0), c)
    return MotionPlan(states=states, gloss_spans=np.array(spans, dtype=np.int32).reshape(-1, 2))
