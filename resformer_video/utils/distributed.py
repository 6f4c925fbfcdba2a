"""Process groups through PyTorch's standard launcher (``torchrun``), and small collectives.

``torchrun --nproc_per_node N tools/run_net.py ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`launch` reads them and opens the default process group
(NCCL on GPU, gloo on CPU). A plain ``python tools/run_net.py ...`` with ``NUM_GPUS N > 1`` starts
the N processes itself, as TimeSformer and PySlowFast do, through the same elastic agent torchrun
runs (:func:`spawn_local`: same environment, signal forwarding and failure handling); with
``NUM_GPUS`` 0 or 1 it is one process and opens no group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch
from yacs.config import CfgNode

from resformer_video.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Exit code of a spawned process that stopped on one of the caller's user errors (after printing it).
USER_ERROR_EXIT = 2


class SpawnedProcessError(RuntimeError):
    """A process started by :func:`spawn_local` failed; ``exit_code`` is the first failure's code
    (:data:`USER_ERROR_EXIT` when it stopped on a user error, already printed as one line)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def is_dist() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_master_proc() -> bool:
    """True on global rank 0: the only process that writes logs, stats and checkpoints."""
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def check_device(cfg: CfgNode) -> None:
    """Raise :class:`ConfigError` naming ``NUM_GPUS`` when GPUs are asked for but CUDA is absent."""
    if cfg.NUM_GPUS > 0 and not torch.cuda.is_available():
        raise ConfigError("NUM_GPUS", f"is {cfg.NUM_GPUS} but CUDA is not available (set NUM_GPUS 0 to run on CPU)")
    if cfg.NUM_GPUS > 0 and gpu_index() is None:
        raise ConfigError("NUM_GPUS", f"local rank {get_local_rank()} has no GPU ({torch.cuda.device_count()} visible)")


def gpu_index() -> int | None:
    """This process's GPU: ``LOCAL_RANK``, or 0 when the launcher shows each process only its own
    GPU (``CUDA_VISIBLE_DEVICES`` per task, as some SLURM setups do); None when there is none."""
    count, local_rank = torch.cuda.device_count(), get_local_rank()
    if local_rank < count:
        return local_rank
    return 0 if count == 1 else None


def get_device(cfg: CfgNode) -> torch.device:
    """This process's device: ``cuda:`` :func:`gpu_index` when ``NUM_GPUS > 0``, else the CPU."""
    if cfg.NUM_GPUS > 0:
        return torch.device("cuda", gpu_index())
    return torch.device("cpu")


def backend_for(cfg: CfgNode) -> str:
    """``DIST_BACKEND`` when set, else ``nccl`` on GPU and ``gloo`` on CPU."""
    if cfg.DIST_BACKEND:
        return cfg.DIST_BACKEND
    return "nccl" if cfg.NUM_GPUS > 0 else "gloo"


def launched_by_torchrun() -> bool:
    """True when a launcher (torchrun, or :func:`spawn_local`) has set ``WORLD_SIZE``."""
    return "WORLD_SIZE" in os.environ


def launch_world_size(cfg: CfgNode) -> int:
    """Processes that :func:`launch` runs ``cfg`` in: torchrun's ``WORLD_SIZE``; else ``NUM_GPUS``
    when it is more than 1 (one spawned process per GPU); else 1."""
    if launched_by_torchrun():
        return int(os.environ["WORLD_SIZE"])
    return cfg.NUM_GPUS if cfg.NUM_GPUS > 1 else 1


def init_distributed(cfg: CfgNode) -> None:
    """Open the default process group when launched with ``WORLD_SIZE > 1``."""
    check_device(cfg)
    if cfg.NUM_GPUS > 0:
        torch.cuda.set_device(get_device(cfg))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1 and not is_dist():
        dist.init_process_group(
            backend=backend_for(cfg), init_method="env://", timeout=timedelta(minutes=cfg.DIST_TIMEOUT_MIN)
        )


