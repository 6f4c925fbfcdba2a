"""Command-line entry points: flags, then KEY VALUE overrides; bad configs exit with the key named."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from resformer_video.utils.parser import build_parser, parse_flags_then_overrides

from conftest import REPO_ROOT


def test_flags_come_before_the_overrides(capsys):
    parser = build_parser("test tool")
    parser.add_argument("--workers", type=int, default=0)
    args = parse_flags_then_overrides(parser, ["--cfg", "a.yaml", "--workers", "2", "DATA.NUM_FRAMES", "4"])
    assert (args.cfg_file, args.workers, args.opts) == ("a.yaml", 2, ["DATA.NUM_FRAMES", "4"])
    with pytest.raises(SystemExit) as info:
        parse_flags_then_overrides(parser, ["DATA.NUM_FRAMES", "4", "--workers", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "flags must come before the KEY VALUE overrides, found --workers after them" in err


@pytest.mark.slow
def test_run_net_reports_bad_config_and_exits(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "run_net.py"),
            "--cfg",
            str(REPO_ROOT / "configs" / "demo_synthetic.yaml"),
            "DATA.TRAIN_CROP_SIZES",
            "[48, 96]",
            "OUTPUT_DIR",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: DATA.TRAIN_CROP_SIZES: sizes must be in strictly descending order")
    assert not Path(tmp_path, "checkpoints").exists()


def _tool_parse_args(name):
    return runpy.run_path(str(REPO_ROOT / "tools" / f"{name}.py"))["parse_args"]


def test_a_flag_with_several_values_ends_at_the_first_override():
    """Tools without inputs (run_net, check_videos, model_info, study, demo): a ``nargs='+'`` flag
    does not swallow the KEY VALUE overrides that follow it."""
    parser = build_parser("test tool")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None)
    args = parse_flags_then_overrides(parser, ["--resolutions", "64", "96", "MODEL.DEPTH", "1"])
    assert (args.resolutions, args.opts) == ([64, 96], ["MODEL.DEPTH", "1"])


def test_inputs_then_overrides_for_the_tools_that_take_videos(tmp_path, capsys):
    """predict and extract_features: flags and inputs in any order, then the overrides (a file
    named like a key is an input); a flag after an override is refused."""
    odd = tmp_path / "DATA.LIKE_A_KEY"
    odd.write_text("")
    args = _tool_parse_args("extract_features")(
        [
            "--checkpoint",
            "c.pyth",
            "a.mp4",
            "--out",
            "o",
            str(odd),
            "--layers",
            "5,11",
            "list.txt",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
        ]
    )
    assert (args.inputs, args.layers, args.opts) == (
        ["a.mp4", str(odd), "list.txt"],
        [5, 11],
        ["TEST.NUM_SPATIAL_CROPS", "1"],
    )
    args = _tool_parse_args("predict")(
        [
            "--checkpoint",
            "c.pyth",
            "a.mp4",
            "--topk",
            "3",
            "b.mp4",
            "DATA.TEST_CROP_SIZE",
            "64",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "1",
        ]
    )
    assert (args.inputs, args.topk, args.opts) == (
        ["a.mp4", "b.mp4"],
        3,
        ["DATA.TEST_CROP_SIZE", "64", "TEST.NUM_ENSEMBLE_VIEWS", "1"],
    )
    with pytest.raises(SystemExit) as info:
        _tool_parse_args("extract_features")(
            ["--checkpoint", "c", "--out", "o", "a.mp4", "MODEL.DEPTH", "1", "--layers", "5"]
        )
    assert info.value.code == 2 and "found --layers after them" in capsys.readouterr().err


def test_deprecated_set_joins_the_overrides_with_one_warning(capsys):
    """export (and predict) still take ``--set KEY VALUE`` for a release: its pairs come first, then
    the trailing ones, and stderr says once that it is deprecated."""
    args = _tool_parse_args("export")(
        [
            "--checkpoint",
            "c.pyth",
            "--set",
            "MODEL.DEPTH",
            "2",
            "--format",
            "onnx",
            "--set",
            "DATA.NUM_FRAMES",
            "4",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
        ]
    )
    assert args.opts == ["MODEL.DEPTH", "2", "DATA.NUM_FRAMES", "4", "TEST.NUM_SPATIAL_CROPS", "1"]
    assert args.format == "onnx"
    err = capsys.readouterr().err
    assert err.count("--set KEY VALUE is deprecated") == 1 and len(err.splitlines()) == 1
    assert _tool_parse_args("export")(["--checkpoint", "c", "--format", "onnx", "MODEL.DEPTH", "2"]).opts == [
        "MODEL.DEPTH",
        "2",
    ]
    assert capsys.readouterr().err == ""
