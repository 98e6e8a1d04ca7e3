"""Hands: 21-joint forward kinematics in MediaPipe's layout, placement and drawing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from signkd.data.render.body import Body
from signkd.data.render.canvas import Canvas, shade
from signkd.data.render.skeleton import NUM_HAND_JOINTS
from signkd.data.signs import Handshape

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
# a resting hand is relaxed and half curled, not the open palm a hand detector finds most easily
REST_HANDSHAPE = Handshape("rest", ((30.0, 40.0, 20.0),) * 4, (4.0, 0.0, -4.0, -8.0), (30.0, 25.0, 10.0, 10.0))


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


@dataclass
class PosedHand:
    joints: np.ndarray  # [21, 3] reference pixels (x, y) and depth z (toward viewer)
    palm: np.ndarray  # [12, 3]
    nail_normals: np.ndarray  # [5, 3]
    palm_facing: float  # z of the palm normal: > 0 when the palm faces the viewer
    length: float

    def towards(self, other: "PosedHand", w: float) -> "PosedHand":
        """This hand moved a fraction `w` of the way to `other` (an instant between two frames)."""
        if w == 0:
            return self
        return PosedHand(self.joints + w * (other.joints - self.joints), self.palm + w * (other.palm - self.palm),
                         self.nail_normals + w * (other.nail_normals - self.nail_normals),
                         self.palm_facing + w * (other.palm_facing - self.palm_facing), self.length)


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


def _draw_finger(cv: Canvas, hand: PosedHand, k: int, skin) -> None:
    """One finger: rim, then flesh, then highlight, so its joints do not show as seams; a nail
    where the fingertip's back faces the viewer."""
    j, L = hand.joints.tolist(), hand.length  # plain floats: far cheaper per primitive than numpy scalars
    chain, widths = _CHAINS[k], _CHAIN_WIDTHS[k]
    segs = [(j[a], j[b], w * L) for a, b, w in zip(chain[:-1], chain[1:], widths)]
    rim = shade(skin, 0.62)
    for a, b, w in segs:
        cv.line(a, b, rim, w + 1.4)
    for a, b, w in segs:
        cv.line(a, b, skin, w)
    light = shade(skin, 1.13)
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


def _draw_palm(cv: Canvas, hand: PosedHand, skin) -> None:
    """The palm (creases) or the back of the hand (knuckles, tendons), whichever faces the viewer."""
    j, L = hand.joints.tolist(), hand.length
    cv.poly(hand.palm, shade(skin, 0.97), shade(skin, 0.66), 0.8)
    crease = shade(skin, 0.8)
    if hand.palm_facing >= 0:
        palm = hand.palm.tolist()
        cv.line(palm[2], _lerp(j[0], _lerp(j[5], j[9], 0.5), 0.8), crease, 0.03 * L)
        cv.line(palm[8], _lerp(j[0], j[1], 0.6), crease, 0.03 * L)
        cv.line(_lerp(j[1], j[2], 0.2), _lerp(j[0], j[9], 0.3), shade(skin, 0.9), 0.09 * L)  # thenar shadow
    else:
        for m in (5, 9, 13, 17):
            cv.line(_lerp(j[0], j[m], 0.25), _lerp(j[0], j[m], 0.85), shade(skin, 0.9), 0.035 * L)
            cv.circle(j[m], 0.035 * L, shade(skin, 1.1))


def draw_hand(cv: Canvas, hand: PosedHand, skin) -> None:
    """Palm and five fingers, painted back to front."""
    z = hand.joints[:, 2]
    items = [(float(hand.palm[:, 2].mean()), -1)] + [(float(z[list(c)].mean()), k) for k, c in enumerate(_CHAINS)]
    for _, k in sorted(items):
        if k < 0:
            _draw_palm(cv, hand, skin)
        else:
            _draw_finger(cv, hand, k, skin)

