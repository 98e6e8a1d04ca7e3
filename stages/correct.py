"""Stage correct: a pretrained seq2seq model fixes the int8 student's gloss errors.

Pre-training is denoising on the training sentences (deletions, insertions, substitutions,
swaps, as in KD-MSLRT) unless `correct.pretrained` names a checkpoint; fine-tuning uses the
int8 student's own outputs on the training videos; the acceptance margin is calibrated on dev
so that correction never raises the dev WER.
"""

from pathlib import Path

import mlflow

from signkd.correction import GlossCorrector, finetune, pretrain
from signkd.experiment import decoding, load_splits, scoring_clean, vocabulary, write_hypotheses
from signkd.inference import OnnxBackend, transcribe
from signkd.models.checkpoint import model_size_mb
from signkd.params import Params
from signkd.scoring import official_wer
from signkd.stage import run_stage

STAGE = "correct"
INT8 = Path("models/quantize/student_int8.onnx")
OUT = Path("models/correct")


def main(params: Params) -> dict:
    cfg = params.correct
    vocab = vocabulary(params)
    items = load_splits(params, vocab, (params.student.modality,))
    runner = OnnxBackend(INT8)
    refs = {split: [list(it.glosses) for it in split_items] for split, split_items in items.items()}
    hyps = {split: transcribe(runner, split_items, vocab.glosses, decoding(params)) for split, split_items in items.items()}
    corrector = GlossCorrector.build(vocab.glosses, pretrained=cfg.pretrained, seed=params.seed)
    pre = pretrain(corrector, refs["train"], vocab.glosses, steps=cfg.pretrain_steps, lr=cfg.lr,
                   batch_size=cfg.batch_size, seed=params.seed, noise_samples=cfg.noise_samples)
    fine = finetune(corrector, list(zip(hyps["train"], refs["train"])), steps=cfg.finetune_steps, lr=cfg.lr,
                    batch_size=cfg.batch_size, seed=params.seed, replay_sentences=refs["train"], vocab=vocab.glosses)
    for name, result in (("pretrain", pre), ("finetune", fine)):
        for step, loss in result["loss_curve"]:
            mlflow.log_metric(f"{name}_loss", loss, step=step)
    margin = corrector.calibrate_margin(hyps["dev"], refs["dev"], clean=scoring_clean(params))
    corrector.save(OUT)

    clean = scoring_clean(params)
    metrics: dict = {"margin": margin if margin != float("inf") else -1.0}
    for split in ("dev", "test"):
        corrected = corrector.correct(hyps[split])
        before = official_wer(refs[split], hyps[split], clean=clean)
        after = official_wer(refs[split], corrected, clean=clean)
        metrics.update({f"{split}_wer_before": before.wer, f"{split}_wer_after": after.wer,
                        f"{split}_changed": sum(a != b for a, b in zip(hyps[split], corrected))})
        metrics.update({k + "_after": v for k, v in after.as_metrics(split).items() if not k.endswith("_wer")})
        if split == "test":
            write_hypotheses(STAGE, items[split], corrected, split, clean)
    size = corrector.model_size_mb()
    metrics.update({
        "model_size_mb": round(size, 4),
        "pipeline_size_mb": round(size + model_size_mb(INT8), 4),
        "pretrain_final_loss": pre["final_loss"], "finetune_final_loss": fine["final_loss"],
    })
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
