"""A readable account of the prepared corpus: statistics, the lexicon at a glance, one sentence.

The numbers come from the manifests, so they describe exactly what training reads, for real
and synthetic data alike. The pictures need the renderer (corpus.json and the ground-truth gloss
boundaries), so only the synthetic corpus gets them: a contact sheet with one key frame per
sign, which makes the minimal pairs visible, and an animated sentence labelled with the gloss
being signed in each frame.

    out_dir/stats.json  README.md  contact_sheet.png  sentence.gif (the last two: synthetic only)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from PIL import Image

from signkd.data.manifest import SPLITS, Sample, read_all, read_vocab
from signkd.data.phoenix import IMAGE_SUFFIXES
from signkd.data.render import RenderParams, Signer, render_video
from signkd.data.synthetic import ground_truth_path
from signkd.io import atomic_path, load_npz, write_json, write_text

STATS_FILE, README_FILE = "stats.json", "README.md"
CONTACT_SHEET, SENTENCE_GIF = "contact_sheet.png", "sentence.gif"
PICTURES = (CONTACT_SHEET, SENTENCE_GIF)

SHEET_COLUMNS, SHEET_GAP, SHEET_TITLE_HEIGHT, SHEET_BACKGROUND = 6, 6, 36, 235
TILE_WIDTH = 210  # tiles and GIF frames are scaled to at least this width, so labels stay legible
GIF_WIDTH = 320
GIF_COLOURS = 128
README_MAX_GLOSSES = 60  # larger vocabularies (real data) list only the most frequent in README.md
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK, _GREY, _FAINT, _RED, _WHITE = (20, 20, 20), (110, 110, 110), (150, 150, 150), (0, 0, 220), (255, 255, 255)
_LABEL_COLOURS = (_INK, _GREY, _FAINT, _RED, _WHITE)
_NONDOMINANT_LABEL = {"mirror": ", both hands", "base": ", on the other hand"}
_PAIR_ABBREV = {"handshape": "hand", "movement": "mov", "location": "loc"}  # as in the tile labels


# --- statistics --------------------------------------------------------------------------------


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "mean": round(float(np.mean(values)), 2), "max": max(values)}


def corpus_stats(splits: dict[str, list[Sample]], vocab: list[str], corpus: dict | None, dataset: str = "") -> dict:
    """Everything stats.json holds; `corpus` is the synthetic corpus.json, None for real data."""
    known = set(vocab)
    train_signers = {s.signer for s in splits["train"]}
    stats: dict = {
        "dataset": corpus["dataset"] if corpus else dataset,
        "split_mode": corpus.get("split_mode", "multi_signer") if corpus else None,
        "held_out_signer": corpus.get("held_out_signer") if corpus else None,
        "vocab_size": len(vocab),
        "glosses": list(vocab),
        "videos": {split: len(splits[split]) for split in SPLITS},
        "sentence_length": {},
        "frames_per_video": {},
        "signers": {split: dict(sorted(Counter(s.signer for s in splits[split]).items())) for split in SPLITS},
        "signers_unseen_in_train": {},
        "gloss_frequency": {},
        "oov": {},
        "minimal_pairs": corpus["minimal_pairs"] if corpus else {},
    }
    for split in SPLITS:
        lengths, frames = [len(s.glosses) for s in splits[split]], [s.num_frames for s in splits[split]]
        stats["sentence_length"][split] = {**_summary(lengths), "total": sum(lengths)}
        stats["frames_per_video"][split] = {**_summary(frames), "total": sum(frames)}
        stats["gloss_frequency"][split] = dict(sorted(Counter(g for s in splits[split] for g in s.glosses).items()))
        if split != "train":
            stats["signers_unseen_in_train"][split] = sorted(set(stats["signers"][split]) - train_signers)
            oov = Counter(g for s in splits[split] for g in s.glosses if g not in known)
            stats["oov"][split] = {"tokens": sum(oov.values()), "types": sorted(oov)}
    if corpus:
        lexicon = corpus["vocabulary"]
        stats["lexicon_size"] = len(lexicon)
        stats["lexicon_unseen_in_train"] = sorted(set(lexicon) - known)
    return stats


def report_metrics(stats: dict) -> dict:
    """A few flat headline numbers for the stage's metrics.json (pooled over all splits)."""
    glosses = sum(stats["sentence_length"][split]["total"] for split in SPLITS)
    frames = sum(stats["frames_per_video"][split]["total"] for split in SPLITS)
    videos = sum(stats["videos"].values())
    out = {
        "vocab_size": stats["vocab_size"],
        "mean_sentence_length": round(glosses / max(videos, 1), 2),
        "mean_frames_per_video": round(frames / max(videos, 1), 2),
        "num_signers": len({sig for split in SPLITS for sig in stats["signers"][split]}),
    }
    for split in SPLITS:  # gloss tokens per split: what a WER's resolution depends on (1 error = 100/tokens %)
        out[f"{split}_tokens"] = stats["sentence_length"][split]["total"]
    if stats["split_mode"]:
        out["split_mode"] = stats["split_mode"]
    if "lexicon_size" in stats:
        out["lexicon_size"] = stats["lexicon_size"]
    for kind, pairs in stats["minimal_pairs"].items():
        out[f"minimal_pairs_{kind}"] = len(pairs)
    return out


