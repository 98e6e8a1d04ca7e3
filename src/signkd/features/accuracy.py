"""How well MediaPipe finds the rendered signer: extracted keypoints against the renderer's truth.

The synthetic corpus knows where every joint is, so extraction quality is measured, not assumed:

- detection rate per part over the frames where the renderer says that part is visible: a hand
  (`hand_visible`), the pose (both shoulders in frame), the face (nose in frame, i.e. always);
  a part counts as detected when any of its joints is in the raw `mask` (interpolated frames
  are not detections). `false_detection_rate_hand` is the share of hidden hands reported anyway.
- PCK@a (percentage of correct keypoints): a detected joint is correct when it lies within
  a * reference length of the truth. Hand joints use the hand's size, taken as the longer side
  of the ground-truth bounding box of its 21 joints (the usual hand-PCK normaliser; it does not
  collapse when the hand is seen edge-on the way one bone length can). Arm joints (shoulders,
  elbows, wrists) use the ground-truth shoulder width. Only joints the renderer marks visible
  and MediaPipe detected are scored: PCK says how precise detections are, the detection rate
  says how many there are.
- hand swaps: a detected hand whose joints are on average closer to the other ground-truth hand
  than to its own (MediaPipe called the left hand right or vice versa), over frames where the
  hand was detected and at least one ground-truth hand is visible.

Coordinates: MediaPipe's x, y are fractions of the image's width and height measured from its
outer edge, so pixel i spans [i, i + 1) * 1/W and its centre is at (i + 0.5) / W; the renderer
puts pixel centres at integer coordinates (OpenCV's convention). Detections are therefore
converted as x * W - 0.5 (likewise y). The median signed errors (`bias_*_px`) are reported so
that a systematic offset, of either this convention or the drawn skeleton, would show.

Why hands are missed: every visible hand in every frame gets conditions from the ground truth
(`miss_conditions`): `fast_motion` (the hand's joints move at least FAST_MOTION hand sizes per
frame, so at 25 fps the hand is smeared), `face_overlap` / `hand_overlap` (its box overlaps the
face's box, or the other hand's, by at least OVERLAP of its area), `low_contrast` (the skin differs
from what is behind the hand by less than LOW_CONTRAST of the grey range). Reported per condition:
the detection rate among visible hands with it (`detection_rate_gt_hand_<condition>`, and `_clear`
for hands with none), and the share of all misses that had it (`miss_share_<condition>`; one miss
may have several, so these do not add up; `miss_share_unexplained` had none). Face box and contrast
come from the renderer; ground truth without them simply has fewer conditions.

Metric keys whose denominator is empty on the given corpus are left out rather than reported
as zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from signkd.data.manifest import Sample
from signkd.data.render import POSE_NAMES as GT_POSE_NAMES
from signkd.features.keypoints import FACE, LEFT_HAND, POSE, POSE_NAMES, RIGHT_HAND
from signkd.io import atomic_path, load_npz

HALF_PIXEL = 0.5  # MediaPipe's edge-based coordinates minus this = the renderer's centre-based ones
PCK_THRESHOLDS = (0.1, 0.2)
CURVE_THRESHOLDS = tuple(round(float(a), 3) for a in np.linspace(0.0, 0.5, 26))
ARM_JOINTS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
HANDS = (("left_hand", LEFT_HAND), ("right_hand", RIGHT_HAND))  # ground-truth hand 0, 1
FAST_MOTION = 0.2  # hand sizes per frame
OVERLAP = 0.2  # fraction of the hand's box
LOW_CONTRAST = 0.2  # fraction of the grey range
CONDITIONS = ("fast_motion", "face_overlap", "hand_overlap", "low_contrast")


def to_pixels(landmarks: np.ndarray, frame_size: np.ndarray) -> np.ndarray:
    """MediaPipe's normalised x, y (..., J, 3) -> pixels with centres at integers (..., J, 2)."""
    height, width = (float(v) for v in frame_size)
    return landmarks[..., :2] * np.array([width, height], np.float32) - HALF_PIXEL


