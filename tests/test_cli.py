"""Command-line entry points: flags, then KEY VALUE overrides; bad configs exit with the key named."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides


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
        [sys.executable, str(REPO_ROOT / "tools" / "run_net.py"), "--cfg",
         str(REPO_ROOT / "configs" / "demo_synthetic.yaml"), "DATA.TRAIN_CROP_SIZES", "[48, 96]",
         "OUTPUT_DIR", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: DATA.TRAIN_CROP_SIZES: sizes must be in strictly "
                                          "descending order")
    assert not Path(tmp_path, "checkpoints").exists()
