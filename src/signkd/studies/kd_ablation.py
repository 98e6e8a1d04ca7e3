"""The distillation ablation: how much of the teacher-student gap does each recipe recover?

For each seed: the teacher of params.yaml, then for both students (`keypoints`, `video`) the
student without distillation (`no_kd`) and distilled from that seed's teacher by each recipe
(`logits`, `hkd`, `chain`; see signkd.kd.recipes). Writes

  reports/kd_ablation/metrics.json   {"<student>": {"<recipe>": {"test_wer_mean", "test_wer_std",
                                      "test_wer_ci_low", "test_wer_ci_high",          (seeds + utterances)
                                      "test_wer_utt_ci_low", "test_wer_utt_ci_high",  (utterances only)
                                      "seeds", "seed_wers"}, ...,
                                      "gap_recovered": {"<recipe>": (no_kd - recipe) / (no_kd - teacher)},
                                      "paired": {"hkd_vs_logits": {"mean", "ci_low", "ci_high", "seeds_better", ...},
                                                 "chain_vs_hkd", "hkd_vs_no_kd", "logits_vs_no_kd", "chain_vs_no_kd"}}}
      (paired: test WER points the first recipe is better by, same seed; signkd.studies.intervals)
  reports/kd_ablation/README.md, wer.png, alignment.png

Run: `make kd-ablation`; each run's record is kept in studies/runs/kd_ablation/ (weights in
models/studies/kd_ablation/), so it resumes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from signkd.errors import InputError
from signkd.experiment import (
    decoding,
    keypoint_dim,
    new_model,
    scoring_clean,
    student_config,
    teacher_config,
    train_config,
)
from signkd.io import write_json, write_text
from signkd.kd.loss import attach_teacher_outputs
from signkd.kd.recipes import (
    RECIPES,
    distill_student,
    distillation_inputs,
    online,
    train_assistant,
)
from signkd.kd.settings import KDSettings, resolve, tuned_keys
from signkd.kd.targets import (
    TARGETS_DIR,
    load_targets,
    out_of_fold_targets,
    save_targets,
)
from signkd.models.checkpoint import freeze, load_checkpoint, save_checkpoint
from signkd.models.spec import ModelSpec
from signkd.params import Params
from signkd.studies.common import (
    KD_SECTIONS,
    STUDENT_SECTIONS,
    TEACHER_SECTIONS,
    bar_chart,
    cached,
    digest,
    load_all,
    markdown_table,
    only,
    paired,
    paired_lines,
    record_path,
    run_key,
    stored,
    study_vocabulary,
    summarize,
    test_record,
    with_updates,
)
from signkd.studies.corpus import study_params
from signkd.training.trainer import TrainResult, evaluate, train

STUDY_DIR = Path("models/studies/kd_ablation")
# The tune study's best values (signkd.studies.tune); the ablation itself distils with params' numbers.
TUNED = Path("studies/kd_tuned.json")
REPORT_DIR = Path("reports/kd_ablation")
STUDENTS = ("keypoints", "video")
SUMMARY_KEYS = ("gap_recovered", "paired")  # per-student keys that are not models
# The paired questions, "first_vs_second": how much lower the first recipe's test WER is, same seed
PAIRS = (("hkd", "logits"), ("chain", "hkd"), ("hkd", "no_kd"), ("logits", "no_kd"), ("chain", "no_kd"))


def _evaluate(model, params, data, vocab, result) -> dict:
    test, hyps = evaluate(model, data["test"], vocab, decoding(params), scoring_clean(params))
    return {"dev_wer": result.best_dev_wer, "test_wer": test.wer, "best_epoch": result.best_epoch,
            **test_record(data["test"], hyps, scoring_clean(params))}


class SeedTeacher:
    """One seed's teacher: its record (from the ledger, or fitted now) and, only when a student
    still has to be distilled from it, its weights (refitted if this machine lacks them)."""

    def __init__(self, params: Params, items: dict, vocab):
        self.params, self.items, self.vocab = params, items, vocab
        self.directory = STUDY_DIR / f"teacher-seed{params.seed}"
        self.key = run_key(params, "teacher", params.seed, sections=TEACHER_SECTIONS)
        self.record = cached(STUDY_DIR, "teacher", params.seed, self.key, self._fit)
        self._loaded: tuple | None = None

    def _fit(self) -> dict:
        params, vocab, seed = self.params, self.vocab, self.params.seed
        config = teacher_config(params, keypoint_dim(params), vocab)
        model = new_model(config, seed)
        data = {k: only(v, tuple(params.teacher.modalities)) for k, v in self.items.items()}
        result = train(model, data["train"], data["dev"], vocab, train_config(params, params.teacher), None, None, f"teacher {seed}")
        save_checkpoint(model, config, self.directory)
        return _evaluate(model, params, data, vocab, result)

    @property
    def digest(self) -> str:
        return digest(self.record)

    def ensure_weights(self) -> None:
        """Refit (and re-record) a teacher whose record is in the ledger but whose weights are not here."""
        if not (self.directory / "model.safetensors").is_file():
            record_path(STUDY_DIR, "teacher", self.params.seed).unlink(missing_ok=True)
            self.record = cached(STUDY_DIR, "teacher", self.params.seed, self.key, self._fit)

    def load(self) -> tuple:
        """(frozen model, config)."""
        if self._loaded is None:
            self.ensure_weights()
            model, config = load_checkpoint(self.directory)
            self._loaded = (freeze(model), config)
        return self._loaded

    @property
    def model(self):
        return self.load()[0]

    @property
    def config(self) -> ModelSpec:
        return self.load()[1]


def targets_run(params: Params, items: dict, vocab, teacher, teacher_cfg: ModelSpec) -> Path:
    """This seed's teacher targets, made as the pipeline makes them (`kd.teacher_targets`)."""
    directory = STUDY_DIR / f"targets-seed{params.seed}"
    key_file = directory / "key.txt"
    key = run_key(params, "targets", params.seed, sections=TEACHER_SECTIONS + ("kd",))
    if key_file.is_file() and key_file.read_text() == key and (directory / TARGETS_DIR).is_dir():
        return directory
    modalities = teacher_cfg.architecture.inputs
    train_items = [replace(it, tensors=dict(it.tensors)) for it in only(items["train"], modalities)]
    attach_teacher_outputs(freeze(teacher), train_items, keep=modalities)
    if params.kd.teacher_targets == "out_of_fold":
        out_of_fold_targets(params, vocab, train_items, only(items["dev"], modalities), teacher_cfg, params.kd.folds)
    save_targets(train_items, directory)
    write_text(key_file, key)
    return directory