# --- README ------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def readme_text(stats: dict, pictures: list[str]) -> str:
    """stats.json as Markdown tables, with the pictures that were written."""
    parts = [f"# Corpus: {stats['dataset'] or 'dataset'}", ""]
    if stats["split_mode"]:
        held = f", held-out signer {stats['held_out_signer']}" if stats["held_out_signer"] else ""
        parts += [f"Split mode: **{stats['split_mode']}**{held}.", ""]
    vocab_line = f"Train vocabulary: **{stats['vocab_size']}** glosses"
    if "lexicon_size" in stats:
        unseen_glosses = ", ".join(f"`{g}`" for g in stats["lexicon_unseen_in_train"]) or "none"
        vocab_line += f" (lexicon: {stats['lexicon_size']}; lexicon glosses absent from train: {unseen_glosses})"
    parts += [vocab_line + ".", "", "## Splits", ""]
    rows = []
    for split in SPLITS:
        ln, fr = stats["sentence_length"][split], stats["frames_per_video"][split]
        oov = stats["oov"].get(split)
        rows.append([
            split, stats["videos"][split], f"{ln['min']} / {ln['mean']} / {ln['max']}",
            f"{fr['min']} / {fr['mean']} / {fr['max']}", fr["total"],
            ", ".join(f"{k} ({v})" for k, v in stats["signers"][split].items()),
            "-" if oov is None else f"{oov['tokens']} tokens, {len(oov['types'])} types",
        ])
    parts += [_table(["split", "videos", "glosses/sentence min/mean/max", "frames/video min/mean/max", "frames",
                      "signers (videos)", "OOV vs train"], rows), ""]
    unseen = {s: v for s, v in stats["signers_unseen_in_train"].items() if v}
    if unseen:
        parts += ["Signers never seen in train: " + "; ".join(f"{s}: {', '.join(v)}" for s, v in unseen.items()), ""]
    if stats["minimal_pairs"]:
        parts += ["## Minimal pairs", "", "Glosses that differ in exactly one phonological parameter.", ""]
        rows = [[kind, ", ".join(f"`{a}` / `{b}`" for a, b in pairs) or "-"]
                for kind, pairs in stats["minimal_pairs"].items()]
        parts += [_table(["differ in", "pairs"], rows), ""]
    freq = stats["gloss_frequency"]
    glosses = sorted({g for split in SPLITS for g in freq[split]}, key=lambda g: (-freq["train"].get(g, 0), g))
    title = "## Gloss frequency"
    if len(glosses) > README_MAX_GLOSSES:
        title += f" (the {README_MAX_GLOSSES} most frequent in train of {len(glosses)}; all in {STATS_FILE})"
        glosses = glosses[:README_MAX_GLOSSES]
    rows = [[f"`{g}`", *(freq[split].get(g, 0) for split in SPLITS)] for g in glosses]
    parts += [title, "", _table(["gloss", *SPLITS], rows), ""]
    if CONTACT_SHEET in pictures:
        parts += ["## Lexicon", "", "The middle frame of every sign, signed by one signer; the yellow line is the",
                  "path of the dominant hand over the sign, ending in the arrow, and the inset enlarges that hand.",
                  "Drawn without the camera's degradations (motion blur, interlacing, JPEG), which the corpus has.",
                  "", f"![contact sheet]({CONTACT_SHEET})", ""]
    if SENTENCE_GIF in pictures:
        parts += ["## A test sentence", "", "The first test video as the corpus stores it (fast hands smear over one",
                  "frame of exposure; some videos are interlaced; all are JPEG-compressed), labelled with the",
                  "ground-truth gloss of each frame.", "", f"![sentence]({SENTENCE_GIF})", ""]
    return "\n".join(parts)


