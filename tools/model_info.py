#!/usr/bin/env python
"""Print the configured model's parameters and FLOPs (multiply-adds, fvcore, SDPA counted).

One line per resolution: DATA.TEST_CROP_SIZE, or each size given with ``--resolutions``; the clip
has DATA.NUM_FRAMES frames. Example::

    python tools/model_info.py --cfg configs/k400_resformer_b.yaml --resolutions 160 224 288
"""

from __future__ import annotations

from typing import List, Optional, Sequence


import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.models import build_model, count_flops, count_parameters
from resformer_video.utils.parser import build_parser


def model_info_lines(cfg, resolutions: Sequence[int]) -> List[str]:
    """Lines describing the model of ``cfg``: parameters, then GFLOPs per resolution."""
    model = build_model(cfg).eval()
    frames, patch = cfg.DATA.NUM_FRAMES, cfg.MODEL.PATCH_SIZE
    lines = [f"model: {cfg.MODEL.ARCH} depth={len(model.blocks)} width={model.embed_dim} "
             f"attention={cfg.MODEL.ATTENTION_TYPE} spatial={cfg.MODEL.SPATIAL_ATTENTION} "
             f"pos_embed={cfg.MODEL.POS_EMBED} temporal_embed={cfg.MODEL.TEMPORAL_EMBED}",
             f"parameters: {count_parameters(model) / 1e6:.2f} M"]
    for size in resolutions:
        if size % patch:
            raise ConfigError("--resolutions", f"size {size} is not divisible by MODEL.PATCH_SIZE {patch}")
        gflops = count_flops(model, frames, size, size) / 1e9
        lines.append(f"{frames}x{size}x{size}: {gflops:.4g} GFLOPs (multiply-adds) per view")
    return lines


def _split_trailing_resolutions(opts: List[str]) -> tuple:
    """``[KEY VALUE ... --resolutions 160 224]`` -> (``[KEY VALUE ...]``, ``[160, 224]``)."""
    if "--resolutions" not in opts:
        return opts, []
    start = opts.index("--resolutions")
    sizes = [int(v) for v in opts[start + 1:] if v.isdigit()]
    rest = opts[:start] + [v for v in opts[start + 1:] if not v.isdigit()]
    return rest, sizes


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = build_parser("Parameters and FLOPs of the configured model.")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None,
                        help="square input sizes (default: DATA.TEST_CROP_SIZE)")
    args = parser.parse_args(argv)
    args.opts, trailing = _split_trailing_resolutions(args.opts or [])
    args.resolutions = trailing or args.resolutions
    try:
        cfg = load_config(args.cfg_file, args.opts)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        lines = model_info_lines(cfg, args.resolutions or [cfg.DATA.TEST_CROP_SIZE])
    except (ConfigError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
