"""Export to TorchScript and ONNX: the exported file reproduces the eager model (and the check can fail)."""

from __future__ import annotations

import logging
import runpy
import warnings
from pathlib import Path

import pytest
import torch

from resformer_video.inference import export
from resformer_video.inference.export import export_model, verify_export
from resformer_video.models import build_model
from resformer_video.utils.checkpoint import save_checkpoint

from conftest import make_cfg

REPO = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 2, 32


def _random_model(seed: int):
    """A depth-2 resformer_tiny with every weight random (zero-initialised parts perturbed too)."""
    torch.manual_seed(seed)
    model = build_model(make_cfg(DATA__NUM_FRAMES=FRAMES)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


@pytest.mark.slow
def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    model = _random_model(0).to(torch.bfloat16).train()
    result = export_model(model, "torchscript", FRAMES, SIZE, str(tmp_path / "model.pt"))
    verify_export(model, result, FRAMES, SIZE)
    assert model.training and next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.slow
def test_exported_model_matches_eager(fmt, tmp_path):
    model = _random_model(0)
    result = export_model(model, fmt, FRAMES, SIZE, str(tmp_path / f"model.{fmt}"))
    assert Path(result.path).is_file()
    assert result.exporter == {"torchscript": "jit.trace", "onnx": "onnx-dynamo"}[fmt]  # no fallback
    check = verify_export(model, result, FRAMES, SIZE, tolerance=1e-4, batch=3)  # export batch is 2
    assert check.ok, check
    # The check is real: another model's logits differ from the exported file's by far more.
    other = verify_export(_random_model(1), result, FRAMES, SIZE, tolerance=1e-4)
    assert not other.ok and other.max_abs_diff > 1e-2


@pytest.mark.slow
def test_export_tool_writes_a_checked_torchscript_file(tmp_path, capsys):
    cfg = make_cfg(DATA__NUM_FRAMES=FRAMES)
    ckpt = tmp_path / "tiny.pyth"
    save_checkpoint(str(ckpt), _random_model(2), epoch=1, cfg_text=cfg.dump())
    out = tmp_path / "tiny.pt"
    main = runpy.run_path(str(REPO / "tools" / "export.py"))["main"]
    code = main(
        [
            "--checkpoint",
            str(ckpt),
            "--format",
            "torchscript",
            "--frames",
            str(FRAMES),
            "--resolution",
            str(SIZE),
            "--output",
            str(out),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert "max |exported - eager|" in stdout and stdout.rstrip().endswith("ok")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but works
        loaded = torch.jit.load(str(out))
    assert loaded(torch.randn(1, 3, FRAMES, SIZE, SIZE)).shape == (1, cfg.MODEL.NUM_CLASSES)


@pytest.mark.slow
def test_dynamic_resolution_onnx_serves_other_sizes(tmp_path, capsys):
    """One ONNX file, exported at 32x32, matches eager at 64x16 and 48x80 too (the positional
    embeddings are computed from the token grid inside the graph); the tool checks two sizes."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install .[export])")
    cfg = make_cfg(DATA__NUM_FRAMES=FRAMES)
    ckpt = tmp_path / "tiny.pyth"
    model = _random_model(3)
    save_checkpoint(str(ckpt), model, epoch=1, cfg_text=cfg.dump())
    out = tmp_path / "tiny.onnx"
    main = runpy.run_path(str(REPO / "tools" / "export.py"))["main"]
    code = main(
        [
            "--checkpoint",
            str(ckpt),
            "--format",
            "onnx",
            "--frames",
            str(FRAMES),
            "--resolution",
            str(SIZE),
            "--output",
            str(out),
            "--dynamic-resolution",
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0 and "dynamic resolution: True" in stdout
    assert [line.endswith(": ok") for line in stdout.splitlines() if "exported - eager" in line] == [True, True]
    result = export.ExportResult(str(out), "onnx", "onnx-dynamo", True, True)
    check = verify_export(model, result, FRAMES, 48, tolerance=1e-4, batch=1, width=80)
    assert check.ok and (check.height, check.width) == (48, 80)
    with pytest.raises(ValueError, match="--dynamic-resolution"):
        export_model(model, "torchscript", FRAMES, SIZE, str(tmp_path / "x.pt"), dynamic_resolution=True)


def test_onnx_falls_back_to_the_legacy_exporter(tmp_path, monkeypatch, caplog):
    """When the dynamo exporter fails, the legacy one writes a file that matches eager, and says so."""

    def broken_dynamo(*args, **kwargs):
        raise RuntimeError("dynamo export broken for this test")

    pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
    monkeypatch.setattr(export, "_onnx_dynamo", broken_dynamo)
    model = _random_model(0)
    with caplog.at_level(logging.WARNING, logger=export.__name__):
        result = export_model(model, "onnx", FRAMES, SIZE, str(tmp_path / "legacy.onnx"))
    assert result.exporter == "onnx-legacy"
    assert "dynamo export broken for this test" in caplog.text and "legacy" in caplog.text
    check = verify_export(model, result, FRAMES, SIZE, tolerance=1e-4, batch=3)  # export batch is 2
    assert check.ok and check.runtime == "onnxruntime", check


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_to_a_place_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch, fmt):
    """An --output under a file, or in a read-only folder, fails before exporting with one line
    naming the path and the cause (not an exporter traceback)."""
    cfg = make_cfg(DATA__NUM_FRAMES=FRAMES)
    ckpt = tmp_path / "tiny.pyth"
    save_checkpoint(str(ckpt), build_model(cfg), epoch=1, cfg_text=cfg.dump())
    (tmp_path / "a_file").write_text("x")
    main = runpy.run_path(str(REPO / "tools" / "export.py"))["main"]
    args = ["--checkpoint", str(ckpt), "--format", fmt, "--frames", str(FRAMES), "--resolution", str(SIZE)]
    assert main(args + ["--output", str(tmp_path / "a_file" / "model.x")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'a_file'}: is a file, not a folder"

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr("tempfile.NamedTemporaryFile", read_only)
    assert main(args + ["--output", str(tmp_path / "ro" / "model.x")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'ro'}: read-only file system"
