"""Atomic file writes: a temporary file in the same folder, then ``os.replace``, so a crash leaves
the old file or the complete new one, never a partial one. (Checkpoints: ``atomic_torch_save`` in
utils/checkpoint.py, which also fsyncs.)"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import tempfile
from typing import Any, Callable

# The temporary files of these writers: ``.NAME.tmp.PID.EXT`` (atomic_write) and ``.NAME.tmp.PID``
# (checkpoints); a process killed while writing leaves one behind.
TEMP_SUFFIX = ".tmp."
_TEMP_NAME = re.compile(r"\..+\.tmp\.\d+(\.[A-Za-z0-9]+)?")


def temporary_path(path: str) -> str:
    """``DIR/.NAME.tmp.PID.EXT`` for ``DIR/NAME.EXT``: hidden, in the same folder (so ``os.replace``
    is atomic) and with the same extension (writers that pick the format from it, such as PyAV's
    containers, write the same file)."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}{TEMP_SUFFIX}{os.getpid()}{ext}")


def temporary_files_of(path: str) -> list[str]:
    """Temporary files that writers killed while writing ``path`` left behind (:func:`temporary_path`'s
    names for any process id), sorted."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    pattern = os.path.join(glob.escape(folder), f".{glob.escape(stem)}{TEMP_SUFFIX}*{glob.escape(ext)}")
    return sorted(p for p in glob.glob(pattern) if is_temp_file(os.path.basename(p)))


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it to ``path``; the temporary file is
    removed if ``write`` fails, and an OSError names ``path`` and the cause (:func:`write_error`). The
    file gets the usual mode (``0666`` less the umask), as any other file the process creates."""
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise write_error(err, path) from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=1)

    atomic_write(path, write)


def write_error(err: OSError, path: str) -> OSError:
    """``err`` (raised while writing ``path``, maybe through a temporary file) as an OSError whose
    message is the cause and whose filename is ``path`` (torch raises one naming neither)."""
    code = err.errno or errno.EIO
    return OSError(code, os.strerror(code), path)


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: ``PATH: cause`` (``/out/x.pyth: no space left on device``)."""
    cause = (err.strerror or (os.strerror(err.errno) if err.errno else str(err))).lower()
    return f"{err.filename}: {cause}" if err.filename else cause


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is a temporary file of these writers (``.NAME.tmp.PID`` or ``.NAME.tmp.PID.EXT``)."""
    return _TEMP_NAME.fullmatch(name) is not None


def check_writable_folder(folder: str) -> None:
    """Create ``folder`` if needed and write (and remove) a small file in it, so that a place that
    cannot take the output fails before the work rather than after it.

    Raises:
        OSError: naming ``folder`` and the cause (a file there, read-only file system, no space,
            no permission).
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", folder)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_check."):
            pass
    except OSError as err:
        raise write_error(err, folder) from err
