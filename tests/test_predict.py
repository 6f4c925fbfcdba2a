"""tools/predict.py and resformer_video.inference.predictor on generated videos with a tiny checkpoint."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from resformer_video.datasets import build_test_transform, open_video, read_class_names
from resformer_video.datasets.sampling import sample_clip_indices
from resformer_video.inference.predictor import build_predictor, window_starts
from resformer_video.models import build_model
from resformer_video.utils.checkpoint import save_checkpoint

from conftest import (
    BOTH_PRECISIONS,
    SAME_PRECISION_TOLERANCE,
    make_cfg,
    make_index_video,
    make_truncated_faststart_video,
    reference_precision,
)

REPO = Path(__file__).resolve().parents[1]
PREDICT_MAIN = runpy.run_path(str(REPO / "tools" / "predict.py"))["main"]


@pytest.fixture(scope="module")
def tiny_checkpoint(synthetic_data_dir, tmp_path_factory):
    """A depth-2 resformer_tiny checkpoint (random weights, none zero) in the engine's format,
    with the config (3 spatial crops x 2 clips) and the dataset's class names."""
    cfg = make_cfg(synthetic_data_dir, TEST__NUM_SPATIAL_CROPS=3, TEST__NUM_ENSEMBLE_VIEWS=2, DATA__DECODER="pyav")
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    names = read_class_names(str(synthetic_data_dir / "classnames.json"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pyth"
    save_checkpoint(str(path), model, epoch=1, cfg_text=cfg.dump(), class_names=names)
    return path, model, names


def _videos(data_dir: Path, count: int) -> list:
    return sorted(str(p) for p in data_dir.rglob("*.mp4"))[:count]


def test_predict_json_gives_class_names_and_probabilities(tiny_checkpoint, synthetic_data_dir, capsys):
    path, _, names = tiny_checkpoint
    videos = _videos(synthetic_data_dir, 2)
    code = PREDICT_MAIN(["--checkpoint", str(path), *videos, "--topk", str(len(names)), "--json", "--device", "cpu"])
    results = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["video"] for r in results] == videos
    for result in results:
        probs = [s["prob"] for s in result["top"]]
        assert {s["class"] for s in result["top"]} == set(names)  # all classes, valid names
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert probs == sorted(probs, reverse=True)
        assert result["views_per_window"] == 6 and len(result["windows"]) == 1


def test_a_folder_stands_for_its_video_files(tiny_checkpoint, synthetic_data_dir, tmp_path, capsys):
    path, _, _ = tiny_checkpoint
    folder = synthetic_data_dir / "videos" / "moving_up"
    expected = sorted(str(p) for p in folder.glob("*.mp4"))
    code = PREDICT_MAIN(["--checkpoint", str(path), str(folder), "--json", "--device", "cpu"])
    assert code == 0 and [r["video"] for r in json.loads(capsys.readouterr().out)] == expected
    (tmp_path / "notes.txt").write_text("no videos here")
    assert PREDICT_MAIN(["--checkpoint", str(path), str(tmp_path), "--device", "cpu"]) == 2
    assert "no video files" in capsys.readouterr().err


def test_corrupt_video_is_reported_and_the_others_predicted(tiny_checkpoint, synthetic_data_dir, tmp_path, capsys):
    path, _, names = tiny_checkpoint
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00 not a video " * 64)
    good = _videos(synthetic_data_dir, 2)
    code = PREDICT_MAIN(["--checkpoint", str(path), good[0], str(bad), good[1], "--topk", "2", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0]
    for video in good:
        assert video in out
    top_lines = [line for line in out.splitlines() if line.strip().startswith("video")]
    assert len(top_lines) == 2
    for line in top_lines:  # "video : name p, name p"
        entries = line.split(":", 1)[1].split(",")
        assert all(entry.split()[0] in names and 0 < float(entry.split()[1]) <= 1 for entry in entries)


@pytest.mark.parametrize("precision", BOTH_PRECISIONS)
def test_one_view_prediction_equals_softmax_of_the_model(synthetic_data_dir, tmp_path, precision):
    """With 1 clip x 1 crop, the video's probabilities are softmax(model(clip)) of the centre clip,
    built here independently from the decoder, the sampler and the test transform, in the same
    precision (the predictor's default depends on the CPU, so it is pinned)."""
    cfg = make_cfg(synthetic_data_dir, DATA__DECODER="pyav")
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    ckpt = tmp_path / "one_view.pyth"
    save_checkpoint(str(ckpt), model, epoch=0, cfg_text=cfg.dump())
    video = _videos(synthetic_data_dir, 1)[0]
    pred = build_predictor(str(ckpt), device="cpu", precision=precision).predict(video, k=2)
    with open_video(video, "pyav") as reader:
        idx = sample_clip_indices(
            reader.num_frames, reader.fps, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS, 0, 1
        )
        clip = build_test_transform(cfg)(reader.get_frames(idx), 1)
    with torch.no_grad(), reference_precision(precision):
        expected = model(clip[None]).float().softmax(-1)[0]
    torch.testing.assert_close(pred.probs, expected, **SAME_PRECISION_TOLERANCE[precision])
    assert [s.index for s in pred.top] == expected.topk(2).indices.tolist()


def test_window_starts_cover_the_video():
    starts = window_starts(100, 30, 30)
    assert starts[0] == 0 and starts[-1] + 30 == 100
    assert all(0 < b - a <= 30 for a, b in zip(starts, starts[1:]))
    assert window_starts(20, 30, 30) == [0] and window_starts(30, 30, 10) == [0]


def test_long_video_gets_windows_whose_mean_is_the_video(tiny_checkpoint, tmp_path):
    path, _, _ = tiny_checkpoint
    video = make_index_video(tmp_path / "long.mp4", num_frames=60, fps=12.0)  # 5 s
    predictor = build_predictor(str(path), device="cpu", window_s=2.0, stride_s=1.5)
    pred = predictor.predict(str(video), k=3)
    assert len(pred.windows) == 3
    assert pred.windows[0].start_s == 0 and pred.windows[-1].end_s == pytest.approx(5.0)
    stacked = torch.stack([w.probs for w in pred.windows])
    torch.testing.assert_close(pred.probs, stacked.mean(0))
    torch.testing.assert_close(stacked.sum(-1), torch.ones(3), atol=1e-5, rtol=0)


def test_mismatched_checkpoint_gives_a_one_line_error(tiny_checkpoint, synthetic_data_dir, capsys):
    path, _, _ = tiny_checkpoint
    video = _videos(synthetic_data_dir, 1)[0]
    code = PREDICT_MAIN(["--checkpoint", str(path), video, "MODEL.DEPTH", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(path) in err and "MODEL.DEPTH" in err


def test_overrides_follow_the_videos_and_set_still_works(tiny_checkpoint, synthetic_data_dir, capsys):
    """Trailing KEY VALUE pairs (as run_net.py) change the config; the deprecated --set too, with a note."""
    path, _, _ = tiny_checkpoint
    videos = _videos(synthetic_data_dir, 2)
    code = PREDICT_MAIN(
        [
            "--checkpoint",
            str(path),
            *videos,
            "--json",
            "--device",
            "cpu",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "1",
        ]
    )
    results = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["video"] for r in results] == videos
    assert all(r["views_per_window"] == 1 for r in results)
    code = PREDICT_MAIN(
        ["--checkpoint", str(path), videos[0], "--json", "--device", "cpu", "--set", "TEST.NUM_SPATIAL_CROPS", "1"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)[0]["views_per_window"] == 2
    assert "--set KEY VALUE is deprecated" in err
    assert PREDICT_MAIN(["--checkpoint", str(path), videos[0], "DATA.NO_SUCH_KEY", "1"]) == 2
    assert "DATA.NO_SUCH_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # one convention for every tool: flags, inputs, then overrides
        PREDICT_MAIN(["--checkpoint", str(path), videos[0], "TEST.NUM_SPATIAL_CROPS", "1", "--device", "cpu"])
    assert info.value.code == 2
    assert "flags must come before the KEY VALUE overrides, found --device after them" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_real_clip_with_sliding_windows(tiny_checkpoint, realclips_dir, capsys):
    """bikes.mp4 (10 s, 640x272, 25 fps) in 4 s windows: every window and the video sum to 1."""
    path, _, names = tiny_checkpoint
    video = str(realclips_dir / "bikes.mp4")
    code = PREDICT_MAIN(
        [
            "--checkpoint",
            str(path),
            video,
            "--topk",
            str(len(names)),
            "--json",
            "--window",
            "4",
            "--device",
            "cpu",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "1",
        ]
    )
    (result,) = json.loads(capsys.readouterr().out)
    assert code == 0 and result["duration_s"] == pytest.approx(10.0, abs=0.1)
    assert len(result["windows"]) == 3 and result["windows"][-1]["end_s"] == pytest.approx(10.0, abs=0.1)
    for entry in [result] + result["windows"]:
        assert sum(s["prob"] for s in entry["top"]) == pytest.approx(1.0, abs=1e-4)


def test_bf16_prediction_matches_fp32_on_cpu(tiny_checkpoint, synthetic_data_dir):
    """bf16 autocast changes the probabilities (it ran) but keeps the top-1 and sums to 1."""
    path, _, _ = tiny_checkpoint
    video = _videos(synthetic_data_dir, 1)[0]
    one_view = ["TEST.NUM_SPATIAL_CROPS", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1"]
    full = build_predictor(str(path), opts=one_view, device="cpu", precision="fp32").predict(video)
    half = build_predictor(str(path), opts=one_view, device="cpu", precision="bf16").predict(video)
    assert half.probs.dtype == torch.float32 and not torch.equal(half.probs, full.probs)
    assert half.top[0].index == full.top[0].index
    torch.testing.assert_close(half.probs, full.probs, atol=2e-2, rtol=0)
    assert float(half.probs.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_gives_a_one_line_error(tiny_checkpoint, synthetic_data_dir, capsys):
    path, _, _ = tiny_checkpoint
    video = _videos(synthetic_data_dir, 1)[0]
    code = PREDICT_MAIN(["--checkpoint", str(path), video, "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines() == ["error: --device cuda: CUDA is not available (use --device cpu)"]


def test_fp16_on_cpu_gives_a_one_line_error(tiny_checkpoint, synthetic_data_dir, capsys):
    path, _, _ = tiny_checkpoint
    video = _videos(synthetic_data_dir, 1)[0]
    code = PREDICT_MAIN(["--checkpoint", str(path), video, "--device", "cpu", "--precision", "fp16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fp16" in err and "CPU" in err


def test_non_video_file_gives_one_line_naming_every_decoder(tiny_checkpoint, tmp_path, capfd):
    """A text file: one error line naming the file and each decoder tried with its reason; nothing
    from decord's FFmpeg reaches the terminal, and no hint suggests a decoder that was tried."""
    path, _, _ = tiny_checkpoint
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes, not a video\n" * 20)
    code = PREDICT_MAIN(
        [
            "--checkpoint",
            str(path),
            str(notes),
            "--device",
            "cpu",
            "DATA.DECODER",
            "decord",
            "DATA.DECODER_FALLBACK",
            "pyav",
        ]
    )
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 1 and out == "" and len(errors) == 1
    assert errors[0].startswith(f"error: {notes}: not a video any decoder could read (tried decord: ")
    assert "; pyav: " in errors[0] and "Invalid data found" in errors[0] and "set DATA.DECODER" not in errors[0]
    assert lines == [lines[0], errors[0], "1 of 1 video(s) could not be read"]  # first: "predicting on ..."
    assert "moov atom" not in err and "video_reader.cc" not in err


def test_truncated_video_with_its_index_first_is_not_predicted(tiny_checkpoint, tmp_path, capsys):
    """A cut web-style MP4 claims all its frames; predicting it must report it (its views reach
    past the cut), not answer from copies of its last decoded frame."""
    path, _, _ = tiny_checkpoint
    cut = make_truncated_faststart_video(tmp_path / "cut.mp4")
    code = PREDICT_MAIN(["--checkpoint", str(path), str(cut), "--device", "cpu", "TEST.NUM_SPATIAL_CROPS", "1"])
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and out == ""
    assert len(errors) == 1 and str(cut) in errors[0] and "truncated" in errors[0]
