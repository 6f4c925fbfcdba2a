"""Precision names, native-bf16 detection, and bf16 on CPU in the engine (both branches, by
monkeypatching the detection: the test machine may or may not have native bf16)."""

import logging

import pytest
import torch

from resformer_video.config import ConfigError
from resformer_video.engine.train import build_train_state, forward_backward, optimizer_step, train
from resformer_video.models import VideoResFormer, build_model
from resformer_video.utils import precision

from conftest import make_cfg

CPU = torch.device("cpu")


@pytest.fixture
def native_cpu(monkeypatch):
    """Make this CPU report native bf16 (``True``) or not (``False``): call with the answer."""

    def set_native(answer: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: answer)

    return set_native


def test_names_aliases_and_dtypes():
    assert precision.canonical_precision("none") == "fp32"  # the old config value
    assert [precision.autocast_dtype(n) for n in ("fp32", "none", "bf16", "fp16")] == [
        None,
        None,
        torch.bfloat16,
        torch.float16,
    ]
    with pytest.raises(ValueError, match="must be one of"):
        precision.canonical_precision("fp64")
    assert make_cfg(TRAIN__MIXED_PRECISION="none").TRAIN.MIXED_PRECISION == "none"
    with pytest.raises(ConfigError) as info:
        make_cfg(TRAIN__MIXED_PRECISION="fp64")
    assert info.value.key == "TRAIN.MIXED_PRECISION"


def test_detection_reads_torch_capabilities_and_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": True})
    monkeypatch.setattr(precision, "_cpuinfo_flags", lambda wanted: set())
    assert precision.cpu_bf16_features() == ("amx_bf16",) and precision.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert precision.cpu_bf16_features() == () and not precision.cpu_has_native_bf16()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    monkeypatch.undo()
    assert precision._cpuinfo_flags(precision.X86_BF16_FEATURES, str(cpuinfo)) == {"avx512_bf16"}
    assert precision._cpuinfo_flags(precision.X86_BF16_FEATURES, str(tmp_path / "absent")) == set()


def test_non_native_cpu_refuses_bf16_unless_fallback(native_cpu, caplog):
    native_cpu(False)
    with pytest.raises(
        ConfigError,
        match=r"^TRAIN.MIXED_PRECISION: this cpu has no native bf16.*"
        r"TRAIN.PRECISION_FALLBACK",
    ):
        precision.config_precision(make_cfg(TRAIN__MIXED_PRECISION="bf16"), CPU)
    fallback = make_cfg(TRAIN__MIXED_PRECISION="bf16", TRAIN__PRECISION_FALLBACK=True)
    with caplog.at_level(logging.INFO, logger=precision.__name__):
        assert precision.config_autocast_dtype(fallback, CPU) is None
    assert "TRAIN.PRECISION_FALLBACK is True: running in fp32" in caplog.text
    assert "precision fp32 (cpu)" in caplog.text
    # fp16 on CPU is an error whatever the fallback says.
    with pytest.raises(ConfigError, match=r"^TRAIN.MIXED_PRECISION: fp16 autocast is for CUDA"):
        precision.config_precision(make_cfg(TRAIN__MIXED_PRECISION="fp16", TRAIN__PRECISION_FALLBACK=True), CPU)


def test_train_stops_at_start_up_on_a_non_native_cpu(native_cpu, tmp_path):
    native_cpu(False)
    cfg = make_cfg(tmp_path, ["OUTPUT_DIR", str(tmp_path / "out")], TRAIN__MIXED_PRECISION="bf16")
    with pytest.raises(ConfigError, match="^TRAIN.MIXED_PRECISION"):
        train(cfg)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_native_cpu_trains_a_step_under_bf16_autocast(native_cpu, monkeypatch, caplog):
    native_cpu(True)
    cfg = make_cfg(TRAIN__MIXED_PRECISION="bf16", MODEL__DEPTH=1, DATA__TRAIN_CROP_SIZES=[32, 16])
    with caplog.at_level(logging.INFO, logger=precision.__name__):
        dtype = precision.config_autocast_dtype(cfg, CPU)
    assert dtype == torch.bfloat16 and "precision bf16 (autocast, cpu)" in caplog.text
    seen = []
    head = VideoResFormer.forward_head

    def recording_head(self, feats):
        logits = head(self, feats)
        seen.append(logits.dtype)
        return logits

    monkeypatch.setattr(VideoResFormer, "forward_head", recording_head)
    torch.manual_seed(0)
    model = build_model(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    state = build_train_state(cfg, model, CPU, dtype=dtype, accum_steps=1)
    assert state.accum_steps == 1 and not state.scaler.is_enabled()
    clips = [torch.randn(2, 3, 4, s, s) for s in (32, 16)]
    parts = forward_backward(state, clips, torch.tensor([0, 1]))
    optimizer_step(state)
    assert seen == [torch.bfloat16, torch.bfloat16]  # both sizes' logits came out of autocast
    assert torch.isfinite(torch.tensor(list(float(v) for v in parts.values()))).all()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) > 10 and all(p.dtype == torch.float32 for p in model.parameters())


def test_inference_default_is_bf16_only_where_native(native_cpu):
    native_cpu(True)
    assert precision.default_precision(CPU) == "bf16"
    native_cpu(False)
    assert precision.default_precision(CPU) == "fp32"
    # An explicit request still runs (emulated), fp16 does not.
    assert precision.check_precision("bf16", CPU, allow_emulated=True) == "bf16"
    with pytest.raises(precision.PrecisionUnavailable, match="no native bf16"):
        precision.check_precision("bf16", CPU)
    with pytest.raises(precision.PrecisionUnavailable, match="fp16.*the CPU"):
        precision.check_precision("fp16", CPU, allow_emulated=True)
