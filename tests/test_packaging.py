"""Packaging: declared dependencies match the imports, console entry points run the tools."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from resformer_video import cli

REPO = Path(__file__).resolve().parents[1]
# Import name -> distribution name where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "PIL": "pillow"}
# Imported only inside an optional code path, declared as extras.
OPTIONAL = {"torchcodec", "onnx", "onnxruntime", "onnxscript"}


def _setup_literal(name: str):
    """A literal assigned or passed as ``name`` in setup.py (without running setup)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
        if isinstance(node, ast.keyword) and node.arg == name:
            return ast.literal_eval(node.value)
    raise KeyError(name)


def _third_party_imports() -> set:
    names = set()
    for path in list((REPO / "resformer_video").rglob("*.py")) + list((REPO / "tools").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    local = {path.stem for path in (REPO / "tools").glob("*.py")}  # tools import each other
    return {n for n in names if n not in sys.stdlib_module_names and n != "resformer_video"} - local


def test_every_direct_import_is_declared_and_nothing_else():
    declared = {re.split(r"[<>=;\s\[]", req, 1)[0].lower() for req in _setup_literal("install_requires")}
    extras = {
        re.split(r"[<>=;\s\[]", req, 1)[0].lower() for reqs in _setup_literal("extras_require").values() for req in reqs
    }
    imported = {DISTRIBUTIONS.get(n, n).lower() for n in _third_party_imports()}
    assert imported - OPTIONAL <= declared, f"imported but not declared: {imported - OPTIONAL - declared}"
    assert OPTIONAL & imported <= extras
    # Declared without a direct import: only the decoders (imported by name through DATA.DECODER)
    # and tensorboard (through torch.utils.tensorboard).
    assert declared - imported == {"decord", "tensorboard"}
    assert not {"tqdm", "iopath"} & declared


def test_console_scripts_match_the_cli_and_run_the_tools(monkeypatch, capsys):
    scripts = _setup_literal("CONSOLE_SCRIPTS")
    assert set(scripts) == set(cli.ENTRY_POINTS) and len(scripts) == len(set(scripts))
    for script in scripts:
        monkeypatch.setattr(sys, "argv", [f"/venv/bin/{script}", "--help"])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        assert exit_info.value.code == 0, script
        assert "usage:" in capsys.readouterr().out
        assert (REPO / "tools" / f"{cli.ENTRY_POINTS[script]}.py").is_file()


def test_unknown_console_script_name_is_one_error_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["resformer-nothing"])
    with pytest.raises(SystemExit, match="unknown command 'resformer-nothing'"):
        cli.main()


def test_loading_a_tool_leaves_sys_path_alone():
    before = list(sys.path)
    assert callable(cli.load_tool("predict").main)
    assert sys.path == before


def test_license_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert _setup_literal("license") == "Apache-2.0" and _setup_literal("license_files") == ["LICENSE"]
