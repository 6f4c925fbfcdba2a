"""SIGTERM and Ctrl-C as a request to stop at the next safe point, not an immediate end.

SLURM and Kubernetes send SIGTERM before they kill a job (pre-emption, time limit); Ctrl-C sends
SIGINT to every process of the terminal's job. While a :class:`StopOnSignal` is active either signal
only records itself, and the code that owns the loop decides where to stop (training: after the
current optimiser step, see :mod:`resformer_video.engine.interrupt`); a second signal stops at once
with ``KeyboardInterrupt``. Data-loader workers ignore both (:func:`ignore_stop_signals`): the main
process stops first and shuts them down.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal:
    """While active (a context manager), SIGTERM and SIGINT set :attr:`signum` instead of ending
    the process; a second one raises ``KeyboardInterrupt``. Outside the main thread (where handlers
    cannot be installed) it does nothing."""

    def __init__(self, signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def ignore_stop_signals() -> None:
    """Make this process (a data-loader worker) ignore SIGTERM and SIGINT: a worker that died of
    a signal meant for the job would fail the step the main process is finishing."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
