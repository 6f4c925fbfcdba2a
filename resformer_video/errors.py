"""Every error the package raises for bad input, in one module at the bottom of the layers: any
module may import it, it imports nothing of the package. Tools turn these into one ``error:`` line
(:data:`USER_ERRORS`); anything else is a bug and keeps its traceback."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid config key or value; ``key`` is the full dotted key name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DatasetListError(ValueError):
    """A missing or malformed dataset list or class-names file; the message starts with the file."""


class DatasetFailureError(RuntimeError):
    """Too many videos of a split cannot be read (wrong ``DATA.PATH_PREFIX``, broken files)."""


class VideoDecodeError(RuntimeError):
    """A video that cannot be opened or decoded (missing, empty, truncated, not a video).
    ``reason``: why, without the path (for messages that combine several backends)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class VideoNotFoundError(VideoDecodeError):
    """A listed video file that does not exist (a wrong path, not a broken file)."""


class DecoderUnavailableError(ImportError):
    """The package of the requested ``DATA.DECODER`` backend cannot be imported."""


class CheckpointError(ValueError):
    """An unreadable or incompatible checkpoint; the message names the file and the first bad key."""


class PrecisionUnavailable(ValueError):
    """A precision that cannot (or should not) run on a device; the message says why."""


class StudyConfigMismatch(ValueError):
    """A run folder holds a run made with another config than this invocation's."""