class _Tally:
    """Running numerators/denominators and per-joint errors over all videos."""

    def __init__(self) -> None:
        self.counts: dict[str, list[float]] = {}
        self.errors: dict[str, list[np.ndarray]] = {"hand": [], "arm": [], "hand_interpolated": []}
        self.offsets: dict[str, list[np.ndarray]] = {"hand": [], "arm": []}

    def add(self, name: str, hits, total) -> None:
        pair = self.counts.setdefault(name, [0.0, 0.0])
        pair[0] += float(np.sum(hits))
        pair[1] += float(np.sum(total))

    def rate(self, name: str) -> float | None:
        hits, total = self.counts.get(name, (0.0, 0.0))
        return hits / total if total else None


def _box_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of box a's area (x0, y0, x1, y1 in the last axis) that box b covers."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = np.maximum((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]), 1e-6)
    return w * h / area


def miss_conditions(gt: dict) -> dict[str, np.ndarray]:
    """bool [T, 2] per condition in CONDITIONS (see the module docstring), from one video's truth."""
    joints = np.asarray(gt["hand_joints"], np.float64)  # [T, 2, 21, 2]
    boxes = np.concatenate([joints.min(axis=2), joints.max(axis=2)], axis=-1)  # [T, 2, 4]
    size = np.maximum((boxes[..., 2:] - boxes[..., :2]).max(axis=-1), 1e-6)
    if len(joints) > 1:
        step = np.linalg.norm(np.gradient(joints, axis=0), axis=-1).mean(axis=-1)  # px per frame
    else:
        step = np.zeros(joints.shape[:2])
    out = {"fast_motion": step / size >= FAST_MOTION,
           "hand_overlap": _box_overlap(boxes, boxes[:, ::-1]) >= OVERLAP}
    if "face_box" in gt:
        out["face_overlap"] = _box_overlap(boxes, np.asarray(gt["face_box"], np.float64)[:, None]) >= OVERLAP
    if "hand_contrast" in gt:
        out["low_contrast"] = np.asarray(gt["hand_contrast"]) < LOW_CONTRAST
    return {name: out[name] for name in CONDITIONS if name in out}


def _score_misses(detected: np.ndarray, visible: np.ndarray, gt: dict, tally: _Tally) -> None:
    """Detection per condition and the conditions of each miss; detected, visible: bool [T, 2]."""
    conditions = miss_conditions(gt)
    missed = visible & ~detected
    both = visible.all(axis=1)
    tally.add("detection_rate_gt_both_hands", detected.all(axis=1)[both], both)
    explained = np.zeros_like(missed)
    for name, cond in conditions.items():
        tally.add(f"detection_rate_gt_hand_{name}", detected[visible & cond], visible & cond)
        tally.add(f"miss_share_{name}", missed[cond], missed)
        explained |= cond
    clear = visible & ~explained
    tally.add("detection_rate_gt_hand_clear", detected[clear], clear)
    tally.add("miss_share_unexplained", missed[~explained], missed)


def _score_video(kp: dict, gt: dict, tally: _Tally) -> None:
    xy = to_pixels(kp["landmarks"], kp["frame_size"])
    mask = kp["mask"].astype(bool)
    interpolated = kp.get("interpolated", np.zeros_like(mask)).astype(bool)
    gt_hands, hand_visible, joint_visible = gt["hand_joints"], gt["hand_visible"], gt["hand_joint_visible"]
    pose_index = {name: GT_POSE_NAMES.index(name) for name in POSE_NAMES}
    pose_visible = gt["pose_visible"]

    shoulders = pose_visible[:, pose_index["left_shoulder"]] & pose_visible[:, pose_index["right_shoulder"]]
    tally.add("detection_rate_gt_pose", mask[shoulders, POSE].any(axis=1), shoulders)
    face_in_view = pose_visible[:, pose_index["nose"]]
    tally.add("detection_rate_gt_face", mask[face_in_view, FACE].any(axis=1), face_in_view)

    any_gt_hand = hand_visible.any(axis=1)
    _score_misses(np.stack([mask[:, part].any(axis=1) for _, part in HANDS], axis=1), hand_visible, gt, tally)
    for h, (name, part) in enumerate(HANDS):
        detected = mask[:, part].any(axis=1)
        visible = hand_visible[:, h]
        tally.add(f"detection_rate_gt_{name}", detected[visible], visible)
        tally.add("false_detection_rate_hand", detected[~visible], ~visible)

        own, other = gt_hands[:, h], gt_hands[:, 1 - h]
        points = xy[:, part]
        judged = detected & any_gt_hand
        own_dist = np.linalg.norm(points - own, axis=-1).mean(axis=1)
        other_dist = np.linalg.norm(points - other, axis=-1).mean(axis=1)
        tally.add("hand_swap_rate", (other_dist < own_dist)[judged], judged)

        size = (own.max(axis=1) - own.min(axis=1)).max(axis=1)  # longer bbox side, per frame
        error = np.linalg.norm(points - own, axis=-1) / np.maximum(size, 1e-6)[:, None]
        scored = visible[:, None] & joint_visible[:, h] & mask[:, part]
        tally.errors["hand"].append(error[scored])
        tally.offsets["hand"].append((points - own)[scored])
        filled = visible[:, None] & joint_visible[:, h] & interpolated[:, part]
        tally.errors["hand_interpolated"].append(error[filled])

    gt_shoulder_width = np.linalg.norm(gt["pose_joints"][:, pose_index["left_shoulder"]]
                                       - gt["pose_joints"][:, pose_index["right_shoulder"]], axis=-1)
    for name in ARM_JOINTS:
        j, g = POSE.start + POSE_NAMES.index(name), pose_index[name]
        visible = pose_visible[:, g]
        tally.add("detection_rate_gt_arm_joints", mask[visible, j], visible)
        scored = visible & mask[:, j]
        delta = xy[scored, j] - gt["pose_joints"][scored, g]
        tally.errors["arm"].append(np.linalg.norm(delta, axis=-1) / np.maximum(gt_shoulder_width[scored], 1e-6))
        tally.offsets["arm"].append(delta)


