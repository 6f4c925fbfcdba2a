"""Which device each process uses, and the errors naming NUM_GPUS when it has none."""

import pytest
import torch

from resformer_video.config import ConfigError
from resformer_video.utils.distributed import check_device, get_device

from conftest import make_cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpus_without_cuda_name_num_gpus():
    with pytest.raises(ConfigError, match=r"^NUM_GPUS: is 1 but CUDA is not available"):
        check_device(make_cfg(NUM_GPUS=1))
    check_device(make_cfg(NUM_GPUS=0))


@pytest.mark.parametrize("visible, local_rank, expected", [(8, 3, 3), (1, 3, 0), (2, 3, None)])
def test_each_process_finds_its_gpu(monkeypatch, visible, local_rank, expected):
    """cuda:LOCAL_RANK; cuda:0 where the launcher shows each process only its own GPU; an error
    naming NUM_GPUS where the rank has none."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    cfg = make_cfg(NUM_GPUS=1)
    if expected is None:
        with pytest.raises(ConfigError, match=r"^NUM_GPUS: local rank 3 has no GPU \(2 visible\)"):
            check_device(cfg)
    else:
        check_device(cfg)
        assert get_device(cfg) == torch.device("cuda", expected)
