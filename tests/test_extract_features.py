"""tools/extract_features.py and resformer_video.inference.features with a tiny checkpoint: values
against the model's own forward_features / forward_intermediates, resuming, corrupt files."""

from __future__ import annotations

import csv
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from resformer_video.datasets import build_test_transform, open_video
from resformer_video.datasets.sampling import sample_clip_indices
from resformer_video.inference.features import expand_inputs, feature_name
from resformer_video.inference.predictor import window_starts
from resformer_video.models import build_model
from resformer_video.utils.checkpoint import save_checkpoint

from conftest import BOTH_PRECISIONS, SAME_PRECISION_TOLERANCE, make_cfg, make_index_video, reference_precision

REPO = Path(__file__).resolve().parents[1]
EXTRACT_MAIN = runpy.run_path(str(REPO / "tools" / "extract_features.py"))["main"]
FPS, FRAMES, WINDOW_S, STRIDE_S = 12.0, 60, 2.0, 1.5  # a 5 s video -> 3 windows


@pytest.fixture(scope="module")
def one_view_checkpoint(synthetic_data_dir, tmp_path_factory):
    """A depth-2 tiny checkpoint (random, non-zero weights), 1 clip x 1 crop per window."""
    cfg = make_cfg(synthetic_data_dir, DATA__DECODER="pyav")
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pyth"
    save_checkpoint(str(path), model, epoch=1, cfg_text=cfg.dump())
    return path, model.eval(), cfg


def _reference(model, cfg, video, precision="fp32"):
    """Per window: [class token, pooled block 0, pooled block -1] ``(3, D)``, built here from the
    decoder, the sampler and the test transform, in ``precision``."""
    rows = []
    with open_video(str(video), "pyav") as reader:
        window, stride = round(WINDOW_S * reader.fps), round(STRIDE_S * reader.fps)
        for start in window_starts(reader.num_frames, window, stride):
            length = min(window, reader.num_frames - start)
            idx = (
                sample_clip_indices(
                    length, reader.fps, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS, 0, 1
                )
                + start
            )
            clip = build_test_transform(cfg)(reader.get_frames(np.minimum(idx, reader.num_frames - 1)), 1)
            with torch.no_grad(), reference_precision(precision):
                maps = model.forward_intermediates(clip[None], [0, -1], intermediates_only=True)
                rows.append(
                    torch.stack(
                        [model.forward_features(clip[None])[0].float()]
                        + [m.float().mean(dim=(2, 3, 4))[0] for m in maps]
                    )
                )
    return torch.stack(rows).numpy()


