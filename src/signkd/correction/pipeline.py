"""The correction step end to end, on plain data: train without leaks, gate on dev, measure.

Shared by the `correct` stage and `benchmarks/correction_probe.py`, so the probe's figures are
the stage's. Inputs are per split: ids, references, the int8 student's 1-best hypotheses (from
`signkd.inference.transcribe`), translations ("" where the corpus has none) and, for train, the
student's posteriors (sampled for fine-tuning errors, see `signkd.correction.data`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from signkd.correction.data import LeakGuard, grammar_sentences, sampled_hypotheses
from signkd.correction.headroom import headroom
from signkd.correction.model import GlossCorrector
from signkd.correction.train import finetune, pretrain
from signkd.correction.translate import GlossTranslator, bleu_chrf
from signkd.scoring import official_wer, utterance_counts


@dataclass
class SplitData:
    ids: list[str]
    refs: list[list[str]]
    hyps: list[list[str]]
    translations: list[str]
    log_probs: list[np.ndarray] | None = None


@dataclass(frozen=True)
class Grammar:
    """The synthetic corpus's sentence source: its seed and sentence-length range."""
    seed: int
    min_signs: int
    max_signs: int


@dataclass
class Outcome:
    corrector: GlossCorrector
    translator: GlossTranslator | None
    corrected: dict[str, list[list[str]]]
    translated: dict[str, list[str]]
    metrics: dict
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # the gate's dev WER per margin (GlossCorrector.calibrate_margin)


