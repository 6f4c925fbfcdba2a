"""A run's output folder is its own: the folder lock, the resume config check, SIGTERM / Ctrl-C
ending in a checkpoint that resumes mid-epoch, leftovers of killed writes, and output-side errors
(a folder that is a file or read-only, a full disk) as one line naming the path and the cause."""

import errno
import importlib
import json
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from resformer_video.config import ConfigError
from resformer_video.config.compare import RUN_PLACE_KEYS, check_resume_config, config_differences
from resformer_video.engine.interrupt import TrainingInterrupted
from resformer_video.engine.runner import error_line
from resformer_video.engine.train import train as run_training
from resformer_video.utils import checkpoint, run_lock
from resformer_video.utils.atomic import check_writable_folder
from resformer_video.utils.logging import StatsWriter
from resformer_video.utils.stop_signal import StopOnSignal

from conftest import REPO_ROOT, SMALL_OVERRIDES, make_cfg
from conftest import TINY_RUN_OPTS as RUN_OPTS

train_module = importlib.import_module("resformer_video.engine.train")  # the package exports train()
RUN_NET_MAIN = runpy.run_path(str(REPO_ROOT / "tools" / "run_net.py"))["main"]


@pytest.fixture
def package_logs(monkeypatch):
    """Let the package logger's records reach caplog."""
    monkeypatch.setattr(logging.getLogger("resformer_video"), "propagate", True)


def _run_net_args(data_dir, out_dir, *extra):
    opts = dict(SMALL_OVERRIDES)
    opts.update({"DATA.PATH_TO_DATA_DIR": data_dir, "DATA.PATH_PREFIX": data_dir, "OUTPUT_DIR": out_dir})
    opts.update(dict(zip(RUN_OPTS[::2], RUN_OPTS[1::2])))
    return [str(x) for pair in opts.items() for x in pair] + [str(x) for x in extra]


def _error_lines(text):
    return [line for line in text.splitlines() if line.strip()]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(out_dir, **owner):
    os.makedirs(out_dir, exist_ok=True)
    record = {
        "pid": 1,
        "host": socket.gethostname(),
        "started": "then",
        "command": "other run",
        "slurm_job_id": "",
    } | owner
    with open(run_lock.lock_path(str(out_dir)), "w", encoding="utf-8") as handle:
        json.dump(record, handle)


# ---------------------------------------------------------------------------------------- the lock


def test_second_run_in_a_busy_output_dir_is_refused_naming_the_other(tmp_path, capsys):
    """A live process holds the folder: run_net stops at once with one line naming it; its lock
    is left alone."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path / "out", pid=other.pid)
        code = RUN_NET_MAIN(_run_net_args(tmp_path / "no_data", tmp_path / "out"))
        err = capsys.readouterr().err
        assert code == 2
        (line,) = _error_lines(err)
        assert line.startswith(f"error: {tmp_path / 'out'} is in use by another run: pid {other.pid} on host")
        assert json.loads((tmp_path / "out" / "run.lock").read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_stale_lock_of_a_dead_process_is_taken_over_and_released(tmp_path, capsys):
    """A lock whose process is gone (kill -9) is taken over with a log line (the log is set up in
    the folder first, so the line is also in its log.txt)."""
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead)
    with run_lock.output_dir_lock(str(tmp_path)):
        owner = json.loads((tmp_path / "run.lock").read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with run_lock.output_dir_lock(str(tmp_path)):  # reentrant: the inner use keeps it
            pass
        assert (tmp_path / "run.lock").exists()
    assert not (tmp_path / "run.lock").exists()
    log = (tmp_path / "log.txt").read_text()
    assert f"left by pid {dead} on host" in log and f"pid {dead} no longer runs" in log
    assert f"left by pid {dead}" in capsys.readouterr().out


@pytest.mark.parametrize("age_s, slurm_job, taken", [(30, "", False), (3600, "", True), (30, "77", True)])
def test_lock_from_another_host(tmp_path, monkeypatch, age_s, slurm_job, taken):
    """Another host's lock is stale when its owner stopped refreshing it, or when it is an earlier
    start of this SLURM job (a requeued job lands on another node); else it is respected."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    _write_lock(tmp_path, pid=os.getpid(), host="elsewhere-node", slurm_job_id=slurm_job)
    then = time.time() - age_s
    os.utime(tmp_path / "run.lock", (then, then))
    if taken:
        lock = run_lock.acquire(str(tmp_path))
        assert json.loads((tmp_path / "run.lock").read_text())["host"] == socket.gethostname()
        lock.release()
    else:
        with pytest.raises(run_lock.RunLockError, match="on host elsewhere-node"):
            run_lock.acquire(str(tmp_path))


