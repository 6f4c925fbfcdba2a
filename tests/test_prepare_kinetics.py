"""tools/prepare_kinetics.py: a Kinetics-400 release (annotation CSVs + video folders) to lists,
missing and unreadable videos reported, re-encoding (--resize) resumable after a kill."""

from __future__ import annotations

import csv
import hashlib
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from resformer_video.datasets.decoders import open_video
from resformer_video.datasets.lists import load_split
from resformer_video.datasets.prepare_kinetics import (
    PrepareError,
    ResizeSettings,
    output_size,
    read_annotations,
    reencode_video,
)
from resformer_video.datasets.synthetic import write_mp4
from resformer_video.utils.atomic import is_temp_file

from conftest import REPO_ROOT

PREPARE_MAIN = runpy.run_path(str(REPO_ROOT / "tools" / "prepare_kinetics.py"))["main"]
# Labels in the standard Kinetics-400 order (the shipped class-names file, 0-based).
ABSEILING, FOOTBALL, HEAD, YOGA, ZUMBA = 0, 208, 196, 398, 399
VFR_TIMES = [0.0, 0.1, 0.25, 0.3, 0.42, 0.5, 0.61, 0.75, 0.8, 0.95]


def _frames(seed: int, count: int = 10, height: int = 40, width: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header] + rows) + "\n")


@pytest.fixture()
def release(tmp_path) -> Path:
    """A tiny Kinetics release: train (a quoted class with a variable-frame-rate video, a
    ``{youtube_id}.mp4`` copy, a missing video, a corrupt one), val (in a class sub-folder, a class
    with an apostrophe), test (a CSV without labels)."""
    root = tmp_path / "k400"
    labelled = "label,youtube_id,time_start,time_end,split"
    _csv(
        root / "annotations" / "train.csv",
        labelled,
        [
            '"passing American football (in game)",aaa,10,20,train',
            "abseiling,-bb,0,10,train",
            "zumba,ccc,5,15,train",
            "yoga,ddd,1,11,train",
        ],
    )
    _csv(root / "annotations" / "val.csv", labelled, ['"massaging person\'s head",eee,3,13,val'])
    _csv(root / "annotations" / "test.csv", "youtube_id,time_start,time_end,split", ["fff,0,10,test"])
    write_mp4(str(root / "train" / "aaa_000010_000020.mp4"), _frames(0), 10, timestamps=VFR_TIMES)
    write_mp4(str(root / "train" / "-bb.mp4"), _frames(1), 25)
    (root / "train" / "ddd_000001_000011.mp4").write_bytes((root / "train" / "-bb.mp4").read_bytes()[:300])
    write_mp4(str(root / "val" / "massaging person's head" / "eee_000003_000013.mp4"), _frames(2), 30)
    write_mp4(str(root / "test" / "fff_000000_000010.mp4"), _frames(3, height=48, width=40), 12)
    return root


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _report(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "prepare_report.csv", newline="") as handle:
        return {row["youtube_id"]: row for row in csv.DictReader(handle)}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(root: Path, out: Path, *flags: str, progress: bool = False) -> int:
    return PREPARE_MAIN(["--root", str(root), "--out", str(out), *flags] + ([] if progress else ["--no-progress"]))


def test_lists_hold_readable_videos_with_standard_labels(release, tmp_path, capsys):
    out = tmp_path / "lists"
    before = _hashes(release)
    assert _run(release, out, progress=True) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "train: check: 3/3 (100%), 1 unreadable" in captured.err
    assert _lines(out / "train.csv") == [f"train/aaa_000010_000020.mp4 {FOOTBALL}", f"train/-bb.mp4 {ABSEILING}"]
    assert _lines(out / "val.csv") == [f"val/massaging person's head/eee_000003_000013.mp4 {HEAD}"]
    assert not (out / "test.csv").exists()
    assert _lines(out / "test_videos.txt") == ["test/fff_000000_000010.mp4"]
    report = _report(out)
    assert sorted(report) == ["ccc", "ddd"]
    assert (report["ccc"]["split"], report["ccc"]["status"], report["ccc"]["label"]) == ("train", "missing", "zumba")
    assert report["ddd"]["status"] == "unreadable" and "ddd_000001_000011.mp4" in report["ddd"]["error"]
    # the lists load as training reads them (400 classes, paths under DATA.PATH_PREFIX)
    train = load_split(str(out), "train", path_prefix=str(release), num_classes=400)
    assert train.labels == [FOOTBALL, ABSEILING] and all(os.path.isfile(p) for p in train.paths)
    assert train.class_names[FOOTBALL] == "passing American football (in game)"
    assert "| train | 4 | 3 | 1 | 1 | 2 |" in text and "| test | 1 | 1 | 0 | 0 | 1 |" in text
    assert (
        f"python tools/run_net.py --cfg configs/k400_resformer_b.yaml DATA.PATH_TO_DATA_DIR {out} "
        f"DATA.PATH_PREFIX {release} MODEL.PRETRAINED /path/to/imagenet_vit_b16.pth TEST.SPLIT val"
    ) in text
    assert _hashes(release) == before  # the download is only read


