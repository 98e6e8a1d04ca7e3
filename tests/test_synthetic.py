"""The synthetic corpus: lexicon, grammar, renderer, on-disk layout, determinism, MediaPipe."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from signkd.data.grammar import grammar_glosses, sample_sentence
from signkd.data.render import (
    NUM_HAND_JOINTS,
    POSE_NAMES,
    Body,
    RenderParams,
    hand_model,
    make_signer,
    plan_motion,
    render_video,
)
from signkd.data.render.camera import exposure_instants
from signkd.data.render.signer import COARTICULATION_RANGE, SKIN_TONES, SPEED_RANGE
from signkd.data.signs import (
    HANDSHAPES,
    LEXICON,
    MINIMAL_PAIR_KINDS,
    Sign,
    differing_parameters,
    minimal_pairs,
    vocabulary,
)
from signkd.data.synthetic import (
    CSV_COLUMNS,
    SPLITS,
    annotation_path,
    frames_path,
    ground_truth_path,
    make_signers,
    render_corpus,
)
from signkd.features.accuracy import accuracy_of, miss_conditions
from signkd.io import load_npz

TINY = dict(num_train=2, num_dev=2, num_test=2, num_signers=2, min_signs=1, max_signs=2, height=130, width=105)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """The same tiny corpus rendered twice (in-process and by two worker processes), plus another seed."""
    root = tmp_path_factory.mktemp("synthetic")
    out = {}
    for key, seed, workers in (("a", 7, 1), ("b", 7, 2), ("other", 8, 1)):
        out[key] = root / key
        render_corpus(out[key], seed=seed, progress=False, workers=workers, **TINY)
    return out


# --- lexicon and grammar -----------------------------------------------------------------------


def test_minimal_pairs_differ_in_exactly_their_parameter():
    pairs = minimal_pairs()
    assert set(pairs) == set(MINIMAL_PAIR_KINDS)
    for kind, kind_pairs in pairs.items():
        assert kind_pairs, f"the lexicon has no {kind} minimal pair"
        for a, b in kind_pairs:
            assert differing_parameters(LEXICON[a], LEXICON[b]) == (kind,)


def test_handshape_pairs_are_visible_in_finger_joints():
    for a, b in minimal_pairs()["handshape"]:
        ja = hand_model(HANDSHAPES[LEXICON[a].handshape].vector()).joints
        jb = hand_model(HANDSHAPES[LEXICON[b].handshape].vector()).joints
        assert np.linalg.norm(ja - jb, axis=1).mean() > 0.05, (a, b)


def test_sign_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="handshape"):
        Sign("X", "no_such_shape", "up_front", "neutral", "hold")
    with pytest.raises(ValueError, match="other_hand"):
        Sign("X", "flat", "up_front", "other_hand", "hold")


def test_grammar_lengths_vocabulary_and_determinism():
    assert grammar_glosses() <= set(LEXICON)
    draws = [sample_sentence(np.random.default_rng(3), 2, 5) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    for _ in range(300):
        s = sample_sentence(rng, 2, 5)
        assert 2 <= len(s.glosses) <= 5
        assert set(s.glosses) <= set(LEXICON)
        assert s.translation and s.translation == s.translation.strip()
    fixed = [sample_sentence(rng, 3, 3) for _ in range(50)]
    assert {len(s.glosses) for s in fixed} == {3}


@pytest.mark.parametrize("lo,hi", [(0, 3), (4, 2)])
def test_grammar_rejects_bad_lengths(lo, hi):
    with pytest.raises(ValueError):
        sample_sentence(np.random.default_rng(0), lo, hi)


# --- renderer ----------------------------------------------------------------------------------


def test_render_video_ground_truth():
    signer = make_signer(0, np.random.default_rng(1))
    video = render_video(("HEUTE", "REGEN"), signer, np.random.default_rng(2), RenderParams(occlusion_prob=0.0))
    T = len(video.frames)
    assert video.frames[0].shape == (260, 210, 3) and video.frames[0].dtype == np.uint8
    assert video.hand_joints.shape == (T, 2, NUM_HAND_JOINTS, 2)
    assert video.pose_joints.shape == (T, len(POSE_NAMES), 2)
    assert video.hand_visible.all()
    spans = video.gloss_spans
    assert spans.shape == (2, 2) and 0 < spans[0, 0] < spans[0, 1] < spans[1, 0] < spans[1, 1] < T
    # unmirrored camera: the signer's left hand (index 0) and left shoulder are on the image's right
    assert (video.hand_joints[:, 0, 0, 0] > video.hand_joints[:, 1, 0, 0]).all()
    left, right = POSE_NAMES.index("left_shoulder"), POSE_NAMES.index("right_shoulder")
    assert (video.pose_joints[:, left, 0] > video.pose_joints[:, right, 0]).all()


def test_render_video_rejects_unknown_gloss():
    with pytest.raises(ValueError, match="NOT_A_SIGN"):
        render_video(("NOT_A_SIGN",), make_signer(0, np.random.default_rng(0)), np.random.default_rng(0))


# --- realism: timing, coarticulation, camera ---------------------------------------------------

CLEAN = dict(occlusion_prob=0.0, noise_sigma=(0.0, 0.0), blur_sigma=(0.0, 0.0), jpeg_quality=(0, 0))


def _sharpness(image: np.ndarray, joints: np.ndarray) -> float:
    """Mean absolute Laplacian inside a hand's box: edges and finger gaps, which motion blur smears."""
    x0, y0 = np.floor(joints.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(joints.max(axis=0)).astype(int) + 4
    grey = cv2.cvtColor(image[max(y0, 0) : y1, max(x0, 0) : x1], cv2.COLOR_BGR2GRAY)
    return float(np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)).mean())


