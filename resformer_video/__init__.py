"""resformer-video: ResFormer-style divided space-time video transformers for action recognition."""

__version__ = "0.1.0"