def run(cfg, data: dict[str, SplitData], glosses: list[str], *, seed: int, clean: str, grammar: Grammar | None,
        progress: bool = True) -> Outcome:
    """Pre-train, fine-tune, calibrate the gate on dev, correct dev and test, translate, score.

    `cfg` is `signkd.params.CorrectParams`. With `grammar` (synthetic corpus) pre-training draws
    `cfg.grammar_sentences` sentences from it; otherwise it uses the train references.
    """
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[f"seconds_{name}"] = round(now - clock, 2)
        clock = now

    guard = LeakGuard([*data["dev"].refs, *data["test"].refs])
    train = data["train"]
    if grammar is not None:
        sentences = grammar_sentences(grammar.seed, cfg.grammar_sentences, grammar.min_signs, grammar.max_signs,
                                      glosses, guard)
    else:
        sentences = guard.sentences(train.refs)
    corrector = GlossCorrector.build(glosses, pretrained=cfg.pretrained, seed=seed)
    common = dict(lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, progress=progress, guard=guard)
    metrics: dict = {"pretrain_sentences": len(sentences),
                     "pretrain_distinct_sentences": len({tuple(s) for s in sentences})}
    curves = {}
    if sentences:  # none only when every train sentence is also a dev/test one (tiny corpora)
        pre = pretrain(corrector, sentences, glosses, steps=cfg.pretrain_steps, noise_samples=cfg.noise_samples,
                       **common)
        curves["pretrain"] = pre["loss_curve"]
        metrics.update({"pretrain_final_loss": pre["final_loss"], "pretrain_dropped_pairs": pre["num_dropped_pairs"]})
    lap("pretrain")
    if train.log_probs is None:
        raise ValueError("fine-tuning needs the student's posteriors on the train videos")
    sampled = sampled_hypotheses(train.log_probs, train.refs, glosses, target_wer=cfg.sample_wer,
                                 per_video=cfg.samples_per_video, seed=seed, guard=guard)
    if sampled.pairs:
        fine = finetune(corrector, sampled.pairs, steps=cfg.finetune_steps, replay_sentences=sentences or None,
                        vocab=glosses, **common)
        curves["finetune"] = fine["loss_curve"]
        metrics.update({"finetune_final_loss": fine["final_loss"], "finetune_dropped_pairs": fine["num_dropped_pairs"]})
    lap("finetune")
    margin = corrector.calibrate_margin(data["dev"].hyps, data["dev"].refs, clean=clean, num_beams=cfg.num_beams)
    corrected = {split: corrector.correct(data[split].hyps, num_beams=cfg.num_beams) for split in ("dev", "test")}
    # What the model proposes before the gate: the evidence for why the gate accepts or rejects.
    ungated = {split: corrector.correct(data[split].hyps, num_beams=cfg.num_beams, gate=False)
               for split in ("dev", "test")}
    lap("correct")

    metrics.update({
        "margin": margin if margin != float("inf") else -1.0,
        "finetune_pairs": len(sampled.pairs), "sample_temperature": round(sampled.temperature, 3),
        "sample_wer": round(sampled.wer, 2), "sample_sub": sampled.sub, "sample_del": sampled.dele,
        "sample_ins": sampled.ins, "train_1best_wer": official_wer(train.refs, train.hyps, clean=clean).wer,
    })
    for split in ("dev", "test"):
        metrics.update(split_metrics(split, data[split].refs, data[split].hyps, corrected[split], clean))
        raw = split_metrics(split, data[split].refs, data[split].hyps, ungated[split], clean)
        metrics.update({f"{k}_ungated": raw[k] for k in (f"{split}_wer_after", f"{split}_changed", f"{split}_fixed",
                                                          f"{split}_broken")})
        if grammar is not None:
            metrics.update(headroom(split, data[split].refs, data[split].hyps, min_signs=grammar.min_signs,
                                    max_signs=grammar.max_signs, clean=clean, proposals=ungated[split]))

    translator, translated = None, {}
    pairs = [(r, t) for r, t in zip(train.refs, train.translations) if r not in guard]
    if cfg.translate and pairs and all(t.strip() for split in data.values() for t in split.translations):
        translator = GlossTranslator.build(glosses, [t for _, t in pairs], pretrained=cfg.pretrained, seed=seed)
        tr = translator.train(pairs, steps=cfg.translate_steps, lr=cfg.translate_lr,
                              batch_size=cfg.batch_size, seed=seed, guard=guard, progress=progress)
        metrics.update({"translate_final_loss": tr["final_loss"], "translate_pairs": tr["num_pairs"]})
        for split in ("dev", "test"):
            d = data[split]
            todo = {tuple(g) for g in (*corrected[split], *d.hyps, *d.refs)}
            out = dict(zip(todo, translator.translate([list(g) for g in todo], num_beams=cfg.num_beams)))
            translated[split] = [out[tuple(g)] for g in corrected[split]]
            for suffix, source in (("", corrected[split]), ("_before", d.hyps), ("_ref_glosses", d.refs)):
                scores = bleu_chrf([out[tuple(g)] for g in source], d.translations, seed=seed)
                metrics.update({f"{split}_{k}{suffix}": v for k, v in scores.items()})
        lap("translate")
    metrics.update(seconds)
    return Outcome(corrector, translator, corrected, translated, metrics, curves, corrector.calibration)


def split_metrics(split: str, refs, hyps, corrected, clean: str) -> dict:
    """WER before/after with intervals, and what the corrector did to right and wrong outputs.

    "Correct" is per utterance by the official scorer (no substitution, deletion or insertion).
    `correct_unchanged_share` is the share of correct hypotheses the corrector left unchanged
    (1.0 when there are none); `fixed`: wrong -> correct; `broken`: correct -> wrong.
    """
    before = official_wer(refs, hyps, clean=clean)
    after = official_wer(refs, corrected, clean=clean)
    ok_before = [sum(c[:3]) == 0 for c in utterance_counts(refs, hyps, clean=clean)]
    ok_after = [sum(c[:3]) == 0 for c in utterance_counts(refs, corrected, clean=clean)]
    changed = [list(h) != list(c) for h, c in zip(hyps, corrected)]
    correct = sum(ok_before)
    kept = sum(ok and not ch for ok, ch in zip(ok_before, changed))
    out = {
        f"{split}_wer_before": before.wer, f"{split}_wer_after": after.wer,
        f"{split}_changed": sum(changed), f"{split}_correct_before": correct,
        f"{split}_correct_unchanged_share": round(kept / correct, 4) if correct else 1.0,
        f"{split}_fixed": sum(not a and b for a, b in zip(ok_before, ok_after)),
        f"{split}_broken": sum(a and not b for a, b in zip(ok_before, ok_after)),
        f"{split}_wer_relative_change": round((after.wer - before.wer) / before.wer, 4) if before.wer else 0.0,
    }
    for suffix, result in (("_before", before), ("_after", after)):
        out.update({k + suffix: v for k, v in result.as_metrics(split).items() if not k.endswith("_wer")})
    return out