def test_signers_sign_faster_than_the_citation_form_and_coarticulate():
    signers = [make_signer(i, np.random.default_rng(i)) for i in range(20)]
    assert all(SPEED_RANGE[0] <= s.speed <= SPEED_RANGE[1] and s.speed > 1 for s in signers)
    assert all(COARTICULATION_RANGE[0] <= s.coarticulation <= COARTICULATION_RANGE[1] for s in signers)
    base = signers[0]
    glosses = ["MORGEN", "WARM"]  # chin, then chest: the second sign is pulled up toward the chin
    plans = {c: plan_motion(glosses, replace(base, coarticulation=c, speed=1.5), np.random.default_rng(4))
             for c in (0.0, 1.0)}
    spans = plans[0.0].gloss_spans
    assert np.array_equal(spans, plans[1.0].gloss_spans)  # same timing, only the form changes
    second_y = {c: p.states[spans[1, 0] : spans[1, 1], 0, 1].mean() for c, p in plans.items()}
    first_end_y = plans[0.0].states[spans[0, 1] - 1, 0, 1]
    assert abs(second_y[1.0] - first_end_y) < abs(second_y[0.0] - first_end_y) - 0.05 * Body.of(base).hand_length
    slow = plan_motion(glosses, replace(base, speed=1.0), np.random.default_rng(4))
    assert len(slow.states) > len(plan_motion(glosses, replace(base, speed=1.8), np.random.default_rng(4)).states)


def test_exposure_instants_follow_the_travel_and_pair_up_when_interlaced():
    params = RenderParams()
    assert exposure_instants(0.0, params, False) == [0.0]
    counts = [len(exposure_instants(px, params, False)) for px in (2.0, 7.0, 14.0, 200.0)]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == params.max_substeps
    instants = exposure_instants(7.0, params, True)
    assert len(instants) % 2 == 0 and min(instants) >= -0.5 and max(instants) <= 0.5
    assert exposure_instants(50.0, RenderParams(exposure=0.0), True) == [0.0]


