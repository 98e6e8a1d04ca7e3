"""Fuzzing every parser a user's file reaches (Hypothesis). One property everywhere: an input either
works or raises the project's one-line error type (`InputError`); never another exception, never a
partial output.

CI runs a bounded number of examples per fuzzer (profile `ci`); for a longer hunt:
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz_inputs.py
"""

from __future__ import annotations

import copy
import io
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signkd.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BASE = yaml.safe_load((ROOT / "params.yaml").read_text())
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
)


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in tree.items():
        out += _leaves(value, prefix + (key,)) if isinstance(value, dict) and value else [prefix + (key,)]
    return out


LEAVES = _leaves(BASE)


@st.composite
def mutated_params(draw) -> str:
    """params.yaml with a few keys replaced, deleted or added, sometimes with raw bytes spliced in."""
    params = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(LEAVES))
        node = params
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        else:
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = draw(SCALARS)
            elif action == "delete":
                node.pop(path[-1], None)
            else:
                node[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
    text = yaml.safe_dump(params, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=6)) + text[at:]
    return text


@given(text=mutated_params())
def test_params_either_validate_or_fail_with_one_error(text):
    from signkd.cli import main
    from signkd.param_check import main as check_stage
    from signkd.params import ParamsError, load_params

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_params(path)
            expected = 0
        except ParamsError as err:
            assert str(err).strip(), "an error says what is wrong"
            expected = 2
        assert main(["check-params", str(path)]) == expected  # the CLI takes the same path
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["params.yaml"], "checking writes nothing"
        here = os.getcwd()
        os.chdir(tmp)  # the check_params stage writes its marker relative to the repository root
        try:
            assert check_stage("params.yaml") == (0 if expected == 0 else 1)  # and so does the stage
        finally:
            os.chdir(here)
        written = sorted(p.name for p in Path(tmp).iterdir())
        assert written == (["params.yaml", "reports"] if expected == 0 else ["params.yaml"]), "a failed check writes nothing"


@given(raw=st.binary(max_size=300) | st.text(alphabet=st.sampled_from("ab|\n\r\"' \t\x00é,;"), max_size=200))
def test_annotation_files_either_read_or_fail_with_one_error(raw):
    from signkd.data.common import read_annotation

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.corpus.csv"
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        try:
            rows = read_annotation(path, ("id", "folder"))
        except InputError as err:
            assert "\n" not in str(err).strip()
        else:
            assert all({"id", "folder"} <= set(row) for _, row in rows)


CSL_CELL = st.text(alphabet=st.sampled_from("S0_P1T2 |x\u4e2d"), max_size=12)


@given(video_map=st.lists(st.tuples(CSL_CELL, CSL_CELL, CSL_CELL, CSL_CELL), max_size=5),
       splits=st.lists(st.tuples(CSL_CELL, st.sampled_from(["train", "dev", "test", "val", ""])), max_size=5))
def test_csl_daily_label_files_either_read_or_fail_with_one_error(video_map, splits):
    from signkd.data.csl_daily import read_csl_daily

    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp) / "sentence_label"
        labels.mkdir()
        rows = ["index|name|length|gloss|char|word|postag"] + [f"{i}|{n}|{ln}|{g}|{c}||" for i, (n, ln, g, c) in
                                                              enumerate(video_map)]
        (labels / "video_map.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (labels / "split_1.txt").write_text("\n".join(["name|split"] + [f"{n}|{sp}" for n, sp in splits]) + "\n",
                                             encoding="utf-8")
        (Path(tmp) / "sentence" / "frames_512x512").mkdir(parents=True)
        try:
            read_csl_daily(tmp)
        except InputError as err:
            assert str(err).strip()


CSV_CELLS = st.text(alphabet=st.sampled_from("abc./_- |\"é"), max_size=10)


@given(rows=st.lists(st.tuples(CSV_CELLS, CSV_CELLS, st.sampled_from(["train", "dev", "test", "x", ""])), max_size=6),
       header=st.sampled_from(["video|glosses|split", "video|split", "glosses|video|split|id", ""]))
