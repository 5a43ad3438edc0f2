"""The project's import graph, read from the source (nothing is imported): which project files a
stage's command runs, for the check of dvc.yaml's deps and of the layering rules.

``python -m tests.layers`` prints each stage's code deps as dvc.yaml should list them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tokenclean", "tasks", "flows", "bench")


def module_file(module: str) -> Path | None:
    """The project file of a dotted module name, or None for a module outside the project."""
    if module.split(".")[0] not in PACKAGES:
        return None
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at top level or inside functions (``from a import b`` counts
    ``a.b`` when that is a module, else ``a``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}"))
    return found


def with_parents(module: str) -> list[str]:
    """``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def closure(path: Path) -> frozenset[Path]:
    """``path`` and every project file it imports, directly or not."""
    seen, todo = {path}, [path]
    while todo:
        for module in imported_modules(todo.pop()):
            for name in with_parents(module):
                f = module_file(name)
                if f and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return frozenset(seen)


def code_deps(path: Path) -> list[str]:
    """What dvc.yaml lists for a stage running ``path``: a tokenclean subpackage as its folder,
    every other project file by name (repository-relative, sorted)."""
    deps = set()
    for f in closure(path):
        rel = f.relative_to(ROOT)
        is_subpackage = rel.parts[0] == "tokenclean" and len(rel.parts) > 2
        deps.add("/".join(rel.parts[:2]) if is_subpackage else rel.as_posix())
    return sorted(deps)


if __name__ == "__main__":
    for task in sorted((ROOT / "tasks").glob("*.py")):
        if task.name != "__init__.py":
            print(f"{task.stem}: [{', '.join(code_deps(task))}]")