def test_motion_blur_smears_moving_hands_and_leaves_still_frames_sharp():
    signer = make_signer(0, np.random.default_rng(1))
    glosses = ("NORD", "REGEN")
    sharp = render_video(glosses, signer, np.random.default_rng(2), RenderParams(exposure=0.0, **CLEAN))
    blurred = render_video(glosses, signer, np.random.default_rng(2), RenderParams(interlace_prob=0.0, **CLEAN))
    assert np.array_equal(sharp.hand_joints, blurred.hand_joints)  # truth: the middle of the exposure
    instants = blurred.extra["exposure_instants"]
    still = np.flatnonzero(instants == 1)
    assert len(still) and all(np.array_equal(sharp.frames[t], blurred.frames[t]) for t in still)
    speed = np.linalg.norm(np.gradient(blurred.hand_joints, axis=0), axis=-1).mean(axis=-1)  # [T, 2] px/frame
    fastest = np.argsort(speed.max(axis=1))[-4:]
    for t in fastest:
        h = int(speed[t].argmax())
        joints = blurred.hand_joints[t, h]
        ratio = _sharpness(blurred.frames[t], joints) / _sharpness(sharp.frames[t], joints)
        assert ratio < 0.75, (t, ratio)


def test_interlacing_combs_moving_hands_and_jpeg_compresses():
    signer = make_signer(0, np.random.default_rng(1))
    glosses = ("REGEN",)
    videos = {il: render_video(glosses, signer, np.random.default_rng(3), RenderParams(interlace_prob=il, **CLEAN))
              for il in (0.0, 1.0)}
    assert videos[1.0].extra["interlaced"] and not videos[0.0].extra["interlaced"]
    speed = np.linalg.norm(np.gradient(videos[1.0].hand_joints, axis=0), axis=-1).mean(axis=-1).max(axis=1)
    t = int(speed.argmax())

    def combing(frame: np.ndarray) -> float:  # row-to-row difference, high where the two fields disagree
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return float(np.abs(np.diff(grey, axis=0)).mean())

    assert combing(videos[1.0].frames[t]) > 1.2 * combing(videos[0.0].frames[t])
    compressed = render_video(glosses, signer, np.random.default_rng(3),
                              RenderParams(**{**CLEAN, "interlace_prob": 0.0, "jpeg_quality": (30, 30)}))
    assert compressed.extra["jpeg_quality"] == 30
    diff = np.abs(np.stack(compressed.frames).astype(int) - np.stack(videos[0.0].frames)).mean()
    assert 0.2 < diff < 6.0  # artefacts, not a different picture


def test_ground_truth_marks_hands_over_the_face_crossing_hands_and_contrast():
    signer = replace(make_signer(0, np.random.default_rng(1)), skin=SKIN_TONES[0], left_handed=False)
    video = render_video(("NEBEL", "NACHT"), signer, np.random.default_rng(2), RenderParams(occlusion_prob=0.0))
    gt = {k: getattr(video, k) for k in ("hand_joints", "face_box", "hand_contrast")}
    conditions = miss_conditions(gt)
    (a, b), (c, d) = video.gloss_spans
    assert conditions["face_overlap"][a:b, 1].mean() > 0.8  # NEBEL: the right (dominant) hand before the face
    assert not conditions["face_overlap"][:, 0].any()
    assert conditions["hand_overlap"][c : d + 2].any(axis=1).sum() >= 2  # NACHT: the hands cross
    assert not conditions["hand_overlap"][a:b].any()
    assert ((0 <= video.hand_contrast) & (video.hand_contrast <= 1)).all()
    # light skin: little contrast against the face, much against the dark studio clothing at rest
    assert video.hand_contrast[a:b, 1].mean() < 0.5 * video.hand_contrast[:2, 1].mean()


# --- corpus on disk ----------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="|")
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


