"""resformer-video: ResFormer-style divided space-time video transformers for action recognition.

Importing the package registers its architectures with timm (``timm.list_models("*resformer*")``).
"""

__version__ = "0.1.0"

from resformer_video.models import timm_registry  # noqa: E402,F401  (registers with timm)
