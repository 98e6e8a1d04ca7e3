import copy
from pathlib import Path

import pytest
import yaml

from signkd.params import ParamsError, flatten, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repository_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert 0 <= params.kd.alpha <= 1
    flat = flatten(params)
    assert "kd.alpha" in flat and "data.synthetic.num_train" in flat and "validate.min_frames" in flat


@pytest.mark.parametrize(
    "section, key, value, needle",
    [
        ("kd", "alpha", 1.5, "kd.alpha"),
        ("kd", "temperature", 0, "kd.temperature"),
        ("teacher", "fusion", "sideways", "teacher.fusion"),
        ("keypoints", "workers", 0, "keypoints.workers"),
        ("decode", "beam_width", "five", "decode.beam_width"),
    ],
)
def test_bad_value_names_the_key(raw, section, key, value, needle):
    raw[section][key] = value
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert needle in str(err.value)


def test_unknown_key_is_rejected(raw):
    raw["kd"]["alpah"] = 0.5
    with pytest.raises(ParamsError, match=r"kd\.alpah: unknown key"):
        parse_params(raw)


def test_cross_field_checks(raw):
    bad = copy.deepcopy(raw)
    bad["data"]["synthetic"]["min_signs"] = 5
    bad["data"]["synthetic"]["max_signs"] = 2
    with pytest.raises(ParamsError, match="min_signs"):
        parse_params(bad)
    bad = copy.deepcopy(raw)
    bad["model"]["keypoint_parts"] = ["pose", "pose"]
    with pytest.raises(ParamsError, match="keypoint_parts"):
        parse_params(bad)
    bad = copy.deepcopy(raw)
    bad["student"].update(modality="video", frame_stride=2)  # a video student never runs MediaPipe
    with pytest.raises(ParamsError, match="frame_stride"):
        parse_params(bad)
    bad = copy.deepcopy(raw)
    bad["tune"]["temperature_min"] = 9.0
    with pytest.raises(ParamsError, match="temperature_min"):
        parse_params(bad)


def test_missing_file_says_where(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_a_seed_numpy_cannot_take_is_refused_before_any_stage_runs(raw):
    raw["seed"] = 2**32  # NumPy's limit: prepare used to die on it after DVC had deleted its outputs
    with pytest.raises(ParamsError, match="seed"):
        parse_params(raw)
    raw["seed"] = 2**32 - 1
    assert parse_params(raw).seed == 2**32 - 1


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("seed: 1234", "seed: 1234\nseed: 7", 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"line 4: key 'seed' appears twice .*first on line 3"):
        load_params(tmp_path / "params.yaml")
    nested = (ROOT / "params.yaml").read_text().replace("  alpha: 0.7", "  alpha: 0.7\n  alpha: 0.5", 1)
    (tmp_path / "params.yaml").write_text(nested)
    with pytest.raises(ParamsError, match="key 'alpha' appears twice"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("url", ["ftp://host/a.tar.gz", "file:///data/a.tar.gz", "host/a.tar.gz", "https://"])
def test_a_download_url_the_downloader_cannot_fetch_is_refused(raw, url):
    raw["data"]["download"]["url"] = url
    with pytest.raises(ParamsError, match=r"data\.download.*http:// or https://"):
        parse_params(raw)
