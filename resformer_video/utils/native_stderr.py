"""What native code (decord's bundled FFmpeg) prints to file descriptor 2, captured so that it
goes into an error message instead of the terminal."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence


@contextlib.contextmanager
def captured_native_stderr(lines: list[str]) -> Iterator[None]:
    """Append to ``lines`` what native code (decord's FFmpeg) writes to file descriptor 2 in the
    block, instead of letting it reach the terminal. Python-level writes of other threads in that
    moment are captured too, so keep the block short."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(line for line in sink.read().decode(errors="replace").splitlines() if line.strip())


def last_native_reason(lines: Sequence[str], path: str) -> str:
    """decord's last log line without its ``[time] file.cc:N:`` prefix and the path."""
    line = re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", lines[-1]) if lines else ""
    return line.replace(f"ERROR opening: {path}, ", "").strip()
