"""Checkpoints and resume: atomic writes, damaged files skipped, exact in-process resume, and a
training process killed mid-epoch (SIGKILL) that a rerun with AUTO_RESUME continues and finishes."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from resformer_video.engine.train import FeaturesAndLogits
from resformer_video.engine.train import train as run_training
from resformer_video.utils import checkpoint

from conftest import REPO_ROOT, SMALL_OVERRIDES
from conftest import TINY_RUN_OPTS as RUN_OPTS


def _save(path, model, epoch):
    checkpoint.save_checkpoint(
        str(path), model, epoch, cfg_text="x: 1", class_names=["a", "b"], rng_states=[checkpoint.get_rng_state()]
    )


def test_checkpoint_holds_unwrapped_state_and_class_names(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    path = checkpoint.get_checkpoint_path(str(tmp_path), 3)
    _save(path, FeaturesAndLogits(model), 3)  # saved through a wrapper: no "module." prefix
    state = checkpoint.load_checkpoint_file(path)
    assert set(state["model_state"]) == {"0.weight", "0.bias"}
    assert state["epoch"] == 3 and state["class_names"] == ["a", "b"]
    assert path.endswith(os.path.join("checkpoints", "checkpoint_epoch_00003.pyth"))
    assert os.listdir(os.path.dirname(path)) == ["checkpoint_epoch_00003.pyth"]  # no temp file left


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    path = checkpoint.get_checkpoint_path(str(tmp_path), 1)
    _save(path, model, 1)
    before = open(path, "rb").read()

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(path, model, 1)
    assert open(path, "rb").read() == before
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


def test_damaged_latest_checkpoint_is_skipped(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("resformer_video"), "propagate", True)  # reach caplog
    model = torch.nn.Linear(3, 2)
    good = checkpoint.get_checkpoint_path(str(tmp_path), 1)
    bad = checkpoint.get_checkpoint_path(str(tmp_path), 2)
    _save(good, model, 1)
    _save(bad, model, 2)
    with open(bad, "r+b") as f:
        f.truncate(os.path.getsize(bad) // 2)
    with pytest.raises(ValueError, match="checkpoint_epoch_00002.pyth: damaged"):
        checkpoint.load_checkpoint_file(bad)
    path, state = checkpoint.find_latest_valid_checkpoint(str(tmp_path))
    assert path == good and state["epoch"] == 1
    assert "checkpoint_epoch_00002.pyth: damaged" in caplog.text
    os.remove(good)
    assert checkpoint.find_latest_valid_checkpoint(str(tmp_path)) is None


def test_other_ranks_load_the_checkpoint_rank_0_chose(tmp_path, monkeypatch):
    """A rank whose directory listing is stale (here: empty) still loads rank 0's choice."""
    chosen = checkpoint.get_checkpoint_path(str(tmp_path / "rank0"), 3)
    os.makedirs(os.path.dirname(chosen))
    _save(chosen, torch.nn.Linear(3, 2), 3)
    monkeypatch.setattr(checkpoint.distributed, "is_master_proc", lambda: False)
    # all_gather gives rank 0's choice, then ours
    monkeypatch.setattr(checkpoint.distributed, "all_gather_objects", lambda obj: [chosen, obj])
    path, state = checkpoint.find_latest_valid_checkpoint(str(tmp_path / "rank1_sees_nothing"))
    assert path == chosen and state["epoch"] == 3


def test_rng_state_round_trip():
    state = checkpoint.get_rng_state()
    first = (torch.rand(3), torch.randint(0, 1000, (1,)).item())
    checkpoint.set_rng_state(state)
    second = (torch.rand(3), torch.randint(0, 1000, (1,)).item())
    assert torch.equal(first[0], second[0]) and first[1] == second[1]