def assistant_run(params: Params, items: dict, vocab, targets: Path | None, teacher_cfg: ModelSpec, kd: KDSettings,
                  teacher) -> tuple:
    """The chain's assistant for this seed, trained once and shared by both students (from the
    stored `targets`, or online from the frozen `teacher`)."""
    directory = STUDY_DIR / f"assistant-seed{params.seed}"
    key = run_key(params, "assistant", params.seed, kd.for_recipe("chain").record(), sections=KD_SECTIONS)
    record = directory / "record.json"
    if record.is_file() and json.loads(record.read_text())["key"] == key and (directory / "model.safetensors").is_file():
        model, config = load_checkpoint(directory)
        return model, config, TrainResult(**json.loads(record.read_text())["result"])
    keep = tuple(params.kd.assistant_modalities)
    inputs = tuple(dict.fromkeys(keep + (teacher_cfg.architecture.inputs if online(params) else ())))
    train_items = [replace(it, tensors=dict(it.tensors)) for it in only(items["train"], inputs)]
    if not online(params):
        if targets is None:
            raise ValueError("the assistant of a stored-targets run needs the teacher targets' folder")
        load_targets(train_items, targets, keep)
    data = {"train": train_items, "dev": only(items["dev"], keep)}
    model, config, result = train_assistant(params, data, vocab, teacher_cfg, kd, None, f"assistant {params.seed}",
                                            teacher if online(params) else None)
    save_checkpoint(model, config, directory)
    write_json(record, {"key": key, "result": {"best_epoch": result.best_epoch, "best_dev_wer": result.best_dev_wer}})
    return model, config, result


