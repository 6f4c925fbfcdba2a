"""torch.hub entry points: ``torch.hub.load("/path/to/resformer-video", NAME, source="local", **kwargs)``.

NAME is one of the timm architectures of ``resformer_video.models.timm_registry``; kwargs go to
the model (``num_classes``, ``num_frames``, ...). Weights come from a local file:
``pretrained=True, pretrained_cfg_overlay=dict(file="weights.pth")`` (any layout MODEL.PRETRAINED
takes). Nothing is downloaded.
"""

dependencies = ["torch", "timm", "yacs"]

from resformer_video.models.timm_registry import (  # noqa: E402,F401
    resformer_video_base_patch16_224,
    resformer_video_small_patch16_224,
    resformer_video_timesformer_base_patch16_224,
    resformer_video_tiny_patch16_224,
)
