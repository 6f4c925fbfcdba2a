"""The package's layers run one way: every import of ``resformer_video`` inside the package (at module
level or inside a function) goes from a higher layer to a lower one, so there is no import cycle and
no import hidden in a function to dodge one. Errors live at the bottom (``resformer_video.errors``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resformer_video"
# Lowest first. A subpackage may import its own modules and those of lower layers only; two
# subpackages on one layer do not import each other.
LAYERS = {
    "errors": 0,
    "data": 0,
    "utils": 1,
    "models": 2,
    "datasets": 2,
    "config": 3,
    "engine": 4,
    "inference": 5,
    "study": 5,
    "cli": 6,
    "__init__": 6,
}


def part_of(module: str) -> str:
    """``resformer_video.engine.train`` -> ``engine``; ``resformer_video`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def package_imports(package: Path = PACKAGE) -> Iterator[tuple[str, str, int, bool]]:
    """``(importing module, imported module, line, inside a function)`` for every import of the package."""
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            names = []
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("resformer_video")
            ):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("resformer_video")]
            for name in names:
                yield module, name, node.lineno, id(node) in nested


def test_every_subpackage_has_a_layer():
    parts = {part_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert parts - set(LAYERS) == set(), "add the new subpackage to LAYERS"


def upward_imports(package: Path = PACKAGE) -> list:
    return [
        f"{src} imports {dst} (line {line})"
        for src, dst, line, _ in package_imports(package)
        if part_of(src) != part_of(dst) and LAYERS[part_of(dst)] >= LAYERS[part_of(src)]
    ]


def hidden_imports(package: Path = PACKAGE) -> list:
    return [
        f"{src} imports {dst} inside a function (line {line})"
        for src, dst, line, inside in package_imports(package)
        if inside
    ]


def test_imports_go_down_the_layers_only():
    assert upward_imports() == []


def test_no_package_import_hides_in_a_function():
    assert hidden_imports() == []


def test_the_checks_catch_an_upward_and_a_hidden_import(tmp_path):
    """The checkers themselves, on a made-up package: config importing engine (a cycle, since engine
    imports config), and datasets importing config inside a function to dodge it."""
    fake = tmp_path / "resformer_video"
    (fake / "config").mkdir(parents=True)
    (fake / "datasets").mkdir()
    (fake / "config" / "loader.py").write_text("from resformer_video.engine.train import train\n")
    (fake / "datasets" / "synthetic.py").write_text(
        "def f():\n    from resformer_video.config import ConfigError\n    return ConfigError\n"
    )
    assert upward_imports(fake) == [
        "resformer_video.config.loader imports resformer_video.engine.train (line 1)",
        "resformer_video.datasets.synthetic imports resformer_video.config (line 2)",
    ]
    assert hidden_imports(fake) == [
        "resformer_video.datasets.synthetic imports resformer_video.config inside a function (line 2)"
    ]
