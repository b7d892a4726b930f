"""The layers of docs/DESIGN.md, checked on the source: which package may import
which, and that no shell text or argv of a node command lives outside drivers/.

Each checker is run on a sample that breaks its rule first, so a checker that
stopped seeing anything fails here too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "esbackup"

# A module may import its own package and those of a lower rank, never a higher
# or an equal one: commands -> actions -> services -> engine -> catalog, drivers -> domain
# -> errors (and the version, in esbackup/__init__.py).
RANK = {"__init__": -1, "__version__": -1, "errors": -1, "domain": 0, "drivers": 1,
        "catalog": 1, "engine": 2, "services": 3, "actions": 4, "commands": 5, "cli": 6,
        "__main__": 7}

# Shell syntax in a string: "$@", $(...), ${...}, a pipe into a command (not SQL's ||),
# a redirection of stderr, a loop's end, `sh -c`.
SHELL = re.compile(r'"\$@"|\$\(|\$\{|(?<!\|)\|(?!\|)\s*[a-z]|[12]?>&[12]|2>/dev/null|;\s*done\b'
                   r'|\bsh -c\b')


def layer(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def modules(package: Path = PACKAGE) -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(package.rglob("*.py"))}


def imported_layers(tree: ast.Module) -> set[str]:
    """The esbackup layers a module imports from (anywhere in it: lazy imports too)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "esbackup":
                names = [f"esbackup.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names
                  if name.startswith("esbackup.") and len(name.split(".")) > 1}
    return found


def upward_imports(trees: dict[Path, ast.Module]) -> list[str]:
    wrong = []
    for path, tree in trees.items():
        here = layer(path)
        for there in sorted(imported_layers(tree) - {here}):
            if RANK[there] >= RANK[here]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}: {here} imports {there}")
    return wrong


def docstrings(tree: ast.Module) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def programs(trees: dict[Path, ast.Module]) -> set[str]:
    """The programs drivers/ runs on nodes: the first words of its argv literals."""
    found = set()
    for path, tree in trees.items():
        if layer(path) == "drivers":
            for node in ast.walk(tree):
                if isinstance(node, ast.List) and node.elts and isinstance(
                        node.elts[0], ast.Constant) and isinstance(node.elts[0].value, str):
                    found.add(node.elts[0].value)
    return found


def node_commands(tree: ast.Module, commands: set[str]) -> list[tuple[int, str]]:
    """Shell text, and list or tuple literals that begin with a program's name."""
    notes = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(
                node.elts[0], ast.Constant) and node.elts[0].value in commands:
            found.append((node.lineno, ast.unparse(node)[:60]))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in notes and SHELL.search(node.value)):
            found.append((node.lineno, node.value[:60]))
    return found


def test_the_checks_see_what_they_look_for():
    sample = ast.parse('"""Runs `a | b` (a docstring may say so)."""\n'
                       'X = ["zfs", "list"]\nY = ("rm", "-f")\n'
                       'Z = \'for f in "$@"; do echo "$f"; done\'\nW = "a || b"\n')
    assert [line for line, _ in node_commands(sample, {"zfs", "rm"})] == [2, 3, 4]
    assert {"zfs", "zpool", "sh", "rm", "mv", "ssh"} <= programs(modules())
    assert imported_layers(ast.parse("from esbackup.actions import backup\n"
                                     "def f():\n    import esbackup.commands.output\n"
                                     "from esbackup import errors\n")) == {
        "actions", "commands", "errors"}
    assert set(RANK) >= {layer(path) for path in modules()}


def test_no_layer_imports_one_above_it_or_beside_it():
    assert upward_imports(modules()) == []


def test_no_shell_text_or_node_argv_outside_drivers():
    trees = modules()
    commands = programs(trees)
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
             for path, tree in trees.items() if layer(path) != "drivers"
             for line, text in node_commands(tree, commands)]
    assert found == []


def test_each_layer_says_its_rule_in_one_line():
    """The package docstring's summary line: one sentence, then a blank line."""
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        lines = doc.splitlines()
        assert len(lines) >= 1 and lines[0].endswith(".") and len(lines[0]) <= 96, package.name
        assert len(lines) == 1 or lines[1] == "", package.name