def test_corpus_layout_and_ground_truth(corpora):
    root = corpora["a"]
    meta = json.loads((root / "corpus.json").read_text(encoding="utf-8"))
    assert meta["vocabulary"] == sorted(meta["vocabulary"]) == vocabulary()
    assert set(meta["minimal_pairs"]) == set(MINIMAL_PAIR_KINDS)
    assert [s["id"] for s in meta["signers"]] == ["Signer01", "Signer02"]
    header = annotation_path(root, "train").read_text(encoding="utf-8").splitlines()[0]
    assert header == "name|video|start|end|speaker|orth|translation"
    for split in SPLITS:
        rows = _read_csv(annotation_path(root, split))
        assert len(rows) == TINY[f"num_{split}"] == meta["splits"][split]["videos"]
        assert {r["speaker"] for r in rows} == {"Signer01", "Signer02"}  # every signer in every split
        for row in rows:
            assert row["video"] == f"{row['name']}/1/*.png"
            assert row["start"] == row["end"] == "-1"
            glosses = row["orth"].split()
            assert 1 <= len(glosses) <= 2 and set(glosses) <= set(LEXICON) and row["translation"]
            pngs = sorted(frames_path(root, split, row["name"]).glob("images*.png"))
            assert pngs[0].name == "images0001.png"
            assert cv2.imread(str(pngs[0])).shape == (130, 105, 3)
            gt = load_npz(ground_truth_path(root, row["name"]))
            T = len(pngs)
            assert gt["hand_joints"].shape == (T, 2, 21, 2) and gt["hand_joints"].dtype == np.float32
            assert gt["hand_visible"].shape == (T, 2) and gt["hand_visible"].dtype == bool
            assert gt["pose_joints"].shape == (T, len(POSE_NAMES), 2) and gt["pose_joints"].dtype == np.float32
            assert gt["gloss_spans"].shape == (len(glosses), 2) and gt["gloss_spans"].dtype == np.int32
            vis = gt["hand_joint_visible"]
            xy = gt["hand_joints"][vis]
            assert (xy >= 0).all() and (xy[:, 0] < 105).all() and (xy[:, 1] < 130).all()
    assert (root / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px").is_dir()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".png", ".csv", ".json")
    }


def test_same_seed_gives_identical_bytes(corpora):
    a, b = _files(corpora["a"]), _files(corpora["b"])
    assert a.keys() == b.keys() and any(k.endswith(".png") for k in a)
    assert a == b  # also across worker counts
    for name in (p.name for p in (corpora["a"] / "ground_truth").glob("*.npz")):
        ga, gb = load_npz(corpora["a"] / "ground_truth" / name), load_npz(corpora["b"] / "ground_truth" / name)
        assert all(np.array_equal(ga[k], gb[k]) for k in ga)
    other = _files(corpora["other"])
    assert other != a


