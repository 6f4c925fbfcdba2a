"""The command-line tools, installed as ``resformer_video.tools`` (see ``resformer_video/cli.py``)."""