def test_unknown_class_is_an_error_naming_it(release, tmp_path, capsys):
    (release / "annotations" / "val.csv").write_text(
        'label,youtube_id,time_start,time_end,split\nabseiling,eee,3,13,val\n"playing quidditch",ggg,0,10,val\n'
    )
    out = tmp_path / "lists"
    assert _run(release, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert "val.csv" in err and "'playing quidditch' (line 3)" in err
    assert not (out / "train.csv").exists()  # every CSV is read before any video is touched


def test_annotations_quoted_or_not_and_errors(tmp_path):
    index = {"abseiling": 0, "passing American football (in game)": 208}
    path = tmp_path / "a.csv"
    _csv(
        path,
        "label,youtube_id,time_start,time_end,split,is_cc",
        ['"abseiling",x1,0,10,train,0', "passing American football (in game),x2,7.0,17,train,1"],
    )
    clips, labelled = read_annotations(str(path), index)
    assert labelled and [(c.youtube_id, c.time_start, c.time_end, c.label) for c in clips] == [
        ("x1", 0, 10, 0),
        ("x2", 7, 17, 208),
    ]
    assert clips[1].clip_name == "x2_000007_000017"
    _csv(path, "label,youtube_id,time_start,split", ["abseiling,x1,0,train"])
    with pytest.raises(PrepareError, match="missing time_end"):
        read_annotations(str(path), index)
    _csv(path, "label,youtube_id,time_start,time_end,split", ["abseiling,x1,zero,10,train"])
    with pytest.raises(PrepareError, match=r"a.csv:2: time_start 'zero'"):
        read_annotations(str(path), index)


def test_output_size_short_side_never_upscaled_even():
    assert output_size(720, 1280, 320) == (320, 568)
    assert output_size(1280, 720, 320) == (568, 320)
    assert output_size(256, 340, 320) == (256, 340)  # never upscaled
    assert output_size(41, 47, 320) == (40, 48)  # even for yuv420p
    assert output_size(40, 48, 20) == (20, 24)


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        packets = sorted((p for p in container.demux(container.streams.video[0]) if p.size), key=lambda p: p.pts)
        return [i for i, packet in enumerate(packets) if packet.is_keyframe]


def _times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


RESIZE = ["--resize", "--short-side", "20", "--gop", "4"]


def test_resize_reencodes_keeping_timing(release, tmp_path, capsys):
    out = tmp_path / "k400_small"
    before = _hashes(release)
    resize = RESIZE
    assert _run(release, out, *resize) == 0
    text = capsys.readouterr().out
    videos = out / "videos"
    assert _lines(out / "train.csv") == [
        f"videos/train/aaa_000010_000020.mp4 {FOOTBALL}",
        f"videos/train/-bb_000000_000010.mp4 {ABSEILING}",
    ]
    assert _lines(out / "test_videos.txt") == ["videos/test/fff_000000_000010.mp4"]
    assert sorted(_report(out)) == ["ccc", "ddd"] and _report(out)["ddd"]["status"] == "unreadable"
    assert not (videos / "train" / "ddd_000001_000011.mp4").exists()
    vfr = videos / "train" / "aaa_000010_000020.mp4"
    assert _times(vfr) == pytest.approx(VFR_TIMES, abs=1e-4)  # each frame's timestamp kept
    assert _keyframes(vfr) == [0, 4, 8]
    settings = vfr.read_bytes()  # x264 writes its settings into the stream: tuned for fast decoding
    assert b"cabac=0" in settings and b"deblock=0" in settings and b"keyint=4 " in settings
    for rel, fps, size in [("train/-bb_000000_000010.mp4", 25, (20, 24)), ("test/fff_000000_000010.mp4", 12, (24, 20))]:
        with open_video(str(videos / rel), "pyav") as reader:
            assert (reader.num_frames, reader.fps) == (10, pytest.approx(fps))
            assert tuple(reader.get_frames([0]).shape[1:3]) == size
        with av.open(str(videos / rel)) as container:
            assert [s.type for s in container.streams] == ["video"]  # no audio
    assert "re-encoded (this run + earlier)" in text and "| train | 4 | 3 | 1 | 1 | 2 (2 + 0) | 2 |" in text
    assert f"DATA.PATH_TO_DATA_DIR {out} DATA.PATH_PREFIX {out}" in text
    assert _hashes(release) == before

    # resumed after a stop: a finished output is kept as it is, a leftover temporary file removed,
    # the missing output re-encoded to the same bytes as before
    first = _hashes(videos)
    (videos / "train" / "-bb_000000_000010.mp4").unlink()
    (videos / "train" / ".-bb_000000_000010.tmp.999999.mp4").write_bytes(b"partial")
    kept = videos / "train" / "aaa_000010_000020.mp4"
    os.utime(kept, (1, 1))
    assert _run(release, out, *resize) == 0
    assert "| train | 4 | 3 | 1 | 1 | 2 (1 + 1) | 2 |" in capsys.readouterr().out
    assert _hashes(videos) == first and kept.stat().st_mtime == 1


@pytest.mark.slow
def test_resize_in_worker_processes_gives_the_same_files(release, tmp_path):
    assert _run(release, tmp_path / "here", *RESIZE) == 0
    assert _run(release, tmp_path / "workers", *RESIZE, "--workers", "2") == 0
    here, workers = _hashes(tmp_path / "here"), _hashes(tmp_path / "workers")
    assert len(here) == 8 and here == workers  # 4 videos, 3 lists and the report: the same bytes


def test_reencode_writes_rotated_video_upright(tmp_path):
    """A phone video tagged to be shown rotated is re-encoded upright (as training reads it) and
    scaled: its frames equal the original's upright frames resized."""
    import torch.nn.functional as F

    src, dst = tmp_path / "portrait.mp4", tmp_path / "out" / "portrait.mp4"
    yy, xx = np.mgrid[0:40, 0:48]
    ramp = np.stack([xx * 5, yy * 6, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    write_mp4(str(src), np.repeat(ramp[None], 10, axis=0), 10, rotation=90)
    assert reencode_video(str(src), str(dst), ResizeSettings(short_side=24, gop=2)) == 10
    with open_video(str(src), "pyav") as original, open_video(str(dst), "pyav") as copy:
        upright = original.get_frames([0]).permute(0, 3, 1, 2).float()
        resized = copy.get_frames([0]).permute(0, 3, 1, 2).float()
    assert tuple(upright.shape[2:]) == (48, 40) and tuple(resized.shape[2:]) == (28, 24)
    expected = F.interpolate(upright, size=(28, 24), mode="bilinear", antialias=True)
    assert (resized - expected).abs().mean() < 8
    assert (resized - expected.flip(2)).abs().mean() > 20  # not upside down


def test_reencode_failure_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    from resformer_video.datasets.decoders import VideoDecodeError

    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        reencode_video(str(bad), str(tmp_path / "out" / "bad.mp4"), ResizeSettings())
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.slow
def test_resize_killed_half_way_then_resumed(tmp_path):
    """A real kill (SIGKILL while a video is being encoded), then the same command again."""
    root = tmp_path / "k400"
    names = [f"v{i:02d}" for i in range(4)]
    _csv(
        root / "annotations" / "train.csv",
        "label,youtube_id,time_start,time_end,split",
        [f"abseiling,{name},0,10,train" for name in names],
    )
    for i, name in enumerate(names):
        write_mp4(str(root / "train" / f"{name}_000000_000010.mp4"), _frames(i, 30, 96, 128), 30)
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(REPO_ROOT / "tools" / "prepare_kinetics.py"),
        "--root",
        str(root),
        "--out",
        str(out),
        "--splits",
        "train",
        "--resize",
        "--short-side",
        "96",
        "--preset",
        "medium",
        "--no-progress",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder, deadline = out / "videos" / "train", time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in folder.glob("*.mp4") if not is_temp_file(p.name)] if folder.is_dir() else []
        if done and list(folder.glob(".*.tmp.*")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed half-way"
    finished = sorted(p.name for p in folder.glob("*.mp4") if not is_temp_file(p.name))
    assert 1 <= len(finished) < len(names) and list(folder.glob(".*.tmp.*"))
    kept = {name: (folder / name).stat().st_mtime_ns for name in finished}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(names)} ({len(names) - len(finished)} + {len(finished)})" in result.stdout
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}_000000_000010.mp4" for name in names]
    assert {name: (folder / name).stat().st_mtime_ns for name in finished} == kept
    assert len(_lines(out / "train.csv")) == len(names)
