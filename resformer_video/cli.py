"""Console entry points (``resformer-train``, ``resformer-predict``, ...) for the ``tools/`` scripts.

``setup.py`` installs ``tools/`` as the package ``resformer_video.tools``, so a pip install without
the repository has them; in a source checkout that is not installed they are loaded from
``tools/`` by path. ``python tools/x.py`` keeps working either way. Each entry point runs the
tool's ``main()`` on ``sys.argv`` and exits with its return code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict

SOURCE_TOOLS = Path(__file__).resolve().parents[1] / "tools"
# Console script -> tool module (listed in setup.py's entry_points).
ENTRY_POINTS: Dict[str, str] = {
    "resformer-train": "run_net",
    "resformer-predict": "predict",
    "resformer-export": "export",
    "resformer-check-videos": "check_videos",
    "resformer-model-info": "model_info",
    "resformer-benchmark": "benchmark",
    "resformer-make-synthetic": "make_synthetic_dataset",
    "resformer-extract-features": "extract_features",
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


def train() -> Any:
    return run_tool("run_net")


def predict() -> Any:
    return run_tool("predict")


def export() -> Any:
    return run_tool("export")


def check_videos() -> Any:
    return run_tool("check_videos")


def model_info() -> Any:
    return run_tool("model_info")


def benchmark() -> Any:
    return run_tool("benchmark")


def make_synthetic() -> Any:
    return run_tool("make_synthetic_dataset")


def extract_features() -> Any:
    return run_tool("extract_features")
