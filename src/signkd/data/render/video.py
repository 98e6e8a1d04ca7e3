"""Whole videos: the scene drawn frame by frame through the camera, and the ground truth.

Each frame is drawn in layers: backdrop, torso and head (still during one exposure), then the arms
and hands at every exposure instant (see camera.py), averaged, then optics, sensor and compression.
Besides the joints, the ground truth records what makes a hand hard to detect in each frame - the
face's box (a hand in front of the face) and the hand's contrast against what is behind it - so
that every miss of the keypoint extractor can be attributed (features/accuracy.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from signkd.data.render.body import Body, draw_arm, draw_head, draw_torso, elbow_position
from signkd.data.render.camera import RenderParams, Sensor, exposure_instants, interlace, smooth_noise
from signkd.data.render.canvas import Canvas, background, shade
from signkd.data.render.hands import PosedHand, draw_hand, pose_hand
from signkd.data.render.motion import plan_motion
from signkd.data.render.signer import Signer, luma
from signkd.data.render.skeleton import HANDS, NUM_HAND_JOINTS, POSE_NAMES, REFERENCE_HEIGHT, REFERENCE_WIDTH
from signkd.data.signs import LEXICON, Sign

_LUMA_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # BGR


@dataclass
class RenderedVideo:
    """Frames plus ground truth; 'visible' means inside the frame and not covered by an occluder.

    Joint coordinates are output pixels with pixel centres at integer values (OpenCV's convention),
    taken at the middle of each frame's exposure.
    """

    frames: list[np.ndarray]  # BGR uint8 [H, W, 3]
    hand_joints: np.ndarray  # float32 [T, 2, 21, 2] pixels; hand 0 = left, 1 = right
    hand_joint_visible: np.ndarray  # bool [T, 2, 21]
    hand_visible: np.ndarray  # bool [T, 2]
    pose_joints: np.ndarray  # float32 [T, len(POSE_NAMES), 2] pixels
    pose_visible: np.ndarray  # bool [T, len(POSE_NAMES)]
    gloss_spans: np.ndarray  # int32 [N, 2] start (inclusive), end (exclusive) frame
    face_box: np.ndarray  # float32 [T, 4] x0, y0, x1, y1 of the face (pixels)
    hand_contrast: np.ndarray  # float32 [T, 2] |skin luma - mean luma behind the hand's box| / 255
    extra: dict = field(default_factory=dict)


def _plan_occlusion(rng: np.random.Generator, n_frames: int, prob: float) -> tuple[int, int, int] | None:
    """(first frame, last frame + 1, hand index) of one brief occlusion, or None."""
    if n_frames < 12 or rng.random() >= prob:
        return None
    length = int(rng.integers(2, 5))
    start = int(rng.integers(4, n_frames - length - 4))
    return start, start + length, int(rng.integers(2))


class _Limbs:
    """Poses and draws both arms and hands of one signer; the dominant arm is drawn last, in front."""

    def __init__(self, signer: Signer, body: Body, states: np.ndarray):
        self.signer, self.body = signer, body
        self.dominant, self.passive = ("left", "right") if signer.left_handed else ("right", "left")
        # posed once per frame; instants in between move the posed joints linearly (far cheaper
        # than the forward kinematics, and indistinguishable within one frame's travel)
        self.posed = [{self.dominant: pose_hand(s[0], self.dominant, body),
                       self.passive: pose_hand(s[1], self.passive, body)} for s in states]

    def hands_at(self, time: float) -> dict[str, PosedHand]:
        """Both hands at a fractional frame time (held before the first and after the last frame)."""
        time = min(max(time, 0.0), len(self.posed) - 1.0)
        k = min(int(time), max(len(self.posed) - 2, 0))
        w = time - k
        if w == 0:
            return self.posed[k]
        return {name: hand.towards(self.posed[k + 1][name], w) for name, hand in self.posed[k].items()}

    def elbows(self, shoulders: dict, hands: dict[str, PosedHand]) -> dict[str, np.ndarray]:
        b = self.body
        return {name: elbow_position(shoulders[name], hands[name].joints[0, :2], -1.0 if name == "right" else 1.0,
                                     b.upper_arm, b.forearm) for name in HANDS}

    def draw(self, cv: Canvas, shoulders: dict, hands: dict[str, PosedHand], card) -> None:
        elbows = self.elbows(shoulders, hands)
        for name in (self.passive, self.dominant):
            draw_arm(cv, self.signer, shoulders[name], elbows[name], hands[name].joints[0, :2],
                     0.36 * self.body.hand_length)
            draw_hand(cv, hands[name], self.signer.skin)
        if card is not None:  # a plain card passing in front of one hand
            cv.poly(card, shade(self.signer.background, 0.8), shade(self.signer.background, 0.55), 1.5)


def _limb_box(limbs: _Limbs, shoulders: dict, poses: list[dict], hand_length: float, scale: float, offset,
              shape) -> tuple[tuple[int, int], tuple[int, int]]:
    """Canvas pixel box holding the arms and hands at every instant: only it changes within a frame."""
    pts = [np.stack(list(shoulders.values()))]
    for hands in poses:
        pts += [h.joints[:, :2] for h in hands.values()] + [h.palm[:, :2] for h in hands.values()]
        pts.append(np.stack(list(limbs.elbows(shoulders, hands).values())))
    pts = np.concatenate(pts) * scale + np.asarray(offset)
    margin = (0.3 * hand_length + 3) * scale
    lo = np.maximum(np.floor(pts.min(axis=0) - margin), 0).astype(int)
    hi = np.minimum(np.ceil(pts.max(axis=0) + margin), (shape[1], shape[0])).astype(int)
    return (int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1]))


def _contrast(scene: np.ndarray, box: np.ndarray, skin_luma: float) -> float:
    """|skin luma - mean luma of `scene` inside `box`| / 255; the scene is drawn without limbs."""
    h, w = scene.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    behind = float(scene[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) @ _LUMA_WEIGHTS)
    return abs(skin_luma - behind) / 255.0


def render_video(
    glosses, signer: Signer, rng: np.random.Generator, params: RenderParams = RenderParams(),
    lexicon: Mapping[str, Sign] = LEXICON,
) -> RenderedVideo:
    """Render one signed sentence; every random choice comes from `rng`, so it is reproducible.
    `lexicon`: the signs' forms (the corpus's own by default)."""
    unknown = [g for g in glosses if g not in lexicon]
    if unknown:
        raise ValueError(f"glosses not in the lexicon: {unknown}")
    body = Body.of(signer)
    plan = plan_motion(list(glosses), signer, rng, lexicon)
    limbs = _Limbs(signer, body, plan.states)
    n = len(plan.states)
    H, W, ss = params.height, params.width, params.supersample
    u = min(H / REFERENCE_HEIGHT, W / REFERENCE_WIDTH)  # reference px -> output px
    origin = np.array([(W - REFERENCE_WIDTH * u) / 2, (H - REFERENCE_HEIGHT * u) / 2])
    shake = smooth_noise(rng, n, 2, params.jitter_px)
    sway = smooth_noise(rng, n, 2, 1.5)
    sensor = Sensor.draw(rng, params)
    occlusion = _plan_occlusion(rng, n, params.occlusion_prob)

    P = len(POSE_NAMES)
    out = RenderedVideo(
        frames=[],
        hand_joints=np.zeros((n, 2, NUM_HAND_JOINTS, 2), np.float32),
        hand_joint_visible=np.zeros((n, 2, NUM_HAND_JOINTS), bool),
        hand_visible=np.zeros((n, 2), bool),
        pose_joints=np.zeros((n, P, 2), np.float32),
        pose_visible=np.zeros((n, P), bool),
        gloss_spans=plan.gloss_spans,
        face_box=np.zeros((n, 4), np.float32),
        hand_contrast=np.zeros((n, 2), np.float32),
        extra={"glosses": tuple(glosses), "blur_sigma": sensor.blur, "noise_sigma": sensor.noise,
               "jpeg_quality": sensor.jpeg_quality, "interlaced": sensor.interlaced, "occlusion": occlusion,
               "exposure_instants": np.zeros(n, np.int32)},
    )
    backdrop = background(signer, H * ss, W * ss)
    scene = np.empty_like(backdrop)  # backdrop, torso and head: still during one exposure
    work = np.empty_like(backdrop)
    fields = np.zeros((2, *backdrop.shape), np.float32)
    skin_luma = luma(signer.skin)
    # one pool of sensor noise per video; each frame reads a random window of it
    pad = 16
    noise_pool = np.round(rng.normal(0.0, sensor.noise, (H + pad, W + pad, 3))).astype(np.int16)
    for t in range(n):
        cam_offset = (origin + shake[t] * u) * ss
        to_px = lambda p: np.asarray(p, np.float64)[..., :2] * u + origin + shake[t] * u  # noqa: E731
        head = body.head + sway[t]
        np.copyto(scene, backdrop)
        draw_torso(Canvas(scene, u * ss, cam_offset), signer, body, head)
        face = draw_head(Canvas(scene, u * ss, cam_offset), signer, body, head)
        sy = body.shoulder_y + sway[t, 1] * 0.5
        shoulders = {
            "right": np.array([head[0] - body.shoulder_half * 0.9, sy + 8]),
            "left": np.array([head[0] + body.shoulder_half * 0.9, sy + 8]),
        }
        hands = limbs.hands_at(t)
        occluded_hand, card = None, None
        if occlusion and occlusion[0] <= t < occlusion[1]:
            occluded_hand = HANDS[occlusion[2]]
            j = hands[occluded_hand].joints[:, :2]
            lo, hi = j.min(axis=0) - 6, j.max(axis=0) + 6
            card = [lo, (hi[0], lo[1]), hi, (lo[0], hi[1])]

        # the exposure: the limbs drawn at each instant, averaged (per field when interlaced)
        half = params.exposure / 2
        before, after = limbs.hands_at(t - half), limbs.hands_at(t + half)
        travel = max(float(np.abs(after[k].joints[:, :2] - before[k].joints[:, :2]).max()) for k in HANDS) * u
        instants = exposure_instants(travel, params, sensor.interlaced)
        out.extra["exposure_instants"][t] = len(instants)
        if len(instants) == 1:
            np.copyto(work, scene)
            limbs.draw(Canvas(work, u * ss, cam_offset), shoulders, limbs.hands_at(t + instants[0]), card)
        else:
            poses = [limbs.hands_at(t + o) for o in instants]
            (x0, y0), (x1, y1) = _limb_box(limbs, shoulders, poses, body.hand_length, u * ss, cam_offset, scene.shape)
            np.copyto(work, scene)
            roi, acc = work[y0:y1, x0:x1], fields[:, : y1 - y0, : x1 - x0]
            acc[:] = 0
            counts = [0, 0]
            for o, hands_o in zip(instants, poses):
                np.copyto(roi, scene[y0:y1, x0:x1])
                limbs.draw(Canvas(roi, u * ss, cam_offset - (x0, y0)), shoulders, hands_o, card)
                f = int(sensor.interlaced and o >= 0)
                acc[f] += roi
                counts[f] += 1
            if counts[1]:  # interlaced: both fields at full size, woven after downscaling
                second = work.copy()
                second[y0:y1, x0:x1] = np.round(acc[1] / counts[1])
                second = cv2.resize(second, (W, H), interpolation=cv2.INTER_AREA) if ss > 1 else second
            roi[:] = np.round(acc[0] / counts[0])
        image = cv2.resize(work, (W, H), interpolation=cv2.INTER_AREA) if ss > 1 else work.copy()
        if len(instants) > 1 and counts[1]:
            image = interlace(image, second)
        noise = None
        if sensor.noise > 0:
            dy, dx = rng.integers(0, pad, size=2)
            noise = noise_pool[dy : dy + H, dx : dx + W]
        out.frames.append(sensor.finish(image, noise))

        # ground truth at the middle of the exposure
        points = dict(face)
        elbows = limbs.elbows(shoulders, hands)
        for name in HANDS:
            points[f"{name}_shoulder"], points[f"{name}_elbow"] = shoulders[name], elbows[name]
            points[f"{name}_wrist"] = hands[name].joints[0, :2]
        for s, name in ((1, "left"), (-1, "right")):
            points[f"{name}_hip"] = np.array([head[0] + s * body.shoulder_half * 0.75, sy + 150.0])
        centre = head + (0.0, 0.04 * body.head_ry)
        out.face_box[t] = np.concatenate([to_px(centre - (body.head_rx, body.head_ry)),
                                          to_px(centre + (body.head_rx, body.head_ry))])
        for h, name in enumerate(HANDS):
            xy = to_px(hands[name].joints)
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
            vis = inside & (occluded_hand != name)
            out.hand_joints[t, h] = xy
            out.hand_joint_visible[t, h] = vis
            out.hand_visible[t, h] = vis.sum() >= NUM_HAND_JOINTS - 2
            box = np.concatenate([xy.min(axis=0), xy.max(axis=0)])
            # (box + 0.5) * ss - 0.5: output pixel centres -> supersampled pixel edges
            out.hand_contrast[t, h] = _contrast(scene, (box + 0.5) * ss, skin_luma)
        for p, name in enumerate(POSE_NAMES):
            xy = to_px(points[name])
            out.pose_joints[t, p] = xy
            out.pose_visible[t, p] = 0 <= xy[0] < W and 0 <= xy[1] < H
    return out
