"""One run per output folder: a lock file ``OUTPUT_DIR/run.lock`` naming the process that holds it.

Two runs writing one ``OUTPUT_DIR`` would overwrite each other's checkpoints, stats and results and
both report success, so a training run takes the folder's lock first (rank 0 only under a process
group; every rank stops when it fails). The lock is a file created exclusively, holding the owner's
pid, host, start time, command and SLURM job id; it is removed when the run ends, however it ends
short of SIGKILL. A lock left behind is taken over, with a warning, when its owner is gone: an
earlier start of this SLURM job (a requeued job, on any node); on this host a pid that no longer
runs; on another host a lock its owner stopped refreshing (the holder touches it every
:data:`HEARTBEAT_S` seconds) more than :data:`STALE_AFTER_S` seconds ago. Otherwise the run stops
with :class:`RunLockError` naming the other process (and the lock file, to delete by hand if that
process is really gone).

Before that the folder is checked: an ``OUTPUT_DIR`` that is a file, cannot be created or cannot
be written to (read-only file system, no permission) is a :class:`ConfigError` naming ``OUTPUT_DIR``
and the cause.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from resformer_video.errors import ConfigError
from resformer_video.utils import distributed
from resformer_video.utils.atomic import check_writable_folder, describe_os_error
from resformer_video.utils.logging import setup_logging

logger = logging.getLogger(__name__)

LOCK_FILE = "run.lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
_READ_RETRIES = 5  # a lock file just created may not hold its content yet


class RunLockError(RuntimeError):
    """Another live process holds the output folder's lock; the message names it."""


def lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, LOCK_FILE)


def check_output_dir(output_dir: str) -> None:
    """Create ``output_dir`` and check that a file can be written in it.

    Raises:
        ConfigError: naming ``OUTPUT_DIR``, the path and the cause (a file, read-only, no space).
    """
    try:
        check_writable_folder(output_dir)
    except OSError as err:
        raise ConfigError("OUTPUT_DIR", f"cannot write to {describe_os_error(err)}") from None


def owner_record() -> dict[str, Any]:
    """What this process writes into a lock it takes."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv)[:1000],
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
    }


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_owner(path: str) -> dict[str, Any] | None:
    """The lock's owner record; None when the file is gone; ``{}`` when it stays unreadable."""
    for attempt in range(_READ_RETRIES):
        try:
            with open(path, encoding="utf-8") as handle:
                owner = json.load(handle)
            if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
                return owner
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        time.sleep(0.05 * (attempt + 1))
    return {}


def stale_reason(owner: dict[str, Any], age_s: float) -> str | None:
    """Why the lock of ``owner`` (last refreshed ``age_s`` seconds ago) is left over, or None
    while its owner may still run."""
    me = owner_record()
    if not owner:
        return "its content is unreadable"
    if owner.get("slurm_job_id") and owner.get("slurm_job_id") == me["slurm_job_id"]:
        return f"it is an earlier start of this SLURM job {me['slurm_job_id']}"
    if owner.get("host") == me["host"]:
        return None if pid_alive(owner["pid"]) else f"pid {owner['pid']} no longer runs"
    if age_s > STALE_AFTER_S:
        return f"it was last refreshed {age_s / 60:.0f} minutes ago"
    return None


def _describe(owner: dict[str, Any]) -> str:
    return (
        f"pid {owner.get('pid')} on host {owner.get('host')} (started {owner.get('started')}: "
        f"{owner.get('command') or '?'})"
    )


class RunLock:
    """The held lock of one output folder; :meth:`release` removes it (when it is still ours)."""

    def __init__(self, path: str, owner: dict[str, Any]) -> None:
        self.path = path
        self.owner = owner
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._refresh, name="run-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _refresh(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        self._heartbeat.join()
        owner = _read_owner(self.path)
        if owner and (owner.get("pid"), owner.get("host")) == (self.owner["pid"], self.owner["host"]):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)


def acquire(output_dir: str, attempts: int = 3) -> RunLock | None:
    """Take the lock of ``output_dir`` (which must exist); None when this process holds it already.

    Raises:
        RunLockError: another process that may still run holds it.
    """
    path = lock_path(output_dir)
    record = owner_record()
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_owner(path)
            if owner is None:
                continue  # released meanwhile: try again
            if owner and (owner.get("pid"), owner.get("host")) == (record["pid"], record["host"]):
                return None
            try:
                age_s = time.time() - os.path.getmtime(path)
            except FileNotFoundError:
                continue
            reason = stale_reason(owner, age_s)
            if reason is None:
                raise RunLockError(
                    f"{output_dir} is in use by another run: {_describe(owner)}; wait for it to end, "
                    f"stop it, or use another OUTPUT_DIR (its lock: {path})"
                ) from None
            logger.warning("taking over the lock of %s left by %s: %s", output_dir, _describe(owner), reason)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        return RunLock(path, record)
    raise RunLockError(f"{output_dir}: could not take the lock {path} (other runs keep taking it)")


@contextlib.contextmanager
def output_dir_lock(output_dir: str) -> Iterator[None]:
    """Hold ``output_dir``'s lock for the body (rank 0 checks the folder, sets up logging there
    and takes it; on every rank a failure raises, so no rank goes on alone). Reentrant within a
    process: an inner use finds the lock its own and leaves it to the outer one.

    Raises:
        ConfigError: ``OUTPUT_DIR`` is not a writable folder (names the cause).
        RunLockError: another run holds the folder.
    """
    lock: RunLock | None = None
    failure: Exception | None = None
    if distributed.is_master_proc():
        try:
            check_output_dir(output_dir)
            setup_logging(output_dir)
            lock = acquire(output_dir)
        except (ConfigError, RunLockError) as err:
            failure = err
    messages = distributed.all_gather_objects(str(failure) if failure else None)
    if failure is not None:
        raise failure
    if messages[0] is not None:
        raise RunLockError(f"rank 0: {messages[0]}")
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
