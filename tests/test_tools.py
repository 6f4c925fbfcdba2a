"""tools/ stays thin: every script parses its arguments and calls one function of the package (at
most 40 statements, whatever the formatter does to their argparse calls: about 60 lines before
`ruff format` puts each argument on its own line; no sys.path edits: the package is installed), and
the installed copy (``resformer_video.tools``) runs with ``python -m``."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

TOOLS = sorted(p for p in (REPO_ROOT / "tools").glob("*.py") if p.name != "__init__.py")
MAX_STATEMENTS = 40


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_every_tool_is_thin(path):
    text = path.read_text(encoding="utf-8")
    statements = sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(text)))
    assert statements <= MAX_STATEMENTS, f"{path.name}: {statements} statements; move its logic into the package"
    assert "sys.path" not in text, f"{path.name}: the package is installed; do not edit sys.path"
    functions = [node.name for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)]
    assert "main" in functions and len(functions) <= 3, f"{path.name} defines {functions}"


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["run_net", "predict"])
def test_python_m_runs_the_installed_tool(tool):
    if importlib.util.find_spec("resformer_video.tools") is None:
        pytest.skip("the package is not installed (pip install -e .): no resformer_video.tools")
    proc = subprocess.run(
        [sys.executable, "-m", f"resformer_video.tools.{tool}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ") and "KEY VALUE" in proc.stdout
