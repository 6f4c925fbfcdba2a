"""tools/check_videos.py: every video of a list decoded up front; failures reported, not fatal."""

import json
import os
import runpy
import shutil

import pytest

from conftest import LOADABLE_BACKENDS, REPO_ROOT, SYNTH_SIZE, encode_levels_video, make_truncated_faststart_video

CHECK_MAIN = runpy.run_path(str(REPO_ROOT / "tools" / "check_videos.py"))["main"]


@pytest.fixture()
def mixed_dataset(synthetic_data_dir, tmp_path):
    """A train list of two good videos, a corrupt one and a missing one."""
    good = sorted((synthetic_data_dir / "videos" / "moving_left").glob("*.mp4"))[:2]
    for i, video in enumerate(good):
        shutil.copy(video, tmp_path / f"good{i}.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(good[0].read_bytes()[:300])
    lines = ["good0.mp4 0", "corrupt.mp4 1", "missing.mp4 2", "good1.mp4 3"]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_check_reports_bad_videos_and_fails(mixed_dataset, capsys, workers):
    report = mixed_dataset / "report.json"
    code = CHECK_MAIN(
        [
            "--splits",
            "train",
            "--workers",
            str(workers),
            "--report",
            str(report),
            "NUM_GPUS",
            "0",
            "MODEL.NUM_CLASSES",
            "4",
            "DATA.PATH_TO_DATA_DIR",
            str(mixed_dataset),
            "DATA.PATH_PREFIX",
            str(mixed_dataset),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "train: 2 of 4 videos decode, 2 failed" in out
    data = json.loads(report.read_text())
    (summary,) = data["summaries"]
    assert sorted(f["path"].split("/")[-1] for f in summary["failed"]) == ["corrupt.mp4", "missing.mp4"]
    videos = data["videos"]["train"]
    assert [v["path"].split("/")[-1] for v in videos] == [
        "good0.mp4",
        "corrupt.mp4",
        "missing.mp4",
        "good1.mp4",
    ]  # list order
    for video in (videos[0], videos[3]):
        assert video["ok"] and video["num_frames"] > 10 and video["height"] == video["width"] == SYNTH_SIZE
    assert "video file not found" in videos[2]["error"]


def test_check_of_test_reads_the_list_test_split_names(mixed_dataset, capsys):
    """As the test dataset does: ``--splits test`` checks TEST.SPLIT's list (here train.csv); the
    report goes next to the lists by default, not into OUTPUT_DIR."""
    output_dir = mixed_dataset / "output"
    code = CHECK_MAIN(
        [
            "--splits",
            "test",
            "NUM_GPUS",
            "0",
            "OUTPUT_DIR",
            str(output_dir),
            "MODEL.NUM_CLASSES",
            "4",
            "DATA.PATH_TO_DATA_DIR",
            str(mixed_dataset),
            "DATA.PATH_PREFIX",
            str(mixed_dataset),
            "TEST.SPLIT",
            "train",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "test: 2 of 4 videos decode, 2 failed" in out
    report = mixed_dataset / "video_check.json"
    assert f"report: {report}" in out and not output_dir.exists()
    assert len(json.loads(report.read_text())["videos"]["test"]) == 4


def test_check_refuses_an_unwritable_report_folder_up_front(mixed_dataset, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != str(mixed_dataset) and real_access(path, mode))
    code = CHECK_MAIN(
        [
            "--splits",
            "train",
            "NUM_GPUS",
            "0",
            "MODEL.NUM_CLASSES",
            "4",
            "DATA.PATH_TO_DATA_DIR",
            str(mixed_dataset),
            "DATA.PATH_PREFIX",
            str(mixed_dataset),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""  # nothing was checked
    assert captured.err.strip().splitlines() == [
        f"error: cannot write the report {mixed_dataset / 'video_check.json'}: {mixed_dataset} is not "
        "writable (pass --report PATH)"
    ]


@pytest.mark.skipif("decord" not in LOADABLE_BACKENDS, reason="decord is not installed here")
@pytest.mark.parametrize("fallback, ok", [("pyav", True), ("", False)])
def test_check_reads_av1_with_the_fallback_decoder(tmp_path, capsys, fallback, ok):
    """decord cannot decode AV1: with DATA.DECODER_FALLBACK pyav (the default) the video is read,
    as training would read it, and the report says by which decoder; without it, it fails."""
    encode_levels_video(tmp_path / "av1.mkv", "libsvtav1")
    (tmp_path / "train.csv").write_text("av1.mkv 0\n")
    report = tmp_path / "report.json"
    code = CHECK_MAIN(
        [
            "--splits",
            "train",
            "--report",
            str(report),
            "NUM_GPUS",
            "0",
            "DATA.PATH_TO_DATA_DIR",
            str(tmp_path),
            "DATA.PATH_PREFIX",
            str(tmp_path),
            "DATA.DECODER",
            "decord",
            "DATA.DECODER_FALLBACK",
            fallback,
        ]
    )
    capsys.readouterr()
    (video,) = json.loads(report.read_text())["videos"]["train"]
    assert (code, video["ok"]) == ((0, True) if ok else (1, False))
    if ok:
        assert video["backend"] == "pyav" and video["num_frames"] == 20
    else:
        assert "DATA.DECODER pyav or torchcodec" in video["error"]


def test_check_of_a_missing_list_is_a_one_line_error(tmp_path, capsys):
    code = CHECK_MAIN(["--splits", "val", "NUM_GPUS", "0", "DATA.PATH_TO_DATA_DIR", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "val.csv" in err


@pytest.mark.parametrize("decoder", [d for d in ("decord", "pyav") if d in LOADABLE_BACKENDS])
def test_check_names_a_truncated_file_with_its_index_first(tmp_path, capsys, decoder):
    """The index of a cut web-style MP4 claims every frame; the check decodes to the end and names
    the file as truncated instead of calling it fine."""
    make_truncated_faststart_video(tmp_path / "cut.mp4")
    (tmp_path / "train.csv").write_text("cut.mp4 0\n")
    report = tmp_path / "report.json"
    code = CHECK_MAIN(
        [
            "--splits",
            "train",
            "--report",
            str(report),
            "NUM_GPUS",
            "0",
            "DATA.PATH_TO_DATA_DIR",
            str(tmp_path),
            "DATA.PATH_PREFIX",
            str(tmp_path),
            "DATA.DECODER",
            decoder,
            "DATA.DECODER_FALLBACK",
            "pyav",
        ]
    )
    out = capsys.readouterr().out
    (video,) = json.loads(report.read_text())["videos"]["train"]
    assert code == 1 and not video["ok"] and "train: 0 of 1 videos decode, 1 failed" in out
    assert "cut.mp4" in video["error"] and "truncated" in video["error"]