def test_output_dir_that_is_a_file_or_unwritable_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    for out, cause in (
        (tmp_path / "a_file", "is a file, not a folder"),
        (tmp_path / "a_file" / "sub", "not a directory"),
    ):
        assert RUN_NET_MAIN(_run_net_args(tmp_path, out)) == 2
        (line,) = _error_lines(capsys.readouterr().err)
        assert line.startswith("error: OUTPUT_DIR: ") and str(out) in line and line.endswith(cause)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr("tempfile.NamedTemporaryFile", read_only)
    assert RUN_NET_MAIN(_run_net_args(tmp_path, tmp_path / "ro")) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == f"error: OUTPUT_DIR: cannot write to {tmp_path / 'ro'}: read-only file system"


# ------------------------------------------------------------------------------- resume config


def test_config_differences_fill_absent_keys_with_defaults_and_skip_free_keys():
    cfg = make_cfg(None, SOLVER__BASE_LR=0.1, OUTPUT_DIR="/b")
    stored = make_cfg(None, OUTPUT_DIR="/a").dump().replace("  RESUME_ALLOWED_CHANGES: []\n", "")
    assert "RESUME_ALLOWED_CHANGES" not in stored  # as written before that key existed
    assert config_differences(stored, cfg) == ["SOLVER.BASE_LR: 0.005 -> 0.1"]
    assert config_differences(stored, cfg, RUN_PLACE_KEYS + ("SOLVER",)) == []
    check_resume_config(stored, make_cfg(None, SOLVER__MAX_EPOCH=40, TEST__NUM_SPATIAL_CROPS=3), "c.pyth")
    with pytest.raises(
        ConfigError,
        match=r"^OUTPUT_DIR: c.pyth was written by a run with another "
        r"config \(RNG_SEED: 0 -> 5; SOLVER.BASE_LR: 0.005 -> 0.1\)",
    ):
        check_resume_config(stored, make_cfg(None, SOLVER__BASE_LR=0.1, RNG_SEED=5), "c.pyth")
    allowed = make_cfg(None, SOLVER__BASE_LR=0.1, TRAIN__RESUME_ALLOWED_CHANGES=["SOLVER.BASE_LR"])
    check_resume_config(stored, allowed, "c.pyth")
    with pytest.raises(ConfigError, match="^TRAIN.RESUME_ALLOWED_CHANGES: names no config key"):
        make_cfg(None, TRAIN__RESUME_ALLOWED_CHANGES=["SOLVER.LR"])


def test_resume_with_another_config_stops_naming_the_keys(synthetic_data_dir, tmp_path, capsys):
    """A second run with another learning rate and seed in the first one's OUTPUT_DIR must not
    continue the first run's checkpoint."""
    out = tmp_path / "out"
    first = make_cfg(synthetic_data_dir, RUN_OPTS + ["OUTPUT_DIR", str(out)])
    path = checkpoint.get_checkpoint_path(str(out), 1)
    checkpoint.save_checkpoint(path, torch.nn.Linear(2, 2), 1, cfg_text=first.dump())
    code = RUN_NET_MAIN(_run_net_args(synthetic_data_dir, out, "SOLVER.BASE_LR", 0.1, "RNG_SEED", 3))
    (line,) = _error_lines(capsys.readouterr().err)
    assert code == 2 and line.startswith(
        f"error: OUTPUT_DIR: {path} was written by a run with another config "
        "(RNG_SEED: 0 -> 3; SOLVER.BASE_LR: 0.005 -> 0.1)"
    )
    assert "TRAIN.RESUME_ALLOWED_CHANGES \"['RNG_SEED', 'SOLVER.BASE_LR']\"" in line
    assert not (out / "run.lock").exists()