def student_key(params: Params, recipe: str, name: str, kd: KDSettings, teacher: SeedTeacher) -> str:
    if recipe == "no_kd":
        return run_key(params, name, params.seed, sections=STUDENT_SECTIONS)
    return run_key(params, name, params.seed, {**kd.for_recipe(recipe).record(), "teacher": teacher.digest}, sections=KD_SECTIONS)


def student_run(params: Params, recipe: str, items: dict, vocab, teacher: SeedTeacher, kd: KDSettings,
                assistant=None, targets=None, name: str | None = None, study_dir: Path = STUDY_DIR) -> dict:
    """One student of this seed (recorded for `study_dir` as `name`, by default <modality>-<recipe>);
    `targets`: a function giving the stored teacher targets (None: the teacher runs online)."""
    modality, seed = params.student.modality, params.seed
    name = name or f"{modality}-{recipe}"

    def fit() -> dict:
        if recipe == "no_kd":
            config = student_config(params, keypoint_dim(params), vocab)
            model = new_model(config, seed)
            data = {k: only(v, (modality,)) for k, v in items.items()}
            result = train(model, data["train"], data["dev"], vocab, train_config(params, params.student), None, None, name)
        else:
            pr = with_updates(params, kd={"recipe": recipe})
            keep = distillation_inputs(pr)
            train_items = [replace(it, tensors=dict(it.tensors)) for it in only(items["train"], keep)]
            if not online(pr):
                load_targets(train_items, targets(), keep)
            data = {"train": train_items, "dev": only(items["dev"], keep), "test": only(items["test"], (modality,))}
            out = distill_student(pr, data, vocab, teacher.config, kd.for_recipe(recipe), on_epoch=None, desc=name,
                                  assistant=assistant() if recipe == "chain" else None, teacher=teacher.model)
            model, config, result = out.student, out.config, out.result
        save_checkpoint(model, config, study_dir / f"{name}-seed{seed}")
        return _evaluate(model, params, {"test": only(items["test"], (modality,))}, vocab, result)

    return cached(study_dir, name, seed, student_key(params, recipe, name, kd, teacher), fit)


def _student_params(params: Params, student: str, video_epochs: int | None) -> Params:
    if student == "video" and video_epochs:
        return with_updates(params, student={"modality": student, "epochs": video_epochs}, kd={"epochs": video_epochs})
    return with_updates(params, student={"modality": student})


def gap_recovered(block: dict) -> dict:
    no_kd, teacher = block["no_kd"]["test_wer_mean"], block["teacher"]["test_wer_mean"]
    gap = no_kd - teacher
    return {r: (round((no_kd - block[r]["test_wer_mean"]) / gap, 4) if gap else None) for r in RECIPES if r in block}


