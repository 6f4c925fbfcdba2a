"""The one weights reader (resformer_video/utils/weights.py): every entry point reads its file
through it, once, and one function says what a file holds and whether it is ours."""

from __future__ import annotations

import re
import runpy

import pytest
import timm
import torch
from safetensors.torch import save_file

import resformer_video  # noqa: F401  (registers the timm architectures)
from resformer_video.engine.evaluate import load_test_weights
from resformer_video.engine.evaluate import test as run_test
from resformer_video.errors import CheckpointError
from resformer_video.inference.predictor import build_predictor, load_predict_config, load_trained
from resformer_video.models import build_model, load_pretrained, load_trained_weights
from resformer_video.utils import checkpoint, weights

from conftest import REPO_ROOT, make_cfg, randomize, tiny_model

TIMM_NAME = "resformer_video_tiny_patch16_224"
TIMM_ARGS = dict(embed_dim=32, num_heads=2, depth=1, img_size=64, num_frames=4, num_classes=5)


@pytest.fixture
def own_run(tmp_path):
    """A run folder holding one training checkpoint of a 1-block resformer_nano: ``(cfg, path)``."""
    cfg = make_cfg(tmp_path, MODEL__ARCH="resformer_nano", MODEL__DEPTH=1, OUTPUT_DIR=str(tmp_path / "run"))
    path = checkpoint.get_checkpoint_path(cfg.OUTPUT_DIR, 1)
    checkpoint.save_checkpoint(path, build_model(cfg), epoch=1, cfg_text=cfg.dump(), class_names=["a", "b", "c", "d"])
    return cfg, path


@pytest.fixture
def reads(monkeypatch):
    """The paths the one reader is asked for, in order (it still reads them)."""
    paths = []
    real = weights.read_checkpoint

    def spy(path):
        paths.append(path)
        return real(path)

    monkeypatch.setattr(weights, "read_checkpoint", spy)
    return paths


def _entry_points(cfg, path, timm_file):
    """Each entry point that takes weights, as (name, the file it should read, a call)."""
    with_file = make_cfg(
        cfg.DATA.PATH_TO_DATA_DIR, MODEL__ARCH="resformer_nano", MODEL__DEPTH=1, TEST__CHECKPOINT_FILE_PATH=path
    )
    pretrained = make_cfg(MODEL__ARCH="resformer_nano", MODEL__DEPTH=1, MODEL__PRETRAINED=path)
    overlay = dict(pretrained=True, pretrained_cfg_overlay=dict(file=timm_file), **TIMM_ARGS)
    return [
        ("resume", path, lambda: checkpoint.find_latest_valid_checkpoint(cfg.OUTPUT_DIR)),
        ("test, latest checkpoint", path, lambda: load_test_weights(cfg, build_model(cfg))),
        ("test, TEST.CHECKPOINT_FILE_PATH", path, lambda: load_test_weights(with_file, build_model(cfg))),
        ("MODEL.PRETRAINED", path, lambda: build_model(pretrained)),
        ("predict, export", path, lambda: load_trained(path)),
        ("predict, extract_features", path, lambda: build_predictor(path, device="cpu")),
        ("timm create_model", timm_file, lambda: timm.create_model(TIMM_NAME, **overlay)),
        ("torch.hub", timm_file, lambda: torch.hub.load(str(REPO_ROOT), TIMM_NAME, source="local", **overlay)),
    ]


def test_every_entry_point_reads_its_file_once_through_the_one_reader(own_run, reads, tmp_path):
    cfg, path = own_run
    source = timm.create_model(TIMM_NAME, **TIMM_ARGS).eval()
    randomize(source)
    timm_file = str(tmp_path / "timm_weights.pth")
    torch.save(source.state_dict(), timm_file)
    for name, expected, call in _entry_points(cfg, path, timm_file):
        reads.clear()
        result = call()
        assert reads == [expected], name
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():  # the hub's model (the last call) holds the file's weights
        torch.testing.assert_close(result.eval()(clip), source(clip))


