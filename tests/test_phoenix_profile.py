"""The Phoenix-2014 profile: its parameters are valid and reach the stages through DVC, every model
it builds trains on a Phoenix-shaped batch (224x224 frames through ResNet-18, 1,296 classes), the
ResNet-18 takes torchvision's weights, and AMP's half-precision path keeps the models working."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from signkd.experiment import keypoint_dim, student_config, teacher_config
from signkd.inference import DecodeConfig
from signkd.models.checkpoint import build_model, load_checkpoint, save_checkpoint
from signkd.models.recognizer import FUSIONS, MultiModalTeacher, VideoStudent, count_parameters
from signkd.models.resnet import ResNet18
from signkd.params import ParamsError, parse_params
from signkd.profiles import apply, check, hydra_value, overrides
from signkd.seeding import set_seed
from signkd.training import trainer
from signkd.training.data import Item, Vocabulary, collate
from tests.toy_data import GLOSSES, student_spec, toy_items, toy_vocab

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "params" / "phoenix2014.yaml"
PHOENIX_CLASSES = 1296  # 1,295 glosses of the Phoenix-2014 training vocabulary + the CTC blank


@pytest.fixture(scope="module")
def params():
    return check(PROFILE, ROOT / "params.yaml")


def _phoenix_vocab() -> Vocabulary:
    return Vocabulary([f"GLOSS{i}" for i in range(PHOENIX_CLASSES - 1)])


def test_profile_is_valid_and_phoenix_sized(params):
    assert params.data.dataset == "phoenix2014"
    assert params.model.video_backbone == "resnet18" and params.model.video_backbone_weights == ""
    assert (params.model.frame_height, params.model.frame_width) == (224, 224)
    assert keypoint_dim(params) == 219  # 73 joints x (x, y, visibility); KD-MSLRT: 92 x (x, y, z) = 276
    for section in (params.teacher, params.student, params.kd):
        assert (section.batch_size, section.epochs, section.lr, section.schedule) == (2, 40, 1e-4, "multistep")
        assert section.milestones == [20, 35] and section.weight_decay == 1e-4
    student = build_model(student_config(params, keypoint_dim(params), _phoenix_vocab()))
    assert 6.5e6 < count_parameters(student) < 8.5e6  # KD-MSLRT's student: about 7.15 M


def test_dvc_set_param_applies_the_profile_exactly(tmp_path):
    """The overrides `make phoenix` passes to `dvc exp run -S`, applied by DVC's own code, give
    params.yaml + profile (keys outside the profile untouched, keys params.yaml lacks added)."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    profile = yaml.safe_load(PROFILE.read_text())
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    apply_overrides(target, to_path_overrides(overrides(profile))["params.yaml"])
    assert yaml.safe_load(target.read_text()) == apply(base, profile)
    parse_params(yaml.safe_load(target.read_text()))


@pytest.mark.parametrize("value", ["a b:c/[x]", "it's", "a\\'b", "end\\", "C:\\dir", "", "https://h/a.tar.gz",
                                   0.0001, 1e-05, 3, True, None, ["pose", "face"], [20, 35]])