def test_a_custom_dataset_csv_either_reads_or_fails_with_one_error(rows, header):
    from signkd.data.custom import read_custom

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "custom"
        root.mkdir()
        (root / "clip").mkdir()
        (root / "clip" / "0.png").write_bytes(b"not an image")
        lines = [header] + ["|".join(r) for r in rows]
        (root / "annotations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            read_custom(root)
        except InputError as err:
            assert str(err).strip()


ARRAYS = st.dictionaries(
    st.sampled_from(["landmarks", "mask", "frame_size", "other"]),
    st.tuples(st.sampled_from(["float32", "float64", "bool", "int32", "U3"]),
              st.lists(st.integers(0, 80), min_size=0, max_size=3)),
    max_size=4,
)


@given(spec=ARRAYS, scramble=st.booleans())
def test_precomputed_keypoint_files_are_taken_or_refused_with_one_error(spec, scramble, tmp_path_factory):
    from signkd.data.custom import import_keypoints
    from signkd.data.manifest import Sample

    work = tmp_path_factory.mktemp("kp")
    frames = work / "clip"
    frames.mkdir()
    import cv2

    for t in range(5):
        cv2.imwrite(str(frames / f"{t}.png"), np.zeros((8, 8, 3), np.uint8))
    source = work / "keypoints"
    source.mkdir()
    arrays = {}
    for name, (dtype, shape) in spec.items():
        arrays[name] = np.zeros(shape, dtype=dtype) if dtype != "U3" else np.full(shape, "abc")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    if scramble and data:
        data = data[: len(data) // 2]
    (source / "clip.npz").write_bytes(data)
    cache = work / "cache"
    sample = Sample("clip", "train", str(frames), "s", 5, ("A",))
    try:
        import_keypoints([sample], source, cache)
    except InputError as err:
        assert str(err).strip()
        assert not (cache / "clip.npz").exists(), "a refused file leaves nothing in the cache"


OPTIONS = ["--fps", "--beam-width", "--threads", "--decoder", "--overlay", "--json", "--no-correction", "--model"]


@given(args=st.lists(st.one_of(st.sampled_from(OPTIONS), st.text(max_size=8)), max_size=6))
def test_recognize_arguments_either_parse_or_fail_with_one_line(args, tmp_path_factory, capsys):
    from signkd.cli import main

    work = tmp_path_factory.mktemp("cli")
    capsys.readouterr()  # capsys is shared by the examples: start each from an empty buffer
    try:
        code = main(["recognize", str(work / "clip.mp4"), "--model", str(work / "none.onnx"), *args])
    except SystemExit as exit_:  # argparse: a bad argument
        code = exit_.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2)
    if code:
        assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in work.iterdir()) == [], "nothing is written for a failed call"


MEMBER = st.one_of(
    st.sampled_from(["a.txt", "dir/b.txt", "../up.txt", "/abs.txt", "dir/../../up2.txt", "./c.txt", "d/./e.txt"]),
    st.text(alphabet=st.sampled_from("ab./\\"), min_size=1, max_size=10),
)


@given(members=st.lists(st.tuples(MEMBER, st.sampled_from(["file", "dir", "symlink", "hardlink"]),
                                  st.sampled_from(["x", "../../etc", "/etc/passwd", "a.txt"])), max_size=5))
def test_archive_members_unpack_inside_or_fail_with_one_error(members, tmp_path_factory):
    from signkd.data.download import unpack

    work = tmp_path_factory.mktemp("tar")
    archive = work / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
                info.linkname = target
                tar.addfile(info)
    dest = work / "out"
    try:
        unpack(archive, dest, progress=False)
    except InputError as err:
        assert str(err).strip()
        assert not dest.exists(), "a refused archive leaves no partial folder"
    assert sorted(p.name for p in work.iterdir()) in (["data.tar.gz"], ["data.tar.gz", "out"])
    if dest.exists():
        for path in dest.rglob("*"):
            inside = os.path.realpath(path).startswith(os.path.realpath(dest) + os.sep)
            assert inside or path.is_symlink(), path