def examples_markdown(data: SplitData, corrected: list[list[str]], translated: list[str], metrics: dict,
                      split: str = "test", limit: int = 8, calibration: dict | None = None) -> str:
    """A few before/after examples: changed hypotheses first, then uncorrected errors."""
    rows = []
    for i, (ref, hyp, cor) in enumerate(zip(data.refs, data.hyps, corrected)):
        if hyp != cor:
            verdict = "fixed" if cor == ref else "broken" if hyp == ref else "changed"
        elif hyp != ref:
            verdict = "error kept"
        else:
            continue
        rows.append((("fixed", "broken", "changed", "error kept").index(verdict), i, verdict))
    rows = sorted(rows)[:limit]
    m = metrics
    applied = m.get("dev_changed", 0) or m.get("test_changed", 0)
    lines = [f"# Text correction: {split} examples", "",
             "Correction not applied: the gate calibrated on dev rejected every change." if not applied else
             f"{split} WER {m[f'{split}_wer_before']:.2f} -> {m[f'{split}_wer_after']:.2f} "
             f"({m[f'{split}_changed']} of {len(data.refs)} hypotheses changed, {m[f'{split}_fixed']} fixed, "
             f"{m[f'{split}_broken']} broken; {100 * m[f'{split}_correct_unchanged_share']:.1f}% of already-correct "
             "hypotheses unchanged).", ""]
    if f"{split}_wer_oracle" in m:
        lines += [f"Headroom: of the {m[f'{split}_errors_grammatical'] + m[f'{split}_errors_ungrammatical']} wrong "
                  f"{split} hypotheses, {m[f'{split}_errors_grammatical']} are well-formed sentences of the corpus "
                  "grammar, which no text-only corrector can tell from right ones; fixing every ill-formed one "
                  f"perfectly would give WER {m[f'{split}_wer_before']:.2f} -> {m[f'{split}_wer_oracle']:.2f}.", ""]
    if f"{split}_wer_after_ungated" in m:
        lines += [f"Before the gate, the corrector would change {m[f'{split}_changed_ungated']} {split} hypotheses: "
                  f"{m[f'{split}_fixed_ungated']} wrong ones made right, {m[f'{split}_broken_ungated']} right ones "
                  f"made wrong, WER {m[f'{split}_wer_before']:.2f} -> {m[f'{split}_wer_after_ungated']:.2f}"
                  + (f"; of the {m[f'{split}_errors_ungrammatical']} ill-formed errors it fixes "
                     f"{m[f'{split}_ungrammatical_fixed_ungated']}" if f"{split}_ungrammatical_fixed_ungated" in m else "")
                  + ".", ""]
    if calibration:
        curve = ", ".join(f"{'never' if g is None else g}: {w:.2f}"
                          for g, w in zip(calibration["margins"], calibration["wer"]))
        lines += [f"Gate calibration, dev WER by margin (a change is kept when it gains more than the margin in "
                  f"log-likelihood): {curve}.", ""]
    header = "| id | reference | student | corrected | verdict |" + (" sentence |" if translated else "")
    lines += [header, "|---|---|---|---|---|" + ("---|" if translated else "")]
    for _, i, verdict in rows:
        cells = [data.ids[i], " ".join(data.refs[i]), " ".join(data.hyps[i]), " ".join(corrected[i]), verdict]
        if translated:
            cells.append(f"{translated[i]} (reference: {data.translations[i]})")
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| – | every hypothesis was already correct | | | |" + (" |" if translated else ""))
    return "\n".join(lines) + "\n"