# --- pictures ----------------------------------------------------------------------------------


def _signer_from(description: dict) -> Signer:
    """A Signer back from its corpus.json form (JSON turns its colour tuples into lists)."""
    return Signer(**cast("dict[str, Any]", {k: tuple(v) if isinstance(v, list) else v for k, v in description.items()}))


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, thickness: int = 1) -> None:
    cv2.putText(img, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] == width:
        return img
    height = round(img.shape[0] * width / img.shape[1])
    interp = cv2.INTER_CUBIC if width > img.shape[1] else cv2.INTER_AREA
    return cv2.resize(img, (width, height), interpolation=interp)


def _pair_partners(minimal_pairs: dict) -> dict[str, list[str]]:
    partners: dict[str, list[str]] = {}
    for kind, pairs in minimal_pairs.items():
        for a, b in pairs:
            partners.setdefault(a, []).append(f"{b}/{_PAIR_ABBREV.get(kind, kind)}")
            partners.setdefault(b, []).append(f"{a}/{_PAIR_ABBREV.get(kind, kind)}")
    return partners


def _wrap(words: list[str], prefix: str, scale: float, width: int) -> list[str]:
    """Greedy word wrap for cv2.putText, which draws one line only; continuation lines are indented."""
    lines, line = [], prefix
    for k, word in enumerate(words):
        candidate = f"{line} {word}"
        if k and cv2.getTextSize(candidate, _FONT, scale, 1)[0][0] > width:
            lines.append(line)
            candidate = " " * (len(prefix) + 1) + word
        line = candidate
    return lines + [line]