def _index(out_dir):
    with open(out_dir / "index.csv", encoding="utf-8", newline="") as handle:
        return {row["video"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("precision", BOTH_PRECISIONS)
def test_features_equal_the_model_and_resume_skips(
    one_view_checkpoint, synthetic_data_dir, tmp_path, capsys, precision
):
    """Features equal the model's own, computed here in the same (pinned) precision."""
    ckpt, model, cfg = one_view_checkpoint
    folder = tmp_path / "videos"
    folder.mkdir()
    long_video = make_index_video(folder / "long.mp4", num_frames=FRAMES, fps=FPS)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00 not a video " * 64)
    listed = sorted(str(p) for p in synthetic_data_dir.rglob("*.mp4"))[0]
    video_list = tmp_path / "list.txt"
    video_list.write_text(f"{listed} 2\n")
    out = tmp_path / "features"
    args = [
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        "--window",
        str(WINDOW_S),
        "--stride",
        str(STRIDE_S),
        "--layers",
        "0,-1",
        "--device",
        "cpu",
        "--precision",
        precision,
        str(folder),
        str(video_list),
        "TEST.BATCH_SIZE",
        "2",
    ]
    code = EXTRACT_MAIN(args)
    stdout, stderr = capsys.readouterr()
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(corrupt) in errors[0]
    index = _index(out)
    assert list(index) == [str(corrupt), str(long_video), listed]  # the folder sorted, then the list
    assert index[str(corrupt)]["status"] == "error" and str(corrupt) in index[str(corrupt)]["error"]
    row = index[str(long_video)]
    assert row["status"] == "ok" and row["num_windows"] == "3"
    assert row["window_start_s"].split(";")[0] == "0.000" and row["window_end_s"].endswith("5.000")
    windows = np.load(out / row["window_features"])
    video = np.load(out / row["video_features"])
    assert windows.shape == (3, 3, model.embed_dim) and video.shape == (3, model.embed_dim)
    np.testing.assert_allclose(
        windows, _reference(model, cfg, long_video, precision), **SAME_PRECISION_TOLERANCE[precision]
    )
    np.testing.assert_allclose(video, windows.mean(axis=0), atol=1e-6)
    assert row["video_features"] == f"{feature_name(str(long_video))}_video.npy"
    short = index[listed]
    assert short["num_windows"] == "1"
    np.testing.assert_allclose(np.load(out / short["window_features"])[0], np.load(out / short["video_features"]))
    summary = json.loads((out / "features.json").read_text())
    assert summary["layers"] == ["cls", "block0", "block-1"] and summary["written"] == 2
    assert summary["failed"] == {str(corrupt): index[str(corrupt)]["error"]}
    assert "2 written, 0 already there (skipped), 1 unreadable" in stdout

    # Rerun: the written videos are skipped (files untouched), the corrupt one reported again.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    code = EXTRACT_MAIN(args)
    stdout, stderr = capsys.readouterr()
    assert code == 1 and "0 written, 2 already there (skipped), 1 unreadable" in stdout
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    assert list(_index(out)) == list(index)
    # Another resolution into the same folder would mix features: refused in one line.
    code = EXTRACT_MAIN(args[:-2] + ["--resolution", "96"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith(
        f"error: {out}: holds features written with other settings (resolution: [64] then, [96] now)"
    )


def test_expand_inputs_reads_lists_with_prefix(tmp_path):
    (tmp_path / "list.csv").write_text("a/x.mp4,3\nb/my clip 2.mp4 1\nc/y.mp4\n")
    assert expand_inputs([str(tmp_path / "list.csv")], "/data") == [
        "/data/a/x.mp4",
        "/data/b/my clip 2.mp4",
        "/data/c/y.mp4",
    ]


def test_bad_layer_index_is_one_line(one_view_checkpoint, tmp_path, capsys):
    ckpt, _, _ = one_view_checkpoint
    video = make_index_video(tmp_path / "v.mp4", num_frames=12, fps=FPS)
    code = EXTRACT_MAIN(
        ["--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--layers", "5", "--device", "cpu", str(video)]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --layers: block indices must be in [-2, 2) for this 2-block model, got [5]"
    )


def test_rerun_with_another_checkpoint_is_refused(one_view_checkpoint, tmp_path, capsys):
    """Features of another model must not join a folder's: the checkpoint's content hash is part
    of the settings (a copy of the same file elsewhere is the same model and resumes)."""
    ckpt, model, cfg = one_view_checkpoint
    video = make_index_video(tmp_path / "v.mp4", num_frames=12, fps=FPS)
    out = tmp_path / "out"
    args = ["--out", str(out), "--device", "cpu", "--precision", "fp32", str(video)]
    assert EXTRACT_MAIN(["--checkpoint", str(ckpt)] + args) == 0
    settings = json.loads((out / "features.json").read_text())["settings"]
    assert settings["checkpoint"] == str(ckpt) and len(settings["checkpoint_sha256"]) == 64
    copy = tmp_path / "copy.pyth"
    copy.write_bytes(ckpt.read_bytes())
    assert EXTRACT_MAIN(["--checkpoint", str(copy)] + args) == 0
    assert "0 written, 1 already there" in capsys.readouterr().out
    other = tmp_path / "other.pyth"
    with torch.no_grad():
        retrained = build_model(cfg)
    save_checkpoint(str(other), retrained, epoch=2, cfg_text=cfg.dump())
    before = (out / "index.csv").read_text()
    assert EXTRACT_MAIN(["--checkpoint", str(other)] + args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}: holds features written with other settings (checkpoint_sha256: ")
    assert f"checkpoint {copy} then" in last  # the path the last run recorded
    assert (out / "index.csv").read_text() == before


def test_out_folder_that_cannot_be_written_is_one_line(one_view_checkpoint, tmp_path, capsys):
    ckpt, _, _ = one_view_checkpoint
    video = make_index_video(tmp_path / "v.mp4", num_frames=12, fps=FPS)
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "features"
    code = EXTRACT_MAIN(["--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu", str(video)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and err == [f"error: {out}: not a directory"]
