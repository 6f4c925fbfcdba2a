"""tools/predict.py --out-video and resformer_video.inference.annotate on a tiny generated video."""

from __future__ import annotations

import runpy
import stat
from pathlib import Path

import numpy as np
import pytest
from test_predict import tiny_checkpoint  # noqa: F401  (the fixture)

from resformer_video.datasets import open_video
from resformer_video.datasets.synthetic import render_video, write_mp4
from resformer_video.inference.annotate import even_frames, window_at
from resformer_video.inference.predictor import ClassScore, WindowPrediction

REPO = Path(__file__).resolve().parents[1]
PREDICT_MAIN = runpy.run_path(str(REPO / "tools" / "predict.py"))["main"]
FAST = ["--device", "cpu", "--precision", "fp32", "TEST.NUM_SPATIAL_CROPS", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1"]


def _video(path: Path, num_frames: int = 20, fps: float = 10.0) -> np.ndarray:
    """Write a 128 wide x 96 high H.264 video of ``num_frames`` (Pillow's default font needs about
    50 x 120 pixels for three labels); returns its decoded frames."""
    frames = render_video(np.random.default_rng(0), "moving_right", 128, num_frames, fps)[:, :96]
    write_mp4(str(path), np.ascontiguousarray(frames), fps)
    return _decode(path)


def _decode(path: Path) -> np.ndarray:
    with open_video(str(path), "pyav") as reader:
        return reader.get_frames(np.arange(reader.num_frames)).numpy()


def test_out_video_has_the_labels_drawn_and_the_rest_unchanged(
    tiny_checkpoint,
    tmp_path,  # noqa: F811
    capsys,
):
    source = _video(tmp_path / "in.mp4")
    out = tmp_path / "sub" / "annotated.mp4"
    code = PREDICT_MAIN(
        [
            "--checkpoint",
            str(tiny_checkpoint[0]),
            str(tmp_path / "in.mp4"),
            "--out-video",
            str(out),
            "--window",
            "1.0",
            *FAST,
        ]
    )
    assert code == 0
    assert f"written to {out}" in capsys.readouterr().err
    annotated = _decode(out)
    assert annotated.shape == source.shape == (20, 96, 128, 3)
    diff = np.abs(annotated.astype(np.int16) - source.astype(np.int16))
    assert diff[:, :8, :20].mean() > 30  # the dark box with white text, top-left
    assert diff[:, -30:, -30:].mean() < 4  # bottom-right: only re-encoding noise
    assert [p.name for p in out.parent.iterdir()] == ["annotated.mp4"]  # no temporary file left
    (tmp_path / "reference").touch()  # the mode any new file of this process gets (0644 at umask 022)
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((tmp_path / "reference").stat().st_mode)


def test_out_video_refuses_several_inputs(tiny_checkpoint, tmp_path, capsys):  # noqa: F811
    for name in ("a.mp4", "b.mp4"):
        _video(tmp_path / name, num_frames=4)
    out = tmp_path / "out.mp4"
    code = PREDICT_MAIN(
        [
            "--checkpoint",
            str(tiny_checkpoint[0]),
            str(tmp_path / "a.mp4"),
            str(tmp_path / "b.mp4"),
            "--out-video",
            str(out),
            *FAST,
        ]
    )
    assert code == 2
    assert "--out-video takes one input video, got 2" in capsys.readouterr().err
    assert not out.exists()


def test_each_time_gets_the_covering_window_with_the_nearest_centre():
    def window(start, end, name):
        return WindowPrediction(start, end, [ClassScore(0, name, 1.0)], probs=None)

    windows = [window(0.0, 10.0, "a"), window(8.0, 18.0, "b"), window(10.0, 20.0, "c")]
    names = [window_at(windows, t).top[0].name for t in (0.5, 8.5, 9.5, 13.5, 14.5, 19.9, 25.0)]
    assert names == ["a", "a", "b", "b", "c", "c", "c"]


@pytest.mark.parametrize("height, width", [(5, 6), (6, 7), (7, 7)])
def test_odd_frame_sizes_are_padded_to_even(height, width):
    frames = np.random.default_rng(0).integers(0, 255, (2, height, width, 3), dtype=np.uint8)
    padded = even_frames(frames)
    assert padded.shape == (2, height + height % 2, width + width % 2, 3)
    assert np.array_equal(padded[:, :height, :width], frames)
    assert np.array_equal(padded[:, -1, :width], frames[:, -1])


def test_out_video_that_cannot_be_written_is_not_called_unreadable(
    tiny_checkpoint,
    tmp_path,  # noqa: F811
    capsys,
):
    """A --out-video in a place that cannot be written (here under a file) is one error line about
    the output; the input video was read and predicted, so nothing says it "could not be read"."""
    _video(tmp_path / "in.mp4", num_frames=4)
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "annotated.mp4"
    code = PREDICT_MAIN(
        ["--checkpoint", str(tiny_checkpoint[0]), str(tmp_path / "in.mp4"), "--out-video", str(out), *FAST]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "in.mp4" in captured.out  # the prediction was printed
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: --out-video {out}: ")
    assert "could not be read" not in captured.err