# ------------------------------------------------------------------- leftovers, stats, disk full


def test_leftover_temporary_files_are_recognised_and_removed(tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    leftovers = [tmp_path / ".test_results.tmp.17.json", ckpt_dir / ".checkpoint_epoch_00002.pyth.tmp.4242"]
    keep = [ckpt_dir / "checkpoint_epoch_00001.pyth", tmp_path / "notes.tmp.txt", tmp_path / "x.tmp.abc"]
    for path in leftovers + keep:
        path.write_bytes(b"x")
    assert checkpoint.remove_temp_files(str(tmp_path)) == [str(p) for p in leftovers]
    assert all(p.exists() for p in keep) and not any(p.exists() for p in leftovers)


def test_stats_records_after_the_resume_point_are_dropped(tmp_path):
    writer = StatsWriter(str(tmp_path))
    records = [
        {"_type": "train_iter", "epoch": 1, "iter": 1},
        {"_type": "train_iter", "epoch": 1, "iter": 2},
        {"_type": "train_epoch", "epoch": 1},
        {"_type": "val", "epoch": 1},
        {"_type": "train_iter", "epoch": 2, "iter": 1},
        {"_type": "train_iter", "epoch": 2, "iter": 2},
        {"_type": "train_epoch", "epoch": 2},
        {"_type": "test", "size": 64},
    ]
    for record in records:
        writer.write(record)
    assert writer.drop_after(1, 1) == 2
    kept = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert kept == records[:5] + records[7:]
    assert writer.drop_after(0) == 5 and not (tmp_path / f"stats.jsonl.tmp.{os.getpid()}").exists()


def test_full_disk_while_saving_a_checkpoint_names_the_file_and_keeps_the_last_one(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    path = checkpoint.get_checkpoint_path(str(tmp_path), 1)
    checkpoint.save_checkpoint(path, model, 1)
    before = open(path, "rb").read()

    def disk_full(obj, f, *args, **kwargs):  # what torch raises on ENOSPC: no file name
        f.write(b"partial")
        raise OSError(
            errno.ENOSPC,
            "No space left on device [enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598",
        )

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError) as info:
        checkpoint.save_checkpoint(path, model, 2)
    assert error_line(info.value) == f"{path}: no space left on device"
    assert open(path, "rb").read() == before
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


def test_unwritable_folder_is_named_with_its_cause(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError) as info:
        check_writable_folder(str(tmp_path / "f"))
    assert error_line(info.value) == f"{tmp_path / 'f'}: is a file, not a folder"
    with pytest.raises(OSError) as info:
        check_writable_folder(str(tmp_path / "f" / "sub"))
    assert error_line(info.value) == f"{tmp_path / 'f' / 'sub'}: not a directory"


def test_missing_training_video_is_reported_as_not_found(tmp_path, caplog, package_logs):
    state = train_module.TrainState(
        model=None,
        net=None,
        ddp=None,
        optimizer=None,
        scaler=None,
        criterion=None,
        device=torch.device("cpu"),
        dtype=None,
    )
    (tmp_path / "broken.mp4").write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        train_module._note_failures(state, [[str(tmp_path / "gone.mp4")], [str(tmp_path / "broken.mp4")]])
    assert f"training video not found and was replaced: {tmp_path / 'gone.mp4'}" in caplog.text
    assert f"training video failed to decode and was replaced: {tmp_path / 'broken.mp4'}" in caplog.text


# --------------------------------------------------------------------------- SIGTERM and Ctrl-C


def _stats(out_dir, kind):
    with open(os.path.join(out_dir, "stats.jsonl"), encoding="utf-8") as handle:
        return [r for r in map(json.loads, handle) if r["_type"] == kind]


def _signal_after_steps(monkeypatch, steps, signum=signal.SIGTERM):
    """Send ``signum`` to this process right after the ``steps``-th optimiser step."""
    real, calls = train_module.optimizer_step, []

    def step_then_signal(state):
        real(state)
        calls.append(1)
        if len(calls) == steps:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(train_module, "optimizer_step", step_then_signal)


@pytest.mark.slow
def test_sigterm_mid_epoch_resumes_to_the_uninterrupted_result(cfg_factory, tmp_path, monkeypatch):
    """2 epochs of 4 iterations in one go == stopped by SIGTERM after iteration 2 of epoch 2, then
    resumed (bit-exact with NUM_WORKERS 0); the stats hold one record per epoch and iteration."""
    opts = RUN_OPTS + ["SOLVER.MAX_EPOCH", 2]
    straight = cfg_factory(opts + ["OUTPUT_DIR", str(tmp_path / "a")])
    run_training(straight)
    stopped = cfg_factory(opts + ["OUTPUT_DIR", str(tmp_path / "b")])
    _signal_after_steps(monkeypatch, 6)
    with pytest.raises(TrainingInterrupted) as info:
        run_training(stopped)
    mid = checkpoint.get_mid_epoch_path(str(tmp_path / "b"), 1, 2)
    assert info.value.exit_code == 143 and info.value.checkpoint == mid
    assert str(info.value).startswith(f"stopped by SIGTERM in epoch 2 after iteration 2; wrote {mid}")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    assert not (tmp_path / "b" / "run.lock").exists()
    leftover = tmp_path / "b" / "checkpoints" / ".checkpoint_epoch_00002.pyth.tmp.99999"
    leftover.write_bytes(b"killed mid-save")
    monkeypatch.undo()
    summary = run_training(stopped)
    assert (summary["start_epoch"], summary["start_iter"]) == (1, 2)
    assert not leftover.exists() and not os.path.exists(mid)  # replaced by epoch 2's checkpoint
    expected = checkpoint.load_checkpoint_file(checkpoint.get_checkpoint_path(str(tmp_path / "a"), 2))
    got = checkpoint.load_checkpoint_file(checkpoint.get_checkpoint_path(str(tmp_path / "b"), 2))
    for key, value in expected["model_state"].items():
        torch.testing.assert_close(got["model_state"][key], value, rtol=0, atol=0)
    assert [r["epoch"] for r in _stats(tmp_path / "b", "train_epoch")] == [1, 2]
    iters = [(r["epoch"], r["iter"]) for r in _stats(tmp_path / "b", "train_iter")]
    assert iters == [(e, i) for e in (1, 2) for i in (1, 2, 3, 4)]
    for a, b in zip(_stats(tmp_path / "a", "train_epoch"), _stats(tmp_path / "b", "train_epoch")):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)  # the epoch means include the stop