def pck_key(kind: str, alpha: float) -> str:
    """Metric name of PCK at `alpha`: pck01_hand for 0.1, pck02_arm for 0.2."""
    return f"pck{format(alpha, 'g').replace('.', '')}_{kind}"


def _pck(errors: np.ndarray, alpha: float) -> float:
    return float((errors <= alpha).mean())


def keypoint_accuracy(samples: list[Sample], keypoint_dir: str | Path, ground_truth_dir: str | Path) -> dict:
    """Accuracy of the extracted keypoints of `samples` against `ground_truth_dir/{id}.npz`.

    Returns flat float metrics (see the module docstring): detection_rate_gt_{pose, left_hand,
    right_hand, both_hands, face, arm_joints}, false_detection_rate_hand, hand_swap_rate,
    pck01_hand, pck02_hand, pck01_arm, pck02_arm, pck02_hand_interpolated, bias_{x,y}_px_{hand,arm},
    the miss attribution (detection_rate_gt_hand_<condition>, miss_share_<condition>),
    accuracy_videos; plus `pck_curve` (thresholds and hand/arm PCK lists) for the plot. Videos
    without both files are left out; an empty dict means none had both.
    """
    def pairs():
        for sample in samples:
            kp_path, gt_path = Path(keypoint_dir) / f"{sample.id}.npz", Path(ground_truth_dir) / f"{sample.id}.npz"
            if kp_path.is_file() and gt_path.is_file():
                yield sample.id, load_npz(kp_path), load_npz(gt_path)

    return accuracy_of(pairs())


def accuracy_of(videos: Iterable[tuple[str, dict, dict]]) -> dict:
    """`keypoint_accuracy` over in-memory (name, keypoint arrays, ground-truth arrays) triples."""
    tally = _Tally()
    count = 0
    for name, kp, gt in videos:
        if len(kp["mask"]) != len(gt["hand_visible"]):
            raise ValueError(f"video '{name}': {len(kp['mask'])} extracted frames but "
                             f"{len(gt['hand_visible'])} in the ground truth; re-run extraction")
        _score_video(kp, gt, tally)
        count += 1
    if not count:
        return {}

    stats: dict = {"accuracy_videos": float(count)}
    for name in sorted(tally.counts):
        value = tally.rate(name)
        if value is not None:
            stats[name] = round(value, 4)
    errors = {k: np.concatenate(v) if v else np.zeros(0) for k, v in tally.errors.items()}
    for kind in ("hand", "arm"):
        if errors[kind].size:
            for alpha in PCK_THRESHOLDS:
                stats[pck_key(kind, alpha)] = round(_pck(errors[kind], alpha), 4)
            offsets = np.concatenate(tally.offsets[kind])
            stats[f"bias_x_px_{kind}"] = round(float(np.median(offsets[:, 0])), 3)
            stats[f"bias_y_px_{kind}"] = round(float(np.median(offsets[:, 1])), 3)
    if errors["hand_interpolated"].size:
        stats[pck_key("hand_interpolated", 0.2)] = round(_pck(errors["hand_interpolated"], 0.2), 4)
    stats["pck_curve"] = {"threshold": list(CURVE_THRESHOLDS)} | {
        kind: [round(_pck(errors[kind], a), 4) for a in CURVE_THRESHOLDS]
        for kind in ("hand", "arm") if errors[kind].size}
    return stats


