"""One picture of what distillation changes: CTC posteriors over time on one test sentence for
the teacher, the student without KD and the HKD-distilled student, against the renderer's own
gloss boundaries (shaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from signkd.inference import TorchBackend
from signkd.io import atomic_path, load_npz
from signkd.models.blocks import DOWNSAMPLE
from signkd.models.checkpoint import load_checkpoint
from signkd.params import Params
from signkd.studies.common import load_all, only, study_vocabulary

STUDY_DIR = Path("models/studies/kd_ablation")


def gloss_spans(params: Params, video_id: str) -> np.ndarray | None:
    from signkd.data.synthetic import ground_truth_path
    from signkd.studies.corpus import ground_truth_roots

    for root in ground_truth_roots(params):
        path = ground_truth_path(root, video_id)
        if path.is_file():
            return load_npz(path)["gloss_spans"]
    return None


def alignment_figure(params: Params, seed: int, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {"teacher": STUDY_DIR / f"teacher-seed{seed}", "student, no KD": STUDY_DIR / f"keypoints-no_kd-seed{seed}",
              "student, HKD": STUDY_DIR / f"keypoints-hkd-seed{seed}"}
    if not all((d / "model.safetensors").is_file() for d in models.values()):
        return None
    vocab = study_vocabulary(params)
    test = load_all(params, vocab)["test"]
    item = max(test, key=lambda it: len(set(it.glosses)))  # the sentence with the most distinct glosses
    spans = gloss_spans(params, item.id)
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 2.1 * len(models)), sharex=True)
    colours = plt.get_cmap("tab10")
    for ax, (label, directory) in zip(axes, models.items()):
        model, spec = load_checkpoint(directory)
        inputs = spec.architecture.inputs
        with torch.no_grad():
            post = np.exp(TorchBackend(model).log_probs(only([item], inputs))[0])
        steps = np.arange(post.shape[0]) * DOWNSAMPLE + DOWNSAMPLE / 2
        ax.plot(steps, post[:, 0], color="lightgrey", label="blank")
        for k, gloss in enumerate(dict.fromkeys(item.glosses)):
            ax.plot(steps, post[:, vocab.index[gloss]], color=colours(k % 10), label=gloss)
        if spans is not None:
            for k, (start, end) in enumerate(spans):
                ax.axvspan(start, end, color=colours(list(dict.fromkeys(item.glosses)).index(item.glosses[k]) % 10), alpha=0.12)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=7, ncol=6, loc="upper right")
    axes[-1].set_xlabel(f"frame ({item.id}: {' '.join(item.glosses)}; shading = the renderer's gloss spans)")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