def _model_state(out_dir, epoch):
    path = checkpoint.get_checkpoint_path(str(out_dir), epoch)
    return checkpoint.load_checkpoint_file(path)["model_state"]


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted(cfg_factory, tmp_path):
    """2 epochs in one go == 1 epoch, stop, resume for the 2nd (bit-exact with NUM_WORKERS 0)."""
    straight = cfg_factory(RUN_OPTS + ["OUTPUT_DIR", str(tmp_path / "a"), "SOLVER.MAX_EPOCH", 2])
    run_training(straight)
    first = cfg_factory(RUN_OPTS + ["OUTPUT_DIR", str(tmp_path / "b"), "SOLVER.MAX_EPOCH", 1])
    assert run_training(first)["start_epoch"] == 0
    resumed = cfg_factory(RUN_OPTS + ["OUTPUT_DIR", str(tmp_path / "b"), "SOLVER.MAX_EPOCH", 2])
    assert run_training(resumed)["start_epoch"] == 1
    expected, got = _model_state(tmp_path / "a", 2), _model_state(tmp_path / "b", 2)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    assert not torch.equal(_model_state(tmp_path / "b", 1)["head.weight"], got["head.weight"])


@pytest.mark.slow
def test_seeded_training_repeats_exactly_with_a_loader_worker(cfg_factory, tmp_path):
    """Two runs with one seed (augmentation in a loader worker process) end with bit-identical
    weights; another seed does not (docs/RESULTS.md: the study's runs repeat exactly too)."""
    opts = RUN_OPTS + ["SOLVER.MAX_EPOCH", 1, "DATA_LOADER.NUM_WORKERS", 1]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_training(cfg_factory(opts + ["OUTPUT_DIR", str(tmp_path / name), "RNG_SEED", seed]))
    first, repeat, other = (_model_state(tmp_path / name, 1) for name in "abc")
    for key in first:
        assert torch.equal(first[key], repeat[key]), key
    assert not torch.equal(first["head.weight"], other["head.weight"])


def _run_net_cmd(data_dir, out_dir):
    opts = dict(SMALL_OVERRIDES)
    opts.update(
        {
            "DATA.PATH_TO_DATA_DIR": str(data_dir),
            "DATA.PATH_PREFIX": str(data_dir),
            "OUTPUT_DIR": str(out_dir),
            "SOLVER.MAX_EPOCH": 3,
            "TRAIN.BATCH_SIZE": 2,
            "TRAIN.CHECKPOINT_PERIOD": 1,
        }
    )
    opts.update(dict(zip(RUN_OPTS[::2], RUN_OPTS[1::2])))
    flat = [str(x) for pair in opts.items() for x in pair]
    return [sys.executable, str(REPO_ROOT / "tools" / "run_net.py")] + flat


def _stats(out_dir, kind):
    path = os.path.join(out_dir, "stats.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r["_type"] == kind]


def _wait_for_epoch_2(proc, out_dir, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if any(r["epoch"] == 2 for r in _stats(out_dir, "train_iter")):
            return
        time.sleep(0.02)
    raise AssertionError(f"training never reached epoch 2 (exit code {proc.poll()})")


@pytest.mark.slow
def test_killed_training_resumes_and_finishes(synthetic_data_dir, tmp_path):
    out_dir = tmp_path / "run"
    cmd = _run_net_cmd(synthetic_data_dir, out_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_epoch_2(proc, out_dir)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [e for e, _ in checkpoint.list_checkpoints(str(out_dir))] == [1]  # killed inside epoch 2
    # A damaged newer file (as a non-atomic writer would leave) must be reported and not loaded.
    damaged = checkpoint.get_checkpoint_path(str(out_dir), 2)
    shutil.copy(checkpoint.get_checkpoint_path(str(out_dir), 1), damaged)
    with open(damaged, "r+b") as f:
        f.truncate(os.path.getsize(damaged) // 3)
    done_before = len(_stats(out_dir, "train_epoch"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "checkpoint_epoch_00002.pyth: damaged" in proc.stdout
    assert "resumed from" in proc.stdout and "checkpoint_epoch_00001.pyth (1 epochs done)" in proc.stdout
    resumed_epochs = [r["epoch"] for r in _stats(out_dir, "train_epoch")[done_before:]]
    assert resumed_epochs == [2, 3]
    assert [e for e, _ in checkpoint.list_checkpoints(str(out_dir))] == [1, 2, 3]
    assert checkpoint.load_checkpoint_file(checkpoint.get_checkpoint_path(str(out_dir), 3))["epoch"] == 3