@pytest.mark.parametrize(
    "override,message",
    [
        ({"min_signs": 3, "max_signs": 2}, "min_signs"),
        ({"num_train": 0}, "num_train"),
        ({"num_dev": -1}, "num_dev"),
        ({"num_signers": 0}, "num_signers"),
        ({"min_signs": 0}, "min_signs"),
        ({"height": 20}, "too small"),
        ({"num_test": 1.5}, "num_test"),
        ({"seed": -1}, "seed"),
    ],
)
def test_render_corpus_rejects_bad_arguments(tmp_path, override, message):
    kwargs = {"seed": 0, **TINY, **override}
    with pytest.raises(ValueError, match=message):
        render_corpus(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


# --- MediaPipe sees the signer ----------------------------------------------------------------


def test_mediapipe_finds_still_clear_hands_and_loses_fast_ones():
    """Real MediaPipe Holistic, as the keypoint stage runs it: hands that are still and clear must
    stay detectable, while hands smeared by fast motion are lost about as often as in broadcast video."""
    pytest.importorskip("mediapipe")
    from signkd.features.keypoints import KeypointExtractor

    signers = make_signers(1234, 2)
    triples = []
    for k, glosses in enumerate((("NORD", "WOLKE", "STARK"), ("ABEND", "REGEN", "WIND"))):
        video = render_video(glosses, signers[k], np.random.default_rng([7, k]))
        landmarks, mask = KeypointExtractor().extract(video.frames)
        gt = {key: getattr(video, key) for key in ("hand_joints", "hand_joint_visible", "hand_visible",
                                                    "pose_joints", "pose_visible", "face_box", "hand_contrast")}
        kp = {"landmarks": landmarks, "mask": mask, "frame_size": np.array(video.frames[0].shape[:2])}
        triples.append((str(k), kp, gt))
    stats = accuracy_of(triples)
    assert stats["detection_rate_gt_pose"] >= 0.9
    assert stats["detection_rate_gt_hand_clear"] >= 0.9, stats
    assert stats["detection_rate_gt_hand_fast_motion"] <= 0.8, stats
    assert stats["pck02_hand"] >= 0.8  # what is detected is where the hand is


# --- split modes -------------------------------------------------------------------------------


def _signers_per_split(root: Path) -> dict[str, set[str]]:
    return {split: {r["speaker"] for r in _read_csv(annotation_path(root, split))} for split in SPLITS}


def test_multi_signer_puts_every_signer_in_every_split(corpora):
    meta = json.loads((corpora["a"] / "corpus.json").read_text(encoding="utf-8"))
    assert meta["split_mode"] == "multi_signer" and meta["held_out_signer"] is None
    assert _signers_per_split(corpora["a"]) == {split: {"Signer01", "Signer02"} for split in SPLITS}


def test_signer_independent_holds_one_signer_out_of_train(tmp_path, corpora):
    sizes = {**TINY, "num_train": 4, "num_signers": 3}
    roots = {}
    for key, test_signer in (("last", None), ("last_again", None), ("first", 1)):
        roots[key] = tmp_path / key
        render_corpus(roots[key], seed=7, progress=False, workers=1, split_mode="signer_independent",
                      test_signer=test_signer, **sizes)
    assert _signers_per_split(roots["last"]) == {
        "train": {"Signer01", "Signer02"}, "dev": {"Signer03"}, "test": {"Signer03"}}
    assert _signers_per_split(roots["first"]) == {
        "train": {"Signer02", "Signer03"}, "dev": {"Signer01"}, "test": {"Signer01"}}
    meta = json.loads((roots["last"] / "corpus.json").read_text(encoding="utf-8"))
    assert meta["split_mode"] == "signer_independent" and meta["held_out_signer"] == "Signer03"
    assert {split: set(meta["splits"][split]["signers"]) for split in SPLITS} == _signers_per_split(roots["last"])
    assert _files(roots["last"]) == _files(roots["last_again"])  # still deterministic
    # the mode changes who signs, not what is signed
    for split in ("dev", "test"):
        orth = [r["orth"] for r in _read_csv(annotation_path(roots["last"], split))]
        assert orth == [r["orth"] for r in _read_csv(annotation_path(corpora["a"], split))]


@pytest.mark.parametrize(
    "override,message",
    [
        ({"split_mode": "per_signer"}, "split_mode must be one of"),
        ({"split_mode": "signer_independent", "num_signers": 1}, "num_signers >= 2"),
        ({"split_mode": "signer_independent", "test_signer": 0}, "test_signer must be a signer number from 1 to"),
        ({"split_mode": "signer_independent", "test_signer": 3}, "test_signer must be a signer number from 1 to"),
        ({"split_mode": "signer_independent", "test_signer": True}, "test_signer"),
        ({"test_signer": 1}, "only used with split_mode 'signer_independent'"),
    ],
)
def test_render_corpus_rejects_bad_split_arguments(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        render_corpus(tmp_path / "out", seed=0, progress=False, **{**TINY, **override})
    assert not (tmp_path / "out").exists()