def _hand_inset(frame: np.ndarray, joints: np.ndarray, size: int) -> np.ndarray:
    """The dominant hand cut out and enlarged: handshape pairs are a few pixels apart otherwise."""
    centre = (joints.min(axis=0) + joints.max(axis=0)) / 2
    half = max(float(np.ptp(joints, axis=0).max()) / 2 + 5, 8.0)
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    pad = max(0, -x0, -y0, x1 - frame.shape[1], y1 - frame.shape[0])
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    inset = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(inset, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def _sign_tile(gloss: str, form: dict, partners: list[str], signer: Signer, params: RenderParams,
               seed: tuple[int, int]) -> np.ndarray:
    """The middle frame of `gloss` signed alone: the dominant hand's path drawn over it, the hand
    enlarged in a corner, and a label band with the sign's parameters and minimal-pair partners."""
    video = render_video((gloss,), signer, np.random.default_rng(seed), params)
    start, end = (int(v) for v in video.gloss_spans[0])
    mid = (start + end) // 2
    dominant = 0 if signer.left_handed else 1  # hand 0 is the signer's left
    inset = _hand_inset(video.frames[mid], video.hand_joints[mid, dominant], TILE_WIDTH * 2 // 5)
    scale = TILE_WIDTH / video.frames[mid].shape[1]
    frame = _fit_width(video.frames[mid], TILE_WIDTH)
    path = np.round(video.hand_joints[start:end, dominant, 9] * scale).astype(np.int32)  # middle knuckle
    trail = frame.copy()
    cv2.polylines(trail, [path.reshape(-1, 1, 2)], False, (0, 230, 255), 2, cv2.LINE_AA)
    tail = path[max(0, len(path) - 3)]
    if np.linalg.norm(path[-1] - tail) >= 2:
        cv2.arrowedLine(trail, tuple(map(int, tail)), tuple(map(int, path[-1])), (0, 230, 255), 2, cv2.LINE_AA,
                        tipLength=0.6)
    frame = cv2.addWeighted(trail, 0.75, frame, 0.25, 0)  # the hand stays visible under the path
    hand_x = float(video.hand_joints[mid, dominant, :, 0].mean()) * scale
    x = 3 if hand_x > TILE_WIDTH / 2 else TILE_WIDTH - inset.shape[1] - 3  # the corner away from the hand
    frame[3 : 3 + inset.shape[0], x : x + inset.shape[1]] = inset
    extra = _NONDOMINANT_LABEL.get(form.get("nondominant", "none"), "")
    lines = [f"hand: {form['handshape']}{extra}", f"loc: {form['location']}", f"mov: {form['movement']}"]
    pair_lines = _wrap(partners, "pair:", 0.42, TILE_WIDTH - 10) if partners else []
    band = np.full((30 + 17 * (len(lines) + len(pair_lines)) + 6, TILE_WIDTH, 3), 255, np.uint8)
    _text(band, gloss, (6, 22), 0.65, _INK, 2)
    for k, line in enumerate(lines + pair_lines):
        _text(band, line, (6, 42 + 17 * k), 0.42, (0, 90, 200) if k >= len(lines) else (60, 60, 60))
    return np.vstack([frame, band])


def contact_sheet(corpus: dict) -> np.ndarray:
    """One key frame per lexicon sign (alphabetical, in a grid), signed by the corpus's first signer."""
    signs = corpus["lexicon"]["signs"]
    signer = _signer_from(corpus["signers"][0])
    p = corpus["params"]
    # the lexicon as the signs are meant, not as the camera degrades them: no occluding card, no
    # sensor noise (it only bloats the PNG), no motion blur, interlacing or JPEG artefacts
    params = RenderParams(height=p["height"], width=p["width"], occlusion_prob=0.0, noise_sigma=(0.0, 0.0),
                          exposure=0.0, interlace_prob=0.0, jpeg_quality=(0, 0))
    partners = _pair_partners(corpus["minimal_pairs"])
    tiles = [_sign_tile(g, signs[g], partners.get(g, []), signer, params, (corpus["seed"], k))
             for k, g in enumerate(sorted(signs))]
    tile_h = max(t.shape[0] for t in tiles)
    tiles = [np.vstack([t, np.full((tile_h - t.shape[0], TILE_WIDTH, 3), 255, np.uint8)]) for t in tiles]
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    gap, title_h = SHEET_GAP, SHEET_TITLE_HEIGHT
    sheet = np.full((title_h + rows * (tile_h + gap), cols * (TILE_WIDTH + gap) + gap, 3), SHEET_BACKGROUND, np.uint8)
    _text(sheet, f"Lexicon: {len(tiles)} signs by {signer.id}, middle frame of each. Yellow: path of the dominant "
          "hand (arrow = end). Inset: the dominant hand enlarged.", (gap, 24), 0.55, _INK, 1)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = title_h + r * (tile_h + gap), gap + c * (TILE_WIDTH + gap)
        sheet[y : y + tile_h, x : x + TILE_WIDTH] = tile
    return sheet


def _frame_files(frames_dir: str | Path) -> list[Path]:
    files = sorted(p for p in Path(frames_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no frames in {frames_dir}; run the prepare stage again")
    return files


def sentence_frames(sample: Sample, spans: np.ndarray) -> list[np.ndarray]:
    """RGB frames of one video with the sentence on top (current gloss highlighted) and the
    current gloss in large type below; frames between signs show '-'."""
    out = []
    files = _frame_files(sample.frames_dir)
    for t, path in enumerate(files):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"could not read frame {path}")
        # a 3x3 median removes the sensor noise, which would otherwise triple the GIF's size
        image = _fit_width(cv2.medianBlur(image, 3), GIF_WIDTH)
        current = next((k for k, (a, b) in enumerate(spans) if a <= t < b), None)
        top = _sentence_band(sample.glosses, current)
        bottom = np.full((44, GIF_WIDTH, 3), 255, np.uint8)
        label = sample.glosses[current] if current is not None else "-"
        (w, _), _ = cv2.getTextSize(label, _FONT, 0.9, 2)
        _text(bottom, label, ((GIF_WIDTH - w) // 2, 32), 0.9, _INK if current is not None else _FAINT, 2)
        _text(bottom, f"{t + 1}/{len(files)}", (GIF_WIDTH - 52, 40), 0.35, _GREY)
        out.append(cv2.cvtColor(np.vstack([top, image, bottom]), cv2.COLOR_BGR2RGB))
    return out


def _sentence_band(glosses: tuple[str, ...], current: int | None) -> np.ndarray:
    """The gloss sentence word-wrapped to the GIF width; the word being signed in red."""
    scale, space, line_h, margin = 0.6, 10, 24, 6
    placed, x, y = [], margin, 0
    for k, gloss in enumerate(glosses):
        (w, _), _ = cv2.getTextSize(gloss, _FONT, scale, 2)
        if x > margin and x + w > GIF_WIDTH - margin:
            x, y = margin, y + 1
        placed.append((k, gloss, x, y))
        x += w + space
    band = np.full((line_h * (y + 1) + 10, GIF_WIDTH, 3), 255, np.uint8)
    for k, gloss, x, row in placed:
        colour, thick = (_RED, 2) if k == current else (_GREY, 1)
        _text(band, gloss, (x, 23 + row * line_h), scale, colour, thick)
    return band


# --- writing -----------------------------------------------------------------------------------


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """One palette for the whole clip (no flicker between frames), no dithering (smaller file); the
    label colours get palette entries of their own, or the few red pixels would be merged away."""
    sample = np.vstack(frames[:: max(1, len(frames) // 8)])
    photo = Image.fromarray(sample).quantize(colors=GIF_COLOURS - len(_LABEL_COLOURS), method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.NONE)
    entries = cast("list[int]", photo.getpalette())[: 3 * (GIF_COLOURS - len(_LABEL_COLOURS))]  # quantized: has one
    entries += [c for bgr in _LABEL_COLOURS for c in bgr[::-1]]
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries + entries[:3] * (256 - len(entries) // 3))  # unused slots repeat entry 0
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def write_corpus_report(raw_root: Path, manifest_dir: Path, out_dir: Path, *, dataset: str = "") -> dict:
    """Write stats.json and README.md (and, for the synthetic corpus, the two pictures) into
    out_dir; return the stats. Pictures left over from an earlier synthetic run are removed when
    the corpus is a real one, so the folder never mixes two datasets."""
    raw_root, out_dir = Path(raw_root), Path(out_dir)
    corpus_file = raw_root / "corpus.json"
    corpus = json.loads(corpus_file.read_text(encoding="utf-8")) if corpus_file.is_file() else None
    splits = read_all(manifest_dir)
    stats = corpus_stats(splits, read_vocab(manifest_dir), corpus, dataset)
    pictures: list[str] = []
    if corpus is not None:
        _write_png(out_dir / CONTACT_SHEET, contact_sheet(corpus))
        pictures.append(CONTACT_SHEET)
        if splits["test"]:
            sample = splits["test"][0]
            spans = load_npz(ground_truth_path(raw_root, sample.id))["gloss_spans"]
            _write_gif(out_dir / SENTENCE_GIF, sentence_frames(sample, spans), corpus["params"].get("fps", 25))
            pictures.append(SENTENCE_GIF)
    for stale in set(PICTURES) - set(pictures):
        if (out_dir / stale).exists():
            os.remove(out_dir / stale)
    write_json(out_dir / STATS_FILE, stats)
    write_text(out_dir / README_FILE, readme_text(stats, pictures))
    return stats
