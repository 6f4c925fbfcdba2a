"""Two-process gloo DDP on CPU averages gradients exactly like one process on the global batch,
with one backward, with backward per resolution and with gradient accumulation (no_sync)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from resformer_video.config import ConfigError
from resformer_video.engine.optimizer import accumulation_steps
from resformer_video.engine.train import build_train_state, forward_backward
from resformer_video.models import build_model

from conftest import make_cfg

GLOBAL_BATCH, SIZES = 4, (64, 32)


def _data():
    """A global batch of 4 clips at both sizes, and labels."""
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(GLOBAL_BATCH, 3, 4, SIZES[0], SIZES[0], generator=gen)
    clips = [
        F.interpolate(base.flatten(1, 2), size=(s, s), mode="bilinear", align_corners=False).view(
            GLOBAL_BATCH, 3, 4, s, s
        )
        for s in SIZES
    ]
    return clips, torch.tensor([0, 1, 2, 3])


def _state(**overrides):
    cfg = make_cfg(MODEL__DROP_PATH_RATE=0.0, DATA__TRAIN_CROP_SIZES=list(SIZES), **overrides)
    torch.manual_seed(0)
    return build_train_state(cfg, build_model(cfg), torch.device("cpu"))


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _run_micro_steps(state, clips, labels, rows_per_step):
    """forward_backward over consecutive row slices; only the last one synchronises."""
    starts = list(range(0, labels.shape[0], rows_per_step))
    for k, start in enumerate(starts):
        rows = slice(start, start + rows_per_step)
        forward_backward(state, [c[rows] for c in clips], labels[rows], sync=k == len(starts) - 1)


def _worker(rank, world_size, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        clips, labels = _data()
        half = GLOBAL_BATCH // world_size
        mine = slice(rank * half, (rank + 1) * half)
        clips, labels = [c[mine] for c in clips], labels[mine]
        # One backward per step, 2 clips per process.
        state = _state(TRAIN__BATCH_SIZE=half)
        assert state.ddp is not None and state.accum_steps == 1
        forward_backward(state, clips, labels)
        plain = _grads(state.model)
        # Backward per resolution, 1 clip per micro-batch, 2 micro-batches per optimiser step.
        state = _state(TRAIN__BATCH_SIZE=1, TRAIN__GLOBAL_BATCH_SIZE=GLOBAL_BATCH, TRAIN__BACKWARD_PER_RESOLUTION=True)
        assert state.accum_steps == 2
        _run_micro_steps(state, clips, labels, rows_per_step=1)
        torch.save({"plain": plain, "accum": _grads(state.model)}, os.path.join(out_dir, f"grads_{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def reference_grads():
    """Gradients of one process on the whole global batch in one step."""
    clips, labels = _data()
    state = _state(TRAIN__BATCH_SIZE=GLOBAL_BATCH)
    forward_backward(state, clips, labels)
    return _grads(state.model)


def _assert_same(grads, reference):
    assert grads.keys() == reference.keys() and len(reference) > 10
    for name, ref in reference.items():
        torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.slow
def test_two_process_gloo_matches_one_process(tmp_path, reference_grads):
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        saved = torch.load(tmp_path / f"grads_{rank}.pt")
        _assert_same(saved["plain"], reference_grads)
        _assert_same(saved["accum"], reference_grads)


@pytest.mark.slow
def test_accumulation_in_one_process_matches_one_big_batch(reference_grads):
    clips, labels = _data()
    state = _state(TRAIN__BATCH_SIZE=1, TRAIN__GLOBAL_BATCH_SIZE=GLOBAL_BATCH)
    assert state.accum_steps == GLOBAL_BATCH
    _run_micro_steps(state, clips, labels, rows_per_step=1)
    _assert_same(_grads(state.model), reference_grads)


@pytest.mark.slow
def test_partial_last_group_is_a_mean_over_its_micro_batches():
    """An epoch's last optimiser step may get fewer micro-batches than TRAIN.GLOBAL_BATCH_SIZE asks
    for; its gradient is still the mean over the clips it saw, as one batch of them gives."""
    clips, labels = _data()
    rows = slice(2, 4)
    plain = _state()
    forward_backward(plain, [c[rows] for c in clips], labels[rows])
    state = _state(TRAIN__BATCH_SIZE=1, TRAIN__GLOBAL_BATCH_SIZE=GLOBAL_BATCH)
    for k in (2, 3):
        forward_backward(state, [c[k : k + 1] for c in clips], labels[k : k + 1], sync=k == 3, group_size=2)
    _assert_same(_grads(state.model), _grads(plain.model))


def test_global_batch_must_divide_by_processes():
    cfg = make_cfg(TRAIN__BATCH_SIZE=2, TRAIN__GLOBAL_BATCH_SIZE=6)
    assert accumulation_steps(cfg, world_size=1) == 3
    with pytest.raises(ConfigError, match=r"^TRAIN.GLOBAL_BATCH_SIZE"):
        accumulation_steps(cfg, world_size=2)


def _launch_worker(rank, world_size, port, data_dir, out_dir):
    """One rank of ``tools/run_net.py``'s path: ``launch(cfg, run)`` under torchrun's variables."""
    import json

    from resformer_video.engine import run
    from resformer_video.utils.distributed import launch

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    cfg = make_cfg(
        data_dir,
        OUTPUT_DIR=out_dir,
        SOLVER__MAX_EPOCH=1,
        TRAIN__GLOBAL_BATCH_SIZE=8,
        TEST__NUM_ENSEMBLE_VIEWS=2,
        TEST__NUM_SPATIAL_CROPS=3,
    )
    out = launch(cfg, run)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(out["test"]["results"], handle, sort_keys=True)


@pytest.mark.slow
def test_two_process_train_then_multi_view_test(synthetic_data_dir, tmp_path):
    """Train one epoch and test 2 clips x 3 crops in two gloo processes through ``launch``: one
    checkpoint, and both ranks report the same results over every test video's six views."""
    import json
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_launch_worker, args=(2, port, str(synthetic_data_dir), str(tmp_path)), nprocs=2, join=True)
    # one epoch checkpoint, and best.pyth from the val evaluation (written by rank 0 alone)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["best.pyth", "checkpoint_epoch_00001.pyth"]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1]
    test_videos = len((synthetic_data_dir / "test.csv").read_text().splitlines())
    (size_results,) = results[0].values()  # one test size
    assert size_results["num_videos"] == test_videos and size_results["num_incomplete"] == 0
    assert size_results["num_clips"] == 6 * test_videos and size_results["num_failed"] == 0