def test_tools_and_test_stop_at_the_one_reader(own_run, monkeypatch, tmp_path, capsys):
    cfg, path = own_run
    asked = []

    def refuse(file):
        asked.append(file)
        raise CheckpointError(f"{file}: refused by the test")

    monkeypatch.setattr(weights, "read_checkpoint", refuse)
    video = str(tmp_path / "a.mp4")
    for tool, args in (
        ("predict", [video]),
        ("export", ["--format", "torchscript"]),
        ("extract_features", [video, "--out", str(tmp_path / "features")]),
    ):
        main = runpy.run_path(str(REPO_ROOT / "tools" / f"{tool}.py"))["main"]
        assert main(["--checkpoint", path, *args]) == 2, tool
        assert f"error: {path}: refused by the test" in capsys.readouterr().err, tool
    with pytest.raises(CheckpointError, match="refused by the test"):
        run_test(
            make_cfg(
                tmp_path,
                MODEL__ARCH="resformer_nano",
                MODEL__DEPTH=1,
                OUTPUT_DIR=cfg.OUTPUT_DIR,
                TEST__CHECKPOINT_FILE_PATH=path,
            )
        )
    assert asked == [path] * 4


def test_one_function_says_what_a_file_holds(own_run, tmp_path):
    _, own = own_run
    state = tiny_model().state_dict()
    layouts = {
        "timesformer.pyth": (
            {"epoch": 15, "model_state": {"model." + k: v for k, v in state.items()}, "cfg": "MODEL:\n  ARCH: vit\n"},
            weights.SLOWFAST,
        ),
        "deit.pth": ({"model": state, "epoch": 299}, weights.WRAPPED),
        "timm_train.pth.tar": ({"state_dict": state, "arch": "vit_tiny_patch16_224"}, weights.WRAPPED),
        "plain.pth": (state, weights.STATE_DICT),
        "list.pth": ([torch.zeros(2)], weights.UNKNOWN),
    }
    for name, (content, _) in layouts.items():
        torch.save(content, tmp_path / name)
    save_file(state, str(tmp_path / "plain.safetensors"))
    expected = {name: kind for name, (_, kind) in layouts.items()}
    expected["plain.safetensors"] = weights.STATE_DICT
    kinds = {name: weights.checkpoint_kind(weights.read_checkpoint(str(tmp_path / name))) for name in expected}
    assert kinds == expected
    assert weights.checkpoint_kind(weights.read_checkpoint(own)) == weights.OWN
    for name in ("timesformer.pyth", "deit.pth", "plain.safetensors"):  # the loader reports the same
        assert load_pretrained(tiny_model(), str(tmp_path / name)).kind == expected[name]


def test_the_rule_for_ours_is_that_one_function(own_run, monkeypatch):
    cfg, path = own_run
    content = weights.read_checkpoint(path)
    assert load_trained_weights(build_model(cfg), path).own
    assert load_predict_config(content, path).MODEL.ARCH == "resformer_nano"
    assert checkpoint.load_checkpoint_file(path)["epoch"] == 1
    # Told that nothing is ours, resume, test/predict loading and predict's config all agree.
    monkeypatch.setattr(weights, "checkpoint_kind", lambda obj: weights.SLOWFAST)
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(path)}: not a resformer-video training "
        r"checkpoint \(a PySlowFast / TimeSformer checkpoint",
    ):
        checkpoint.load_checkpoint_file(path)
    assert checkpoint.find_latest_valid_checkpoint(cfg.OUTPUT_DIR) is None
    trained = load_trained_weights(build_model(cfg), path)
    assert not trained.own and trained.report.missing_keys == [] and trained.class_names is None
    with pytest.raises(ValueError, match="not a resformer-video training checkpoint .*--cfg"):
        load_predict_config(content, path)


def test_training_checkpoint_errors_name_the_file_and_why(tmp_path):
    garbage = tmp_path / "checkpoint_epoch_00002.pyth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(garbage))}: damaged or unreadable "
        r"checkpoint \(UnpicklingError: ",
    ):
        checkpoint.load_checkpoint_file(str(garbage))
    plain = tmp_path / "plain.pth"
    torch.save(tiny_model().state_dict(), plain)
    with pytest.raises(
        CheckpointError,
        match=r"not a resformer-video training checkpoint \(missing "
        r"\['model_state', 'epoch'\]\)",
    ):
        checkpoint.load_checkpoint_file(str(plain))


def test_no_second_reader_in_the_code():
    """``torch.load`` and safetensors' ``load_file`` appear in the one reader only."""
    sources = [
        *(REPO_ROOT / "resformer_video").rglob("*.py"),
        *(REPO_ROOT / "tools").glob("*.py"),
        REPO_ROOT / "hubconf.py",
    ]
    readers = {
        str(p.relative_to(REPO_ROOT))
        for p in sources
        if re.search(r"torch\.load\(|\bload_file\b|safetensors\.torch", p.read_text(encoding="utf-8"))
    }
    assert readers == {"resformer_video/utils/weights.py"}