def launch(cfg: CfgNode, fn: Callable[[CfgNode], T], user_errors: tuple[type[BaseException], ...] = ()) -> T:
    """Run ``fn(cfg)``: in this process, inside the process group torchrun describes (if any); or,
    under a plain ``python`` with ``NUM_GPUS N > 1``, in N processes started by :func:`spawn_local`
    (rank 0's result is returned). ``user_errors``: exceptions a spawned process reports as one
    ``error:`` line (see :func:`spawn_local`); in this process they propagate as raised.

    Raises:
        ConfigError: ``NUM_GPUS`` asks for more GPUs than are visible.
        SpawnedProcessError: a spawned process failed.
    """
    if not launched_by_torchrun() and cfg.NUM_GPUS > 1:
        check_gpu_count(cfg)
        return spawn_local(cfg, fn, cfg.NUM_GPUS, user_errors)
    init_distributed(cfg)
    try:
        return fn(cfg)
    finally:
        if is_dist():
            dist.destroy_process_group()


def check_gpu_count(cfg: CfgNode) -> None:
    """Raise :class:`ConfigError` naming ``NUM_GPUS`` when fewer GPUs are visible than it asks for."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cfg.NUM_GPUS > visible:
        raise ConfigError(
            "NUM_GPUS",
            f"is {cfg.NUM_GPUS} but {visible} GPU(s) are visible (set NUM_GPUS {visible} or fewer; 0 runs on CPU)",
        )


def spawn_local(
    cfg: CfgNode, fn: Callable[[CfgNode], T], nprocs: int, user_errors: tuple[type[BaseException], ...] = ()
) -> T:
    """Run ``fn(cfg)`` in ``nprocs`` processes on this machine (one per GPU, or gloo CPU processes
    with ``NUM_GPUS 0``) and return rank 0's result.

    It is ``torchrun --standalone --nproc_per_node nprocs`` done in-process with the same agent
    (:class:`torch.distributed.launcher.api.elastic_launch`): the processes get ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` / ``MASTER_PORT`` (a free local port) and
    ``OMP_NUM_THREADS=1`` unless set, SIGTERM / SIGINT are forwarded to them, and no process is
    restarted. A process that raises one of ``user_errors`` prints it as one ``error:`` line (rank 0)
    and exits with :data:`USER_ERROR_EXIT`.

    Raises:
        SpawnedProcessError: a process failed (its exit code; the traceback is above it).
    """
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun does for several processes
    with _signal_handlers_restored():  # the agent installs its own and leaves them behind
        try:
            results = elastic_launch(config, _run_spawned)(cfg.dump(), fn, user_errors)
        except ChildFailedError as err:
            codes = [failure.exitcode for failure in err.failures.values()]
            code = USER_ERROR_EXIT if USER_ERROR_EXIT in codes else codes[0]
            raise SpawnedProcessError(
                code, f"{len(codes)} of {nprocs} processes failed (exit codes {sorted(set(codes))})"
            ) from None
    return results[0]


@contextlib.contextmanager
def _signal_handlers_restored() -> Iterator[None]:
    """Put back this process's SIGTERM / SIGINT / SIGHUP / SIGQUIT handlers on leaving (torch's
    elastic agent replaces them with its own for the launch and does not restore them)."""
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    saved = {sig: signal.getsignal(sig) for sig in (getattr(signal, n) for n in names if hasattr(signal, n))}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _run_spawned(cfg_text: str, fn: Callable[[CfgNode], T], user_errors: tuple[type[BaseException], ...]) -> T:
    """One process of :func:`spawn_local`: ``launch(cfg, fn)`` inside the process group."""
    cfg = CfgNode.load_cfg(cfg_text)
    cfg.freeze()
    try:
        return launch(cfg, fn)
    except user_errors as err:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(USER_ERROR_EXIT)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` outside a process group."""
    if not is_dist():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_mean(values: list[float], device: torch.device) -> list[float]:
    """The mean over ranks of each number in ``values``."""
    if not is_dist():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return (tensor / get_world_size()).tolist()