def run(params: Params, seeds: list[int], students: tuple[str, ...] = STUDENTS, video_epochs: int | None = None,
        video_recipes: tuple[str, ...] = RECIPES, write_report: bool = True) -> dict:
    """`video_epochs`, `video_recipes`: train the video student (with and without KD alike) for
    this many epochs instead of params' student/kd epochs, and with these recipes only -- it is
    ~3x slower per epoch than the keypoint one. `write_report=False`: train and record only (several
    processes or machines can share out the seeds; a last run over all of them writes the report)."""
    vocab = study_vocabulary(params)
    items = load_all(params, vocab)
    if tuned_keys(params):
        raise InputError(f"the KD ablation distils with numbers, but params marks kd.{tuned_keys(params)[0]} `tuned`; "
                         f"to run it with the tune study's values, copy them from {TUNED} into params/study.yaml")
    kd = resolve(params)  # one set of settings for every recipe, the chain's assistant included
    teachers: dict[int, dict] = {}
    runs: dict[str, dict[str, list[dict]]] = {s: {} for s in students}
    for seed in seeds:
        ps = params.model_copy(update={"seed": seed})
        teacher = SeedTeacher(ps, items, vocab)
        plan = [(pst, recipe) for pst in (_student_params(ps, student, video_epochs) for student in students)
                for recipe in ("no_kd", *(video_recipes if pst.student.modality == "video" else RECIPES))]
        if any(stored(STUDY_DIR, f"{p.student.modality}-{r}", seed, student_key(p, r, f"{p.student.modality}-{r}", kd, teacher)) is None
               for p, r in plan if r != "no_kd"):
            teacher.ensure_weights()  # before any key is used: a refitted teacher may differ from its record
        teachers[seed] = teacher.record
        targets = lambda ps=ps, t=teacher: targets_run(ps, items, vocab, t.model, t.config)  # noqa: E731
        assistant = lambda ps=ps, t=teacher, targets=targets: assistant_run(  # noqa: E731
            ps, items, vocab, None if online(ps) else targets(), t.config, kd, t.model)
        for pst, recipe in plan:
            runs[pst.student.modality].setdefault(recipe, []).append(
                student_run(pst, recipe, items, vocab, teacher, kd, assistant, targets))
    if not write_report:  # --runs-only: the records are in the ledger; the report needs every seed
        return {}
    teacher_summary = summarize(list(teachers.values()))
    report: dict = {}
    for student, by_recipe in runs.items():
        block = {recipe: summarize(rs) for recipe, rs in by_recipe.items()}
        block["teacher"] = teacher_summary
        block["gap_recovered"] = gap_recovered(block)
        block["paired"] = {f"{a}_vs_{b}": paired(by_recipe[a], by_recipe[b]) for a, b in PAIRS if a in by_recipe and b in by_recipe}
        report[student] = block
    report["settings"] = {"temperature": kd.temperature, "teacher_targets": params.kd.teacher_targets, "alpha": kd.alpha,
                          "fusion": params.teacher.fusion, "level_weights": kd.level_weights, "kd_source": kd.source,
                          "seeds": seeds, "epochs": params.kd.epochs, "video_epochs": video_epochs or params.kd.epochs,
                          "video_recipes": list(video_recipes)}
    write_json(REPORT_DIR / "metrics.json", report)
    flat = {f"{s}/{r}": v for s in students for r, v in report[s].items() if r not in SUMMARY_KEYS}
    bar_chart(flat, REPORT_DIR / "wer.png", f"Distillation ablation, {len(seeds)} seeds")
    _write_readme(report, students, seeds)
    return report


def _write_readme(report: dict, students: tuple[str, ...], seeds: list[int]) -> None:
    s = report["settings"]
    lines = ["# Distillation ablation", "",
             f"Seeds {seeds}; teacher fusion `{s['fusion']}`; teacher targets `{s['teacher_targets']}`; "
             f"KD alpha {s['alpha']:.3f}, temperature {s['temperature']:.3f}, "
             f"level weights {', '.join(f'{k} {v:.3f}' for k, v in s['level_weights'].items())}; {s['epochs']} epochs with and without KD (video student: "
             f"{s['video_epochs']}, recipes {', '.join(s['video_recipes'])}, for time). Gap recovered = (no_kd - recipe) / (no_kd - teacher) on mean test "
             "WER. Written by `python -m signkd.studies.kd_ablation`; do not edit.", ""]
    for student in students:
        block = report[student]
        lines += [f"## {student} student", "",
                  markdown_table({k: v for k, v in block.items() if k not in SUMMARY_KEYS}, {}), "",
                  "gap recovered: " + ", ".join(f"{r} {v:.2f}" if v is not None else f"{r} –" for r, v in block["gap_recovered"].items()), "",
                  "Paired, same seed (test WER points the first is better by; 95% CI over seeds and utterances):", "",
                  *paired_lines(block["paired"], {f"{a}_vs_{b}": (a, b) for a, b in PAIRS}), ""]
    lines += ["![test WER per recipe](wer.png)", "", "![CTC alignment](alignment.png)", ""]
    write_text(REPORT_DIR / "README.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS)
    parser.add_argument("--video-epochs", type=int, help="epochs of the video student, with and without KD (default: params')")
    parser.add_argument("--video-recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs-only", action="store_true",
                        help="train and record these seeds' runs in the ledger, write no report (to share seeds out)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    params = study_params(args.params)
    report = run(params, args.seeds, tuple(args.students), args.video_epochs, tuple(args.video_recipes), not args.runs_only)
    if args.runs_only:
        return
    from signkd.studies.alignment import alignment_figure

    alignment_figure(params, args.seeds[0], REPORT_DIR / "alignment.png")
    print(json.dumps({k: v.get("gap_recovered") for k, v in report.items() if isinstance(v, dict) and "gap_recovered" in v}))


if __name__ == "__main__":
    main()
