"""The package root is light: importing it loads neither the sandbox's web server nor polars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nav_crm_ops


def test_import_loads_no_web_server_and_every_public_name_resolves() -> None:
    probe = ("import sys, json, nav_crm_ops; print(json.dumps(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('uvicorn', 'starlette', 'polars', 'sqlalchemy', 'msal'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                       text=True, check=True).stdout)
    assert loaded == []
    for name in nav_crm_ops.__all__:
        assert getattr(nav_crm_ops, name) is not None, name
    assert nav_crm_ops.Workspace.__module__ == "nav_crm_ops.engine.workspace"
    assert set(dir(nav_crm_ops)) >= set(nav_crm_ops.__all__)


def _imports(path: Path, package: str, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports, at any depth except under TYPE_CHECKING
    (``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg``)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & modules


def test_no_import_cycles() -> None:
    """Counting imports inside functions too (only TYPE_CHECKING imports aside)."""
    import graphlib

    root = Path(nav_crm_ops.__file__).parent
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(path, package, set(modules)) - {name}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_code_stays_within_the_house_limits() -> None:
    """Functions readable at once (cyclomatic complexity <= 15, <= 80 lines), modules <= 600
    code lines (seed data tables aside), classes <= 400 lines: the limits docs/architecture.md
    states, measured with radon as a reviewer would."""
    import ast

    from radon.complexity import cc_visit
    from radon.raw import analyze

    root = Path(nav_crm_ops.__file__).parent
    over: list[str] = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(root.parent).as_posix()
        if analyze(source).sloc > 600 and "cronus" not in path.parts:
            over.append(f"{name}: {analyze(source).sloc} code lines")
        over += [f"{name}:{block.lineno} {block.name}: complexity {block.complexity}"
                 for block in cc_visit(source) if block.complexity > 15]
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            limit = 400 if isinstance(node, ast.ClassDef) else 80
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                over.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert over == []