def test_override_values_survive_hydras_grammar(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert OverridesParser.create().parse_override(f"++a.b={hydra_value(value)}").value() == value


WORK = """\
import json, pathlib
from signkd.params import load_params
p = load_params("params.yaml")
pathlib.Path("seen.json").write_text(json.dumps({"dataset": p.data.dataset, "backbone": p.model.video_backbone,
    "milestones": p.teacher.milestones, "alpha": p.kd.alpha, "seed": p.seed}))
"""


def test_make_phoenix_runs_a_dvc_experiment_that_sees_the_profile(tmp_path):
    """What `make phoenix` runs, in a throwaway git + DVC repository with one stage that reads params."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{cmd}:\n{out.stdout}\n{out.stderr}"
        return out

    shutil.copy(ROOT / "params.yaml", tmp_path)
    (tmp_path / "params").mkdir()
    shutil.copy(PROFILE, tmp_path / "params")
    (tmp_path / "work.py").write_text(WORK)
    stage = {"cmd": "python work.py", "deps": ["work.py"], "params": ["seed", "data", "model", "teacher", "kd"],
             "outs": [{"seen.json": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"work": stage}}))
    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.com")
    run("git", "config", "user.name", "test")
    run("dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    run(sys.executable, "-m", "signkd.profiles", "params/phoenix2014.yaml", "-n", "phoenix")
    seen = yaml.safe_load((tmp_path / "seen.json").read_text())
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert seen == {"dataset": "phoenix2014", "backbone": "resnet18", "milestones": [20, 35],
                    "alpha": base["kd"]["alpha"], "seed": base["seed"]}
    assert "phoenix" in run("dvc", "exp", "list", "--name-only").stdout


def test_a_bad_profile_is_rejected_before_dvc_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  video_backbone: resnet50\n")
    with pytest.raises(ParamsError, match="model.video_backbone"):
        check(bad, ROOT / "params.yaml")


def _phoenix_batch(params, frames=(5, 4)) -> dict[str, torch.Tensor]:
    """Two videos of a few frames at the profile's input sizes, one gloss each (CTC needs T // 4 >= 1)."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i, t in enumerate(frames):
        tensors = {
            "video": torch.randint(0, 256, (t, 3, params.model.frame_height, params.model.frame_width), generator=g,
                                   dtype=torch.uint8),
            "keypoints": torch.randn(t, keypoint_dim(params), generator=g),
            "flow": torch.randn(t, 2, params.flow.height, params.flow.width, generator=g),
        }
        items.append(Item(f"v{i}", (f"GLOSS{i}",), [i + 1], tensors))
    return collate(items)


MODELS = [f"teacher-{f}" for f in FUSIONS] + ["student-keypoints", "student-video"]


@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_on_a_phoenix_shaped_batch(params, name):
    vocab = _phoenix_vocab()
    kind, variant = name.split("-")
    if kind == "teacher":
        config = teacher_config(params, keypoint_dim(params), vocab).with_architecture(fusion=variant)
    else:
        config = student_config(params, keypoint_dim(params), vocab).with_architecture(modality=variant)
    set_seed(0)
    model = build_model(config).train()
    batch = _phoenix_batch(params)
    out = model(batch)
    assert out.seq_logits.shape == (2, 1, PHOENIX_CLASSES) and out.lengths.tolist() == [1, 1]
    loss, _ = trainer.ctc_loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    if "video" in model.modalities:
        conv1 = next(p for n, p in model.named_parameters() if n.endswith("backbone.conv1.weight"))
        assert conv1.grad.abs().sum() > 0  # the ResNet-18 stream learns


def _torchvision_resnet18_keys() -> list[str]:
    """torchvision's resnet18 state-dict names, written out from its documented module layout."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{b}" for b in bn)]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight", *(f"{p}.bn1.{b}" for b in bn), f"{p}.conv2.weight", *(f"{p}.bn2.{b}" for b in bn)]
            if layer > 1 and block == 0:
                keys += [f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{b}" for b in bn)]
    return keys + ["fc.weight", "fc.bias"]


def test_resnet18_has_torchvisions_names_shapes_and_size():
    model = ResNet18()
    state = model.state_dict()
    assert sorted(state) == sorted(_torchvision_resnet18_keys())
    assert count_parameters(model) == 11_689_512  # torchvision's ResNet18_Weights.IMAGENET1K_V1 num_params
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer3.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert state["fc.weight"].shape == (1000, 512)
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "wrapped"])
def test_local_torchvision_weights_initialise_the_video_stream(tmp_path, fmt):
    torch.manual_seed(1)
    source = ResNet18().state_dict()
    path = tmp_path / f"resnet18.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in source.items()}, str(path))
    else:
        torch.save({"state_dict": source} if fmt == "wrapped" else source, path)
    config = student_spec(GLOSSES, 0, 16, dropout=0.0, modality="video", video_backbone="resnet18",
                          video_backbone_weights=str(path))
    model = build_model(config)
    loaded = model.encoder.backbone.state_dict()
    assert "fc.weight" not in loaded
    assert all(torch.equal(loaded[k], source[k]) for k in loaded)
    save_checkpoint(model, config, tmp_path / "ckpt")
    path.unlink()  # a saved checkpoint is rebuilt without the ImageNet file
    again, _ = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(again.encoder.backbone.conv1.weight, source["conv1.weight"])


def test_weights_that_are_not_torchvisions_resnet18_are_refused(tmp_path):
    state = ResNet18().state_dict()
    state["layer1.0.conv_1.weight"] = state.pop("layer1.0.conv1.weight")
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match="not a torchvision resnet18 state dict"):
        VideoStudent(16, 6, video_backbone="resnet18", backbone_weights=str(tmp_path / "renamed.pth"))
    with pytest.raises(FileNotFoundError, match="video_backbone_weights"):
        VideoStudent(16, 6, video_backbone="resnet18", backbone_weights=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("model_keys, needle", [
    ({"video_backbone_weights": "w.pth"}, "needs video_backbone: resnet18"),
    ({"video_backbone": "resnet18", "video_backbone_weights": "https://x/r.pth"}, "never downloaded"),
])
def test_backbone_params_are_checked(model_keys, needle):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update(model_keys)
    with pytest.raises(ParamsError, match=needle):
        parse_params(raw)


@pytest.mark.parametrize("teacher_keys", [{"schedule": "multistep"}, {"schedule": "multistep", "milestones": [5, 3]},
                                          {"milestones": [0]}, {"milestones": [10_000]}])
def test_bad_milestones_are_rejected(teacher_keys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["teacher"].update(teacher_keys)
    with pytest.raises(ParamsError, match="teacher"):
        parse_params(raw)


def test_multistep_schedule_decays_at_the_milestone_epochs():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1e-3)
    cfg = trainer.TrainConfig(epochs=6, lr=1e-3, batch_size=1, seed=0, schedule="multistep", milestones=(2, 4), gamma=0.2)
    scheduler = trainer._scheduler(optimizer, cfg, steps_per_epoch=3)
    lrs = []
    for _ in range(6 * 3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0::3] == pytest.approx([1e-3, 1e-3, 2e-4, 2e-4, 4e-5, 4e-5])


def test_resnet_stream_is_padding_independent():
    """As every frame encoder: the same video gives the same output alone and in a padded batch, and
    padding never reaches BatchNorm's training statistics (only valid frames enter the ResNet)."""
    torch.manual_seed(0)
    model = VideoStudent(16, 6, dropout=0.0, video_backbone="resnet18")
    items = sorted(toy_items(6, with_video=True, seed=3), key=lambda it: it.num_frames)
    short, longest = items[0], items[-1]
    model.eval()
    with torch.no_grad():
        alone, batched = model(collate([short])), model(collate([longest, short]))
    n = int(alone.lengths[0])
    torch.testing.assert_close(batched.seq_logits[1, :n], alone.seq_logits[0, :n], atol=1e-5, rtol=1e-4)
    model.train()
    batch = collate([longest, short])
    model(batch)
    stats = model.encoder.backbone.bn1.running_mean.clone()
    model.encoder.backbone.bn1.reset_running_stats()
    padded = dict(batch, video=torch.cat([batch["video"], torch.zeros_like(batch["video"][:, :8])], dim=1))
    model(padded)
    torch.testing.assert_close(model.encoder.backbone.bn1.running_mean, stats)


def test_amp_training_path_runs_in_half_precision(monkeypatch):
    """The CUDA AMP path (autocast + GradScaler) with CPU bfloat16 standing in for float16: every
    block must accept half-precision activations (BatchNorm statistics stay float32) and the
    scaler must step the optimizer. oneDNN's CPU LSTM has no half-precision kernel, hence its flag."""
    assert trainer.amp_dtype(torch.device("cpu")) is None and trainer.amp_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(trainer, "amp_dtype", lambda device: torch.bfloat16)
    vocab = toy_vocab()
    set_seed(0)
    model = MultiModalTeacher(12, 16, vocab.num_classes, fusion="attention", cnn_width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = trainer.TrainConfig(epochs=2, lr=1e-2, batch_size=6, seed=0, decoding=DecodeConfig("greedy"))
    with torch.backends.mkldnn.flags(enabled=False):
        result = trainer.train(model, toy_items(12, seed=1, with_video=True), toy_items(2, seed=2, with_video=True),
                               vocab, cfg)
    losses = [h["train_loss"] for h in result.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def _reference_resnet18(state: dict, x: torch.Tensor) -> torch.Tensor:
    """torchvision's ResNet-18 forward (eval mode), written from its definition with functional
    ops over a state dict: the oracle the hand-written module must equal."""
    import torch.nn.functional as F

    def bn(t, p):
        return F.batch_norm(t, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"], state[f"{p}.bias"],
                            training=False, eps=1e-5)

    t = F.max_pool2d(F.relu(bn(F.conv2d(x, state["conv1.weight"], stride=2, padding=3), "bn1")), 3, stride=2, padding=1)
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            stride = 2 if layer > 1 and block == 0 else 1
            out = F.relu(bn(F.conv2d(t, state[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
            out = bn(F.conv2d(out, state[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in state:
                t = bn(F.conv2d(t, state[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            t = F.relu(out + t)
    return F.linear(t.mean(dim=(2, 3)), state["fc.weight"], state["fc.bias"])


def test_resnet18_computes_torchvisions_function():
    """Golden output: with random weights and batch-norm statistics, the module's logits equal the
    functional reference's (a wrong stride, a missing ReLU or residual, or a swapped BN fails)."""
    torch.manual_seed(0)
    model = ResNet18(num_classes=7).eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
        for name, param in model.named_parameters():
            if ".bn" in name or name.startswith("bn") or "downsample.1" in name:
                param.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        got = model(x)
        want = _reference_resnet18(dict(model.state_dict()), x)
    assert got.shape == (2, 7)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
