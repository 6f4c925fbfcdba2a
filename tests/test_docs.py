"""The docs cannot drift from the code: README.md, INSTALL.md and docs/*.md are read and every
``tools/...`` script and other repository path, config key (``SECTION.KEY``), flag of a
``tools/X.py`` or ``benchmarks/X.py`` command (against that tool's argparse parser), link and anchor, and file name they
mention is checked against the tree and the code. Each checker is also run on a made-up wrong
text, so that a checker that finds nothing cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from resformer_video.config.defaults import get_cfg_defaults
from resformer_video.config.foreign import FOREIGN_KEYS, LAUNCH_KEYS

from conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "INSTALL.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Folders whose paths the docs name as repository paths (``configs/x.yaml``, ``docs/images/x.png``).
REPO_FOLDERS = (".ci", "benchmarks", "configs", "docs", "requirements", "resformer_video", "tests", "tools")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:{})/[\w./*-]*)".format("|".join(re.escape(f) for f in REPO_FOLDERS)))
# Paths inside the package named from its top (``models/build.py``, ``config/defaults.py``).
PACKAGE = REPO_ROOT / "resformer_video"
PACKAGE_PATH = re.compile(
    r"(?<![\w/.-])((?:{})/[\w./*-]*)".format(
        "|".join(re.escape(p.name) for p in sorted(PACKAGE.iterdir()) if p.is_dir() and not p.name.startswith("__"))
    )
)
CONFIG_KEY = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)+)(\.\*)?(?![\w.])")
SECTION_WILDCARD = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*)\.\*(?![*\w])")
# Keys of other code bases, marked as such in the text: "TimeSformer's `TRAIN.X`", "PySlowFast key `Y.Z`".
FOREIGN_MARK = re.compile(r"(?:TimeSformer|PySlowFast|SlowFast)(?:'s)?(?: config)?(?: keys?)?:?\s*`?$")
FOREIGN_COLUMN = re.compile(r"TimeSformer|PySlowFast|SlowFast")
# A command of ours: ``tools/X.py`` (installed) or ``benchmarks/X.py`` (developers'); group 1 without ".py".
TOOL_COMMAND = re.compile(r"(?<![\w/.-])((?:tools|benchmarks)/\w+)\.py\b")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
OVERRIDE_KEY = re.compile(r"[A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)+")
# The end of one command in a snippet: a shell separator, a comment or a table's cell border.
COMMAND_END = re.compile(r"\s(?:&&|\|\||;|\|)\s|\s#|(?<!\\)\||\s\(")
FILE_NAME = re.compile(r"(?<![\w/.<{-])([\w-]+\.(?:png|json|jsonl|csv|md|yaml|yml|txt|npy|pyth|py|ini|toml))\b")
FLAG_VALUE_BEFORE = re.compile(r"(?:^|[\s`])--?[\w-]+[ =]$")
# File names the user supplies or downloads (a dataset's lists, placeholders, a released checkpoint):
# named in the docs, written by no code here.
USER_FILE_NAMES = {"train.csv", "val.csv", "test.csv", "other.yaml", "file.yaml"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
WORK_ITEM = re.compile(r"\b(?:issue|work[- ]item|ticket|PR)s?\s*#?\d+|(?<![\w&/])#\d+\b", re.IGNORECASE)
PRODUCER_SOURCES = ("resformer_video", "tools", "benchmarks")


# ------------------------------------------------------------------------------------------------
# Reading the docs
# ------------------------------------------------------------------------------------------------
def prose_and_code(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """``(prose lines, code snippets)`` of a Markdown text, each with its 1-based line number:
    prose is every line outside fenced blocks; code is each fenced line (a line ending in ``\\``
    joined with the next) and each inline code span."""
    prose, code = [], []
    fenced, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            prose.append((number, line))
            code.extend((number, span) for span in re.findall(r"`([^`]+)`", line))
            continue
        if not pending:
            start = number
        pending += line.rstrip("\\") + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            code.append((start, pending))
            pending = ""
    return prose, code


def table_rows(prose: list[tuple[int, str]]) -> Iterator[tuple[int, list[str], list[str]]]:
    """``(line, cells, header cells)`` of every Markdown table row below its header."""
    header: list[str] | None = None
    for number, line in prose:
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if header is None:
            header = cells
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            yield number, cells, header


# ------------------------------------------------------------------------------------------------
# What exists: files, config keys, tool flags, names the code writes
# ------------------------------------------------------------------------------------------------
def config_node_exists(key: str) -> bool:
    """Whether ``SECTION.KEY`` (or a section) is in config/defaults.py."""
    node = get_cfg_defaults()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class _ParserFound(Exception):
    """Raised from a patched ``parse_known_args`` to stop a tool once its parser is built."""


@functools.cache
def tool_flags(tool: str) -> frozenset[str] | None:
    """The option strings of the parser of ``<tool>.py`` (``tools/predict``, ``benchmarks/benchmark``;
    None when there is no such script): its ``main`` runs until it parses its arguments, where it
    is stopped."""
    path = REPO_ROOT / f"{tool}.py"
    if not path.is_file():
        return None
    main = runpy.run_path(str(path))["main"]
    found: list[argparse.ArgumentParser] = []

    def stop(parser: argparse.ArgumentParser, *args, **kwargs):
        found.append(parser)
        raise _ParserFound

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", stop):
        with pytest.raises(_ParserFound):
            main([]) if inspect.signature(main).parameters else main()
    return frozenset(option for action in found[0]._actions for option in action.option_strings)


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _name_pattern(parts: list[tuple[bool, str]]) -> re.Pattern | None:
    """A regex for a file name the code builds from literal and variable ``parts`` (``(literal,
    text)``), when it ends in a literal extension and has a literal stem of 3 letters or more."""
    literal = "".join(text for is_literal, text in parts if is_literal)
    match = re.search(r"\.(\w+)$", literal)
    if not parts or not parts[-1][0] or not match or not re.search(r"[A-Za-z]{3}", literal[: match.start()]):
        return None
    return re.compile("".join(re.escape(text) if is_literal else ".+" for is_literal, text in parts))


def _template_parts(text: str) -> list[tuple[bool, str]]:
    """``str.format`` template ``"a_{size}.png"`` -> its literal and variable parts."""
    pieces = re.split(r"(\{[^{}]*\})", text)
    return [(i % 2 == 0, piece) for i, piece in enumerate(pieces) if piece or i % 2]


@functools.cache
def written_name_patterns() -> tuple[re.Pattern, ...]:
    """File names the package and the tools write: their string constants and f-strings (not their
    docstrings) that look like file names, with ``{...}`` parts as wildcards."""
    patterns = []
    for folder in PRODUCER_SOURCES:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstring_ids(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    parts = _template_parts(node.value)
                elif isinstance(node, ast.JoinedStr):
                    parts = [(True, v.value) if isinstance(v, ast.Constant) else (False, "") for v in node.values]
                else:
                    continue
                pattern = _name_pattern(parts)
                if pattern is not None:
                    patterns.append(pattern)
    return tuple(patterns)


@functools.cache
def repo_file_names() -> frozenset[str]:
    """Names of the files at the top of the repository and under its folders."""
    names = {path.name for path in REPO_ROOT.iterdir() if path.is_file()}
    for folder in REPO_FOLDERS:
        names.update(path.name for path in (REPO_ROOT / folder).rglob("*") if path.is_file())
    return frozenset(names)


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a Markdown file."""
    prose, _ = prose_and_code(path.read_text(encoding="utf-8"))
    anchors = set()
    for _, line in prose:
        if line.startswith("#"):
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip()).replace("`", "")
            anchors.add(re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-"))
    return anchors


# ------------------------------------------------------------------------------------------------
# The checkers: each returns "DOC:LINE: problem" lines
# ------------------------------------------------------------------------------------------------
def missing_repo_paths(doc: str, text: str) -> list[str]:
    """Repository paths (``tools/x.py``, ``configs/x.yaml``, ``docs/images/x.png``, globs) that do
    not exist."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, root in ((REPO_PATH, REPO_ROOT), (PACKAGE_PATH, PACKAGE)):
            for match in pattern.finditer(line):
                path = match.group(1).rstrip(".")
                if FOREIGN_MARK.search(line[: match.start()]):
                    continue  # a file of TimeSformer's or PySlowFast's code, named as such
                if not (any(root.glob(path)) if "*" in path else (root / path).exists()):
                    where = "repository" if root == REPO_ROOT else "package (resformer_video/)"
                    problems.append(f"{doc}:{number}: {path}: no such file or folder in the {where}")
    return problems


def unknown_config_keys(doc: str, text: str) -> list[str]:
    """``SECTION.KEY`` / ``SECTION.SUB.KEY`` / ``SECTION.*`` not in config/defaults.py, leaving out
    keys marked as TimeSformer's or PySlowFast's (before the key, or by a table column so named)."""
    prose, _ = prose_and_code(text)
    foreign_cells = {
        (number, cell)
        for number, cells, header in table_rows(prose)
        for cell, title in zip(cells, header)
        if FOREIGN_COLUMN.search(title)
    }
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        cells = [cell for n, cell in foreign_cells if n == number]
        for match in list(CONFIG_KEY.finditer(line)) + list(SECTION_WILDCARD.finditer(line)):
            key = match.group(1)
            if (
                FOREIGN_MARK.search(line[: match.start()])
                or any(match.group(0) in cell for cell in cells)
                or key in FOREIGN_KEYS
                or key in LAUNCH_KEYS
            ):
                continue  # TimeSformer's or PySlowFast's key (marked, or one config/foreign.py maps)
            if not config_node_exists(key):
                problems.append(f"{doc}:{number}: {match.group(0)}: no such config key in config/defaults.py")
    return problems


def command_flags(snippet: str) -> Iterator[tuple[str, str]]:
    """``(tool, flag)`` for each ``--flag`` after a ``tools/<tool>.py`` or ``benchmarks/<tool>.py`` in a
    command snippet (``tool`` is the path without ``.py``)."""
    for match in TOOL_COMMAND.finditer(snippet):
        rest = COMMAND_END.split(snippet[match.end() :], maxsplit=1)[0]
        rest = TOOL_COMMAND.split(rest, maxsplit=1)[0]
        for flag in FLAG.findall(rest):
            yield match.group(1), flag


def unknown_tool_flags(doc: str, text: str) -> list[str]:
    """Flags given to a ``tools/X.py`` or ``benchmarks/X.py`` command (in code, or in the row of a
    table whose first cell is that command) that X's parser does not have."""
    prose, code = prose_and_code(text)
    uses = [(number, tool, flag) for number, snippet in code for tool, flag in command_flags(snippet)]
    for number, cells, _ in table_rows(prose):
        tools = TOOL_COMMAND.findall(cells[0])
        if len(tools) == 1:
            uses += [(number, tools[0], flag) for cell in cells[1:] for flag in FLAG.findall(cell)]
    problems = []
    for number, tool, flag in uses:
        flags = tool_flags(tool)
        if flags is None:
            problems.append(f"{doc}:{number}: {tool}.py: no such tool")
        elif flag not in flags:
            problems.append(f"{doc}:{number}: {tool}.py has no flag {flag} (it has {sorted(flags)})")
    return problems


def flags_after_overrides(doc: str, text: str) -> list[str]:
    """Commands (in code) that give a ``--flag`` after a ``KEY VALUE`` override: every tool takes
    its flags first and refuses that."""
    problems = []
    for number, snippet in prose_and_code(text)[1]:
        for match in TOOL_COMMAND.finditer(snippet):
            rest = COMMAND_END.split(snippet[match.end() :], maxsplit=1)[0]
            words = TOOL_COMMAND.split(rest, maxsplit=1)[0].split()
            first_key = next((i for i, word in enumerate(words) if OVERRIDE_KEY.fullmatch(word)), len(words))
            late = [word for word in words[first_key:] if FLAG.fullmatch(word)]
            if late:
                problems.append(f"{doc}:{number}: {match.group(1)}.py: {late[0]} after the KEY VALUE overrides")
    return problems


def unknown_file_names(doc: str, text: str) -> list[str]:
    """File names (``x.png``, ``x.json``, ``x.yaml`` ...) that are neither a file of the repository
    nor a name the code writes (templates such as ``test_per_class_S.csv`` match ``{size}``);
    values of a flag (``--json out.json``) and the user's files (``USER_FILE_NAMES``) are left out."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in FILE_NAME.finditer(line):
            name = match.group(1)
            if (
                name in repo_file_names()
                or name in USER_FILE_NAMES
                or FLAG_VALUE_BEFORE.search(line[: match.start()])
                or FOREIGN_MARK.search(line[: match.start()])
                or any(pattern.fullmatch(name) for pattern in written_name_patterns())
            ):
                continue
            problems.append(f"{doc}:{number}: {name}: no file of the repository and no name the code writes")
    return problems


def broken_links(doc_path: Path, text: str) -> list[str]:
    """Relative Markdown links whose file or heading anchor does not exist."""
    doc = doc_path.relative_to(REPO_ROOT).as_posix() if doc_path.is_absolute() else str(doc_path)
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            path = (REPO_ROOT / doc_path).parent / path_part if path_part else REPO_ROOT / doc_path
            if not path.exists():
                problems.append(f"{doc}:{number}: link {target}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path):
                problems.append(f"{doc}:{number}: link {target}: no heading with that anchor")
    return problems


def work_item_numbers(doc: str, text: str) -> list[str]:
    """Mentions of numbered work items (``issue 13``, ``#11``): readers of the project have none."""
    return [
        f"{doc}:{number}: {match.group(0)!r}: describe the history in words"
        for number, line in enumerate(text.splitlines(), 1)
        for match in WORK_ITEM.finditer(line)
    ]


# ------------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------------
def _all(checker) -> list[str]:
    return [
        problem
        for path in DOCS
        for problem in checker(path.relative_to(REPO_ROOT).as_posix(), path.read_text(encoding="utf-8"))
    ]


def test_docs_exist():
    assert len(DOCS) >= 6 and all(path.is_file() for path in DOCS)


def test_every_repository_path_exists():
    assert _all(missing_repo_paths) == []


def test_every_config_key_exists():
    assert _all(unknown_config_keys) == []


def test_every_tool_flag_exists():
    assert _all(unknown_tool_flags) == []


def test_every_command_gives_its_flags_before_the_overrides():
    assert _all(flags_after_overrides) == []


def test_every_file_name_exists_or_is_written_by_the_code():
    assert _all(unknown_file_names) == []


def test_every_link_and_anchor_resolves():
    problems = [
        problem
        for path in DOCS
        for problem in broken_links(path.relative_to(REPO_ROOT), path.read_text(encoding="utf-8"))
    ]
    assert problems == []


def test_no_work_item_numbers():
    assert _all(work_item_numbers) == []


# The checkers on wrong text: each finds what is wrong and leaves what is right alone.
WRONG = """# Title

Run `python tools/predict.py --checkpoint CKPT --out-dir X video.mp4` or `tools/nope.py` (`models/nope.py`).
Testing writes `accuracy_vs_resolution.png` and `test_results.json`; see `configs/k400_nope.yaml`,
`docs/images/study_synthetic.png` and [the results](docs/RESULTS.md#no-such-heading).
Set `TEST.RESOLUTION [96]` or `TEST.RESOLUTIONS [96]` (TimeSformer's `TRAIN.FINETUNE`) `NOPE.*`.

```bash
python tools/check_videos.py --cfg FILE \\
    --workers 2 --bogus 1 --json out.json | tee log
```

| TimeSformer key | ours |
| --- | --- |
| `MODEL.MODEL_NAME` | `MODEL.ARCH` |

| command | what |
| --- | --- |
| `tools/demo.py` | `--threads N`, `--fast` |
| `benchmarks/benchmark.py --cfg F` | `--repeats 3`, `--turbo` |

Since issue 13 (#11) ... **not EMSA.** and `DATA_LOADER.*` are fine.
"""


def test_checkers_find_what_is_wrong():
    assert [p.split(": ", 1)[1] for p in missing_repo_paths("X.md", WRONG)] == [
        "tools/nope.py: no such file or folder in the repository",
        "models/nope.py: no such file or folder in the package (resformer_video/)",
        "configs/k400_nope.yaml: no such file or folder in the repository",
    ]
    assert [p.split(": ", 1)[1] for p in unknown_config_keys("X.md", WRONG)] == [
        "TEST.RESOLUTION: no such config key in config/defaults.py",
        "NOPE.*: no such config key in config/defaults.py",
    ]
    flags = [p.split(": ", 1)[1].split(" (")[0] for p in unknown_tool_flags("X.md", WRONG)]
    assert flags == [
        "tools/predict.py has no flag --out-dir",
        "tools/check_videos.py has no flag --bogus",
        "tools/check_videos.py has no flag --json",
        "tools/demo.py has no flag --fast",
        "benchmarks/benchmark.py has no flag --turbo",
    ]
    assert unknown_tool_flags("X.md", "`tools/nope.py --cfg F`") == ["X.md:1: tools/nope.py: no such tool"]
    assert unknown_tool_flags("X.md", "`benchmarks/nope.py --x`") == ["X.md:1: benchmarks/nope.py: no such tool"]
    assert flags_after_overrides(
        "X.md",
        "`tools/model_info.py --cfg F MODEL.ARCH x --resolutions 64` and "
        "`tools/model_info.py --resolutions 64 MODEL.ARCH x`",
    ) == ["X.md:1: tools/model_info.py: --resolutions after the KEY VALUE overrides"]
    assert [p.split(": ", 1)[1] for p in unknown_file_names("X.md", WRONG)] == [
        "accuracy_vs_resolution.png: no file of the repository and no name the code writes"
    ]
    assert [p.split(": ", 1)[1] for p in broken_links(Path("X.md"), WRONG)] == [
        "link docs/RESULTS.md#no-such-heading: no heading with that anchor"
    ]
    assert [p.split(": ", 1)[1] for p in work_item_numbers("X.md", WRONG)] == [
        "'issue 13': describe the history in words",
        "'#11': describe the history in words",
    ]