def plot_accuracy(stats: dict, path: str | Path, *, note: str = "") -> None:
    """PNG: detection rates against ground truth (bars) beside the hand and arm PCK curves.

    Empty `stats` (a dataset without ground truth) give a figure that says so, with `note`, so
    that the figure a pipeline declares always exists and never shows an older corpus's numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not stats:
        fig = plt.figure(figsize=(6, 1.6))
        fig.text(0.5, 0.5, "no ground-truth joints for these videos\n" + note, ha="center", va="center")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        return
    bars: list[tuple[str, Any]] = [(label, stats.get(key)) for label, key in (
        ("pose", "detection_rate_gt_pose"), ("left hand", "detection_rate_gt_left_hand"),
        ("right hand", "detection_rate_gt_right_hand"), ("both hands", "detection_rate_gt_both_hands"),
        ("face", "detection_rate_gt_face"), ("arm joints", "detection_rate_gt_arm_joints"),
        ("hidden hand reported", "false_detection_rate_hand"), ("hand swap", "hand_swap_rate"))]
    colours = [c for (_, value), c in zip(bars, ["tab:blue"] * 6 + ["tab:red"] * 2) if value is not None]
    bars = [(label, value) for label, value in bars if value is not None]
    fig, (left, right, why) = plt.subplots(1, 3, figsize=(16, 4.2))
    positions = np.arange(len(bars))
    left.bar(positions, [v for _, v in bars], color=colours)
    for x, (_, value) in zip(positions, bars):
        left.text(x, value + 0.02, f"{value:.2f}", ha="center", fontsize=8)
    left.set_xticks(positions, [label for label, _ in bars], fontsize=8, rotation=30, ha="right")
    left.set_ylim(0, 1.1)
    left.set_title("detection against renderer visibility")

    curve = stats.get("pck_curve", {})
    for kind, label in (("hand", "hand joints / hand size"), ("arm", "arm joints / shoulder width")):
        if kind in curve:
            marks = ", ".join(f"@{a:g}: {stats[pck_key(kind, a)]:.2f}" for a in PCK_THRESHOLDS)
            right.plot(curve["threshold"], curve[kind], marker=".", label=f"{label} ({marks})")
    for alpha in PCK_THRESHOLDS:
        right.axvline(alpha, color="grey", lw=0.6, ls=":")
    right.set_xlabel("threshold (fraction of reference length)")
    right.set_ylabel("PCK (detected, visible joints)")
    right.set_ylim(0, 1.02)
    right.legend(loc="lower right")
    right.set_title(f"PCK over {int(stats.get('accuracy_videos', 0))} videos")
    _plot_misses(why, stats)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _plot_misses(ax, stats: dict) -> None:
    """Grouped bars per condition: hands detected when it holds, and its share of all misses."""
    names = [c for c in (*CONDITIONS, "clear") if f"detection_rate_gt_hand_{c}" in stats]
    if not names:
        ax.set_axis_off()
        return
    x = np.arange(len(names))
    detected = [stats[f"detection_rate_gt_hand_{c}"] for c in names]
    share = [stats.get(f"miss_share_{c}", 0.0) for c in names]
    ax.bar(x - 0.2, detected, 0.4, label="hands detected when present", color="tab:blue")
    ax.bar(x + 0.2, share, 0.4, label="share of all misses", color="tab:orange")
    ax.set_xticks(x, [c.replace("_", " ") for c in names], fontsize=8, rotation=30, ha="right")
    ax.set_ylim(0, 1.1)
    ax.legend(loc="upper right", fontsize=8)
    unexplained = stats.get("miss_share_unexplained")
    note = "" if unexplained is None else f" ({unexplained:.0%} of misses: none)"
    ax.set_title("why visible hands are missed" + note)
