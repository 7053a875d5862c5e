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
