"""Does a KD search beat params.yaml's numbers? A real search, then both settings over the seeds.

1. The search: the tune stage's objective (signkd.kd.tuning) with all five KD settings searched,
   `--trials` trials (24), successive halving from `tune.min_epochs` (10) up to `kd.epochs` (120,
   where distillation peaks), distilling the keypoint student from seed 1's study teacher (the KD
   ablation's, same cache) on the study corpus's train and dev. The Optuna study is stored in
   models/studies/tune/study.db, so an interrupted search resumes. Its best trial goes to
   studies/kd_tuned.json: what a `tuned` key resolves to in the studies.
2. The test: for each seed, the keypoint student distilled by HKD from that seed's teacher, once
   with params.yaml's numbers (the KD ablation's own `hkd` run, shared through its cache) and once
   with the tuned values, scored on the study test set, compared paired over seeds and utterances.

Writes reports/tune/study/metrics.json ({"defaults", "tuned": summaries, "paired":
{"tuned_vs_defaults": ...}, "search": ...}), README.md, history.png and importance.png.
Run: `make tune-study`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna

from signkd.io import atomic_path, write_json, write_text
from signkd.kd.recipes import distillation_inputs
from signkd.kd.settings import tuned_keys, with_values
from signkd.kd.tuning import objective, pruner, study_name
from signkd.params import TUNED, Params
from signkd.studies import kd_ablation
from signkd.studies.common import load_all, only, paired, paired_lines, study_vocabulary, summarize, with_updates
from signkd.studies.corpus import study_params
from signkd.study import open_study

STUDY_DIR = Path("models/studies/tune")
TUNED_FILE = kd_ablation.TUNED  # studies/kd_tuned.json
REPORT_DIR = Path("reports/tune/study")
SEARCH_SEED = 1


def all_tuned(params: Params) -> Params:
    """params with every KD setting marked `tuned` (HKD, keypoint student)."""
    weights = {level: TUNED for level in ("frame", "temporal", "sequence")}
    return with_updates(params, student={"modality": "keypoints"},
                        kd={"recipe": "hkd", "temperature": TUNED, "alpha": TUNED, "level_weights": weights})


def search_params(params: Params, trials: int) -> Params:
    """What the search runs with: every setting searched, trials of up to kd.epochs, seed 1."""
    return with_updates(all_tuned(params), seed=SEARCH_SEED,
                        tune={"n_trials": trials, "n_startup_trials": max(1, trials // 3), "epochs": params.kd.epochs})


def search(params: Params, items: dict, vocab, trials: int) -> optuna.Study:
    sp = search_params(params, trials)
    teacher = kd_ablation.SeedTeacher(sp, items, vocab)
    keep = distillation_inputs(sp)
    data = {"train": only(items["train"], keep), "dev": only(items["dev"], keep)}
    STUDY_DIR.mkdir(parents=True, exist_ok=True)
    name = study_name(sp, f"study-seed{SEARCH_SEED}")
    study = open_study(name, f"sqlite:///{(STUDY_DIR / 'study.db').resolve()}", seed=SEARCH_SEED, pruner=pruner(sp),
                       n_startup_trials=sp.tune.n_startup_trials)
    finished = [t for t in study.trials if t.state.is_finished()]
    if len(finished) < trials:  # resume: only the trials still missing
        study.optimize(objective(sp, data, vocab, teacher.config, teacher.model), n_trials=trials - len(finished))
    return study


def best_values(study: optuna.Study) -> dict[str, float]:
    return {key.removeprefix("kd."): value for key, value in study.best_params.items()}


def write_tuned(study: optuna.Study) -> None:
    done = [t for t in study.trials if t.state.is_finished()]
    write_json(TUNED_FILE, {**study.best_params, "dev_wer": study.best_value, "trial": study.best_trial.number,
                            "source": f"make tune-study: best of {len(done)} trials (TPE + successive halving, "
                                      f"up to {max(max(t.intermediate_values, default=0) for t in done)} epochs) "
                                      f"on the study corpus, seed {SEARCH_SEED}'s teacher"})


def first_rung_importance(study: optuna.Study, epochs: int) -> dict[str, float]:
    """PED-ANOVA importance of each setting for the dev WER every trial reached (after `epochs`):
    only a few trials complete under successive halving, too few to rank settings on."""
    reached = [t for t in study.trials if epochs in t.intermediate_values]
    if len(reached) < 4:
        return {}
    shadow = optuna.create_study(direction="minimize")
    for t in reached:
        shadow.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                   value=t.intermediate_values[epochs]))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=0.25)
    return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(shadow, evaluator=evaluator).items()}


def figures(study: optuna.Study, importance: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_intermediate_values, plot_optimization_history

    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    for name, plot in (("history.png", plot_optimization_history), ("intermediate.png", plot_intermediate_values)):
        ax = plot(study)
        # ax.figure is typed Figure | SubFigure; optuna draws on a top-level Figure
        with atomic_path(REPORT_DIR / name) as tmp:
            ax.figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")  # type: ignore[union-attr]
        plt.close(ax.figure)  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.barh(list(importance)[::-1], list(importance.values())[::-1], color="#6a8caf")
    ax.set_xlabel("PED-ANOVA importance (dev WER after the first rung)")
    fig.tight_layout()
    with atomic_path(REPORT_DIR / "importance.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def compare(params: Params, items: dict, vocab, seeds: list[int], tuned: dict[str, float]) -> dict:
    """HKD with params' numbers vs with the tuned values, per seed from that seed's teacher."""
    if tuned_keys(params):
        raise ValueError(f"params.yaml marks {', '.join(tuned_keys(params))} `tuned`: the study compares the "
                         "search with params.yaml's numbers, so give them numbers for it")
    runs: dict[str, list[dict]] = {"defaults": [], "tuned": []}
    for seed in seeds:
        ps = with_updates(params, seed=seed, student={"modality": "keypoints"}, kd={"recipe": "hkd"})
        teacher = kd_ablation.SeedTeacher(ps, items, vocab)
        settings = {"defaults": with_values(ps, {}), "tuned": with_values(all_tuned(ps), tuned, source=str(TUNED_FILE))}
        for arm, kd in settings.items():
            # defaults: the KD ablation's own HKD run (its cache); tuned: this study's run
            where = kd_ablation.STUDY_DIR if arm == "defaults" else STUDY_DIR
            runs[arm].append(kd_ablation.student_run(ps, "hkd", items, vocab, teacher, kd,
                                                     name=f"keypoints-hkd-{arm}" if arm == "tuned" else None, study_dir=where))
    return {**{arm: summarize(rs) for arm, rs in runs.items()}, "paired": {"tuned_vs_defaults": paired(runs["tuned"], runs["defaults"])}}


def run(params: Params, seeds: list[int], trials: int) -> dict:
    vocab = study_vocabulary(params)
    items = load_all(params, vocab)
    study = search(params, items, vocab, trials)
    write_tuned(study)
    importance = first_rung_importance(study, params.tune.min_epochs)
    figures(study, importance)
    report = compare(params, items, vocab, seeds, best_values(study))
    states = [t.state for t in study.trials]
    report["search"] = {"trials": len(study.trials), "complete": states.count(optuna.trial.TrialState.COMPLETE),
                        "pruned": states.count(optuna.trial.TrialState.PRUNED),
                        "epochs_trained": sum(max(t.intermediate_values, default=0) for t in study.trials),
                        "best_trial": study.best_trial.number, "best_dev_wer": round(study.best_value, 3),
                        "best": best_values(study), "importance": importance,
                        "defaults": {k: v for k, v in with_values(params, {}).record().items() if k != "kd.recipe"}}
    write_json(REPORT_DIR / "metrics.json", report)
    _write_readme(report, seeds)
    return report


def _write_readme(report: dict, seeds: list[int]) -> None:
    s, pair = report["search"], report["paired"]["tuned_vs_defaults"]
    better = pair["ci_low"] > 0
    lines = ["# Does tuning beat params.yaml's numbers?", "",
             f"Search: {s['trials']} trials ({s['complete']} trained to the end, {s['pruned']} stopped by successive halving; "
             f"{s['epochs_trained']} epochs in all), best trial {s['best_trial']} at dev WER {s['best_dev_wer']:.2f}: "
             + ", ".join(f"{k} {v:.3g}" for k, v in s["best"].items()) + ". params.yaml: "
             + ", ".join(f"{k.removeprefix('kd.')} {v:.3g}" for k, v in s["defaults"].items()) + ".", "",
             f"Test, keypoint student distilled by HKD, seeds {seeds}:", "",
             "| settings | test WER % mean ± std | 95% CI, seeds + utterances | 95% CI, utterances only |",
             "|---|---:|---:|---:|",
             *[f"| {arm} | {r['test_wer_mean']:.2f} ± {r['test_wer_std']:.2f} | "
               f"[{r['test_wer_ci_low']:.2f}, {r['test_wer_ci_high']:.2f}] | "
               f"[{r['test_wer_utt_ci_low']:.2f}, {r['test_wer_utt_ci_high']:.2f}] |"
               for arm, r in ((a, report[a]) for a in ("defaults", "tuned"))],
             "", *paired_lines(report["paired"], {"tuned_vs_defaults": ("tuned", "defaults")}), "",
             ("The tuned settings are better on test over these seeds." if better else
              "The tuned settings are not shown to be better, so the default pipeline distils with params.yaml's numbers."), "",
             "Importance (PED-ANOVA on the dev WER every trial reached after the first rung): "
             + (", ".join(f"{k} {v:.2f}" for k, v in s["importance"].items()) or "too few trials"), "",
             "![search history](history.png) ![dev WER per epoch, per trial](intermediate.png) ![importance](importance.png)", "",
             "Written by `python -m signkd.studies.tune` (`make tune-study`); do not edit."]
    write_text(REPORT_DIR / "README.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    report = run(study_params(args.params), args.seeds, args.trials)
    print(json.dumps(report["paired"]))


if __name__ == "__main__":
    main()
