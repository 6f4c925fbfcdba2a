"""Process groups through PyTorch's standard launcher (``torchrun``), and small collectives.

``torchrun --nproc_per_node N tools/run_net.py ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`launch` reads them and opens the default process group
(NCCL on GPU, gloo on CPU). A plain ``python tools/run_net.py ...`` is one process and opens none.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any, Callable, List, Optional, TypeVar

import torch
import torch.distributed as dist
from yacs.config import CfgNode

from resformer_video.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        raise ConfigError("NUM_GPUS", f"is {cfg.NUM_GPUS} but CUDA is not available "
                                      "(set NUM_GPUS 0 to run on CPU)")
    if cfg.NUM_GPUS > 0 and gpu_index() is None:
        raise ConfigError("NUM_GPUS", f"local rank {get_local_rank()} has no GPU "
                                      f"({torch.cuda.device_count()} visible)")


def gpu_index() -> Optional[int]:
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


def init_distributed(cfg: CfgNode) -> None:
    """Open the default process group when launched by torchrun with ``WORLD_SIZE > 1``."""
    check_device(cfg)
    if cfg.NUM_GPUS > 0:
        torch.cuda.set_device(get_device(cfg))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1 and not is_dist():
        dist.init_process_group(backend=backend_for(cfg), init_method="env://",
                                timeout=timedelta(minutes=cfg.DIST_TIMEOUT_MIN))
    elif world_size == 1 and cfg.NUM_GPUS > 1:
        logger.warning("NUM_GPUS is %d but this is one process: it uses one GPU. Launch with "
                       "torchrun --nproc_per_node %d to use them all.", cfg.NUM_GPUS, cfg.NUM_GPUS)


def launch(cfg: CfgNode, fn: Callable[[CfgNode], T]) -> T:
    """Run ``fn(cfg)`` in this process, inside the process group torchrun describes (if any)."""
    init_distributed(cfg)
    try:
        return fn(cfg)
    finally:
        if is_dist():
            dist.destroy_process_group()


def all_gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` outside a process group."""
    if not is_dist():
        return [obj]
    gathered: List[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_mean(values: List[float], device: torch.device) -> List[float]:
    """The mean over ranks of each number in ``values``."""
    if not is_dist():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return (tensor / get_world_size()).tolist()
