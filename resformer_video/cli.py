"""Console entry points (``resformer-train``, ``resformer-predict``, ...) for the ``tools/`` scripts.

``setup.py`` installs ``tools/`` as the package ``resformer_video.tools``, so a pip install without
the repository has them (and ``python -m resformer_video.tools.<tool>`` runs them); a source
checkout's ``tools/`` is the fallback. Each entry point runs the
tool's ``main()`` on ``sys.argv`` and exits with its return code: every script points to :func:`main`,
which picks the tool by the script's name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SOURCE_TOOLS = Path(__file__).resolve().parents[1] / "tools"
# Console script -> tool module (setup.py's CONSOLE_SCRIPTS lists the same names, all -> main).
ENTRY_POINTS: dict[str, str] = {
    "resformer-train": "run_net",
    "resformer-predict": "predict",
    "resformer-export": "export",
    "resformer-check-videos": "check_videos",
    "resformer-model-info": "model_info",
    "resformer-make-synthetic": "make_synthetic_dataset",
    "resformer-extract-features": "extract_features",
    "resformer-prepare-kinetics": "prepare_kinetics",
}


def load_tool(name: str) -> ModuleType:
    """The module of ``tools/<name>.py``: installed ``resformer_video.tools.<name>``, else the
    source checkout's file. ``sys.path`` is restored afterwards (the scripts extend it)."""
    saved = list(sys.path)
    try:
        try:
            return importlib.import_module(f"resformer_video.tools.{name}")
        except ModuleNotFoundError as err:
            if err.name not in ("resformer_video.tools", f"resformer_video.tools.{name}"):
                raise
        path = SOURCE_TOOLS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"resformer_video_tools.{name}", path)
        if spec is None or spec.loader is None or not path.is_file():
            raise ModuleNotFoundError(f"tool {name!r} not found (installed or in {SOURCE_TOOLS})")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved


def run_tool(name: str) -> Any:
    """Run ``tools/<name>.py``'s ``main()`` on ``sys.argv`` and return its result (the exit code)."""
    return load_tool(name).main()


def main() -> Any:
    """The one console entry point: runs the tool that :data:`ENTRY_POINTS` maps the invoked
    script's name (``sys.argv[0]``, e.g. ``resformer-predict``) to."""
    script = Path(sys.argv[0]).name
    if script not in ENTRY_POINTS:
        raise SystemExit(f"error: unknown command {script!r}; one of {sorted(ENTRY_POINTS)}")
    return run_tool(ENTRY_POINTS[script])
