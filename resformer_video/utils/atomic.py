"""Atomic file writes: a temporary file in the same folder, then ``os.replace``, so a crash leaves
the old file or the complete new one, never a partial one. (Checkpoints: ``atomic_torch_save`` in
utils/checkpoint.py, which also fsyncs.)"""

from __future__ import annotations

import json
import os
from typing import Any, Callable


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it to ``path``; the temporary file is
    removed if ``write`` fails."""
    tmp = f"{path}.tmp.{os.getpid()}"
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
