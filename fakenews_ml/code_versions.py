"""Code versions derived from the code they version, never a constant somebody has to bump.

A stage's version is a hash of its module and of every ``fakenews_ml`` module that module imports, directly or
through others (imports inside functions included). Each module counts by its syntax tree without docstrings,
so reformatting or rewording a comment keeps the version, while any change to what the code does bumps it.
The configuration, manifest and error models are left out: they reach a stage as values (a config, an input
manifest), and those values are part of every cache key already.

The version is part of every cache key (a changed version is a cache miss: the stage runs again) and is each
asset's ``code_version`` (Dagster marks the asset and what depends on it as changed).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "fakenews_ml"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds the fakenews_ml package
VALUE_MODULES = frozenset({f"{PACKAGE}.config", f"{PACKAGE}.manifests", f"{PACKAGE}.errors"})
VERSION_CHARS = 12


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, module: str, is_package: bool, root: Path) -> set[str]:
    """Every ``fakenews_ml`` module the tree imports (``from a import b`` counts ``a.b`` when b is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    wanted = set()
    for name in found:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        parts = name.split(".")  # the parent packages run too: their __init__ counts
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if _module_file(prefix, root) is not None:
                wanted.add(prefix)
    return wanted


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def module_closure(module: str, root: Path | None = None) -> dict[str, str]:
    """``{module name: normalised source}`` for ``module`` and every package module it reaches."""
    root = Path(root or PACKAGE_ROOT)
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name in VALUE_MODULES:
            continue
        file = _module_file(name, root)
        if file is None:
            raise ModuleNotFoundError(f"{name} is not a module under {root}")
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        imported = _imported_modules(tree, name, file.name == "__init__.py", root)
        seen[name] = ast.dump(_without_docstrings(tree), include_attributes=False)
        todo.extend(imported - seen.keys())
    return seen


def compute_code_version(module: str, root: Path | None = None) -> str:
    """A short hash of ``module``'s code closure (see the module docstring), read from the files now."""
    digest = hashlib.sha256()
    for name, source in sorted(module_closure(module, root).items()):
        digest.update(f"{name}\n{source}\n".encode())
    return digest.hexdigest()[:VERSION_CHARS]


@functools.cache
def code_version(module: str) -> str:
    """``compute_code_version`` of the installed package, computed once per process."""
    return compute_code_version(module)
