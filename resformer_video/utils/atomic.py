"""Atomic file writes: a temporary file in the same folder, then ``os.replace``, so a crash leaves
the old file or the complete new one, never a partial one. (Checkpoints: ``atomic_torch_save`` in
utils/checkpoint.py, which also fsyncs.)"""

from __future__ import annotations

import json
import os
from typing import Any, Callable


def temporary_path(path: str) -> str:
    """``DIR/.NAME.tmp.PID.EXT`` for ``DIR/NAME.EXT``: hidden, in the same folder (so ``os.replace``
    is atomic) and with the same extension (writers that pick the format from it, such as PyAV's
    containers, write the same file)."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp.{os.getpid()}{ext}")


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it to ``path``; the temporary file is
    removed if ``write`` fails. The file gets the usual mode (``0666`` less the umask), as any other
    file the process creates."""
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=1)
    atomic_write(path, write)
