"""The body: measurements of a signer, sign locations, and drawing of torso, head and arms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signkd.data.render.canvas import Canvas, limb, shade
from signkd.data.render.signer import Signer
from signkd.data.render.skeleton import REFERENCE_HEIGHT, REFERENCE_WIDTH


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
            "face": (0.35 * self.head_rx, self.head[1] + 0.2 * self.head_ry),
            "chin": (0.45 * self.head_rx, chin_y + 0.5 * L),
            "chest": (0.4 * sw, self.shoulder_y + 0.5 * sw),
            "neutral": (0.6 * sw, self.shoulder_y + 1.05 * sw),
            "neutral_high": (0.8 * sw, self.shoulder_y + 0.3 * sw),
            "base": (0.15 * sw, self.shoulder_y + 1.3 * sw),
            "other_hand": (0.3 * sw, self.shoulder_y + 1.3 * sw - 0.62 * L),
            "rest": (0.85 * sw, self.shoulder_y + 1.85 * sw),
        }[name]



def draw_torso(cv: Canvas, signer: Signer, body: Body, head: np.ndarray) -> None:
    cx, sy, sw = head[0], body.shoulder_y + (head[1] - body.head[1]) * 0.5, body.shoulder_half
    cloth = signer.clothing
    neck_w = 0.5 * body.head_rx
    chin_y = head[1] + body.head_ry
    # neck, with a shadow under the chin
    neck = [(cx - neck_w, chin_y - 12), (cx + neck_w, chin_y - 12), (cx + neck_w * 1.1, sy), (cx - neck_w * 1.1, sy)]
    cv.poly(neck, shade(signer.skin, 0.9))
    cv.ellipse((cx, chin_y + 1), (neck_w * 1.05, 4.0), 0, shade(signer.skin, 0.68), 0, 180)
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
    cv.poly(torso, cloth, shade(cloth, 0.7), 1.0)
    cv.circle((cx - sw * 0.88, sy + 10), 13, cloth)
    cv.circle((cx + sw * 0.88, sy + 10), 13, cloth)
    # the collar opening
    cv.poly([(cx - neck_w * 1.2, sy - 12), (cx, sy + 10), (cx + neck_w * 1.2, sy - 12)], shade(signer.skin, 0.82))
    cv.line((cx - neck_w * 1.25, sy - 12), (cx, sy + 11), shade(cloth, 0.75), 2.0)
    cv.line((cx + neck_w * 1.25, sy - 12), (cx, sy + 11), shade(cloth, 0.75), 2.0)
    # folds and side shading give the torso volume
    cv.line((cx - sw * 0.95, sy + 30), (cx - sw * 0.9, bottom), shade(cloth, 0.8), 6.0)
    cv.line((cx + sw * 0.95, sy + 30), (cx + sw * 0.9, bottom), shade(cloth, 0.8), 6.0)


def draw_head(cv: Canvas, signer: Signer, body: Body, head: np.ndarray) -> dict[str, np.ndarray]:
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
        cv.ellipse((cx + s * rx * 0.98, ear_y), (rx * 0.17, ry * 0.22), 0, shade(skin, 0.85))
        cv.ellipse((cx + s * rx * 0.98, ear_y), (rx * 0.08, ry * 0.12), 0, shade(skin, 0.7))
    # face: darker rim, lighter centre
    cv.ellipse((cx, cy + 0.04 * ry), (rx, ry), 0, shade(skin, 0.8))
    cv.ellipse((cx - 0.03 * rx, cy + 0.02 * ry), (rx * 0.9, ry * 0.93), 0, shade(skin, 0.93))
    cv.ellipse((cx - 0.06 * rx, cy - 0.02 * ry), (rx * 0.7, ry * 0.78), 0, skin)
    # fringe
    cv.ellipse((cx, cy - 0.72 * ry), (rx * 1.02, ry * 0.42), 0, hair, 180, 360)
    cv.ellipse((cx, cy - 0.72 * ry), (rx * 1.0, ry * 0.16), 0, hair, 0, 180)
    # eyebrows
    eye_y = cy - 0.12 * ry
    for s in (-1, 1):
        ex = cx + s * 0.4 * rx
        cv.line((ex - 0.2 * rx, eye_y - 0.2 * ry), (ex + 0.2 * rx, eye_y - 0.24 * ry), shade(hair, 0.8), 2.0)
    # eyes
    eyes = {}
    for name, s in (("right_eye", -1), ("left_eye", 1)):
        ex = cx + s * 0.4 * rx
        cv.ellipse((ex, eye_y), (0.2 * rx, 0.085 * ry), 0, (235, 238, 240))
        cv.circle((ex, eye_y), 0.085 * ry, signer.iris)
        cv.circle((ex, eye_y), 0.04 * ry, (15, 15, 15))
        cv.circle((ex - 0.03 * rx, eye_y - 0.03 * ry), 0.018 * ry, (250, 250, 250))
        cv.ellipse((ex, eye_y), (0.21 * rx, 0.1 * ry), 0, shade(skin, 0.45), 190, 350, 1.2)
        eyes[name] = np.array([ex, eye_y])
    # nose: bridge shadow, tip, nostrils
    nose_tip = np.array([cx, cy + 0.28 * ry])
    cv.line((cx + 0.06 * rx, eye_y + 0.05 * ry), (cx + 0.09 * rx, nose_tip[1] - 0.04 * ry), shade(skin, 0.8), 1.4)
    cv.ellipse(nose_tip, (0.15 * rx, 0.08 * ry), 0, shade(skin, 0.82))
    cv.circle(nose_tip - (0.02 * rx, 0.02 * ry), 0.06 * ry, shade(skin, 1.06))
    for s in (-1, 1):
        cv.circle((cx + s * 0.09 * rx, nose_tip[1] + 0.04 * ry), 0.03 * ry, shade(skin, 0.5))
    # mouth
    mouth_y = cy + 0.55 * ry
    lips = (int(skin[0] * 0.6), int(skin[1] * 0.55), int(min(255, skin[2] * 0.85)))
    cv.ellipse((cx, mouth_y), (0.3 * rx, 0.09 * ry), 0, lips)
    cv.line((cx - 0.3 * rx, mouth_y), (cx + 0.3 * rx, mouth_y), shade(lips, 0.55), 1.2)
    # chin shading
    cv.ellipse((cx, cy + 0.85 * ry), (0.35 * rx, 0.1 * ry), 0, shade(skin, 0.88), 0, 180)
    return {
        "nose": nose_tip,
        **eyes,
        "right_ear": np.array([cx - rx * 0.98, ear_y]),
        "left_ear": np.array([cx + rx * 0.98, ear_y]),
    }


def elbow_position(shoulder: np.ndarray, wrist: np.ndarray, outward: float, upper: float, fore: float) -> np.ndarray:
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



def draw_arm(cv: Canvas, signer: Signer, shoulder, elbow, wrist, width: float) -> None:
    cloth = shade(signer.clothing, 1.12)
    limb(cv, shoulder, elbow, cloth, width)
    cuff = wrist + (elbow - wrist) * 0.1
    limb(cv, elbow, cuff, cloth, width * 0.82)
    cv.line(cuff, wrist, shade(signer.skin, 0.9), width * 0.5)