@pytest.mark.slow
def test_signal_in_an_epochs_last_step_stops_after_the_epoch(cfg_factory, tmp_path, monkeypatch):
    cfg = cfg_factory(RUN_OPTS + ["SOLVER.MAX_EPOCH", 3, "OUTPUT_DIR", str(tmp_path), "TRAIN.CHECKPOINT_PERIOD", 2])
    _signal_after_steps(monkeypatch, 4, signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as info:
        run_training(cfg)
    assert info.value.exit_code == 130 and "stopped by SIGINT after epoch 1" in str(info.value)
    assert [e for e, _ in checkpoint.list_checkpoints(str(tmp_path))] == [1]  # written for the stop
    assert checkpoint.list_mid_epoch_checkpoints(str(tmp_path)) == []


def test_first_signal_is_a_request_and_a_second_stops_at_once(tmp_path, capsys, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    run_net = runpy.run_path(str(REPO_ROOT / "tools" / "run_net.py"))

    def interrupted(cfg, fn, *args):
        raise KeyboardInterrupt

    from resformer_video.engine import runner

    monkeypatch.setattr(runner, "launch", interrupted)
    assert run_net["main"](_run_net_args(tmp_path, tmp_path / "out")) == 130
    assert _error_lines(capsys.readouterr().err) == ["error: interrupted (Ctrl-C)"]


def _run_net_cmd(data_dir, out_dir, *extra):
    return [sys.executable, str(REPO_ROOT / "tools" / "run_net.py")] + _run_net_args(
        data_dir, out_dir, "SOLVER.MAX_EPOCH", 2, "TRAIN.BATCH_SIZE", 2, *extra
    )


def _wait_for_iteration(proc, out_dir, epoch, iteration, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if any((r["epoch"], r["iter"]) >= (epoch, iteration) for r in _stats(out_dir, "train_iter")):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"training never reached epoch {epoch} iteration {iteration} (exit {proc.poll()})")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "ctrl_c_with_a_worker"])
def test_run_net_stops_on_a_signal_with_one_line_and_continues(synthetic_data_dir, tmp_path, how):
    """SIGTERM to the process, or Ctrl-C to its whole process group (data-loader worker included):
    one line on stderr, exit 128 + signal, a mid-epoch checkpoint; the same command then finishes
    with one train_epoch record per epoch."""
    out = tmp_path / "out"
    extra = ("DATA_LOADER.NUM_WORKERS", 1) if how == "ctrl_c_with_a_worker" else ()
    cmd = _run_net_cmd(synthetic_data_dir, out, *extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_iteration(proc, out, 1, 2)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    name, code = ("SIGTERM", 143) if how == "sigterm" else ("SIGINT", 130)
    assert proc.returncode == code, err[-2000:]
    (line,) = _error_lines(err)
    assert line.startswith(f"stopped: stopped by {name} in epoch 1 after iteration ")
    assert len(checkpoint.list_mid_epoch_checkpoints(str(out))) == 1
    assert not (out / "run.lock").exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "iterations of epoch 1)" in rerun.stdout  # resumed mid-epoch
    assert [r["epoch"] for r in _stats(out, "train_epoch")] == [1, 2]
    iters = [(r["epoch"], r["iter"]) for r in _stats(out, "train_iter")]
    assert len(iters) == len(set(iters)) == 2 * 8  # 16 videos, batch 2


def _stop_worker(rank, world_size, port, data_dir, out_dir):
    """One rank of a two-process run in which only rank 1 gets SIGTERM (after its 2nd step)."""
    from resformer_video.utils.distributed import launch

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    module = importlib.import_module("resformer_video.engine.train")
    if rank == 1:
        real, calls = module.optimizer_step, []

        def step_then_signal(state):
            real(state)
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGTERM)

        module.optimizer_step = step_then_signal
    cfg = make_cfg(data_dir, RUN_OPTS + ["OUTPUT_DIR", out_dir, "SOLVER.MAX_EPOCH", 1, "TRAIN.BATCH_SIZE", 2])
    try:
        launch(cfg, module.train)
        outcome = {"finished": True}
    except TrainingInterrupted as err:
        outcome = {"exit_code": err.exit_code, "checkpoint": err.checkpoint}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(outcome, handle)


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(synthetic_data_dir, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_stop_worker, args=(2, port, str(synthetic_data_dir), str(tmp_path)), nprocs=2, join=True)
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    mid = checkpoint.get_mid_epoch_path(str(tmp_path), 0, 2)
    assert outcomes == [{"exit_code": 143, "checkpoint": mid}] * 2
    state = checkpoint.load_checkpoint_file(mid)
    assert state["progress"]["iteration"] == 2 and len(state["rng_states"]) == 2
    assert not (tmp_path / "run.lock").exists()
