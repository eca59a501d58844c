"""dvc.yaml: each stage's `deps` cover every project file its code imports.

A file missing from a stage's deps lets `dvc repro` answer "up to date" for results the code no
longer gives. The closure is static: every `import` in the stage's module and in what it imports,
the ones inside functions (lazy imports) included, and the packages' `__init__` files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"ganforge": ROOT / "src", "pipeline": ROOT}


def module_file(name: str) -> Path | None:
    """The project file of module `name` (a package's `__init__.py`), or None if not ours."""
    top = name.split(".")[0]
    if top not in PACKAGES:
        return None
    base = PACKAGES[top].joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, with its parent packages (`a.b.c` imports `a` and `a.b`)."""
    names: set[str] = set()
    package = ".".join(path.relative_to(PACKAGES["ganforge"] if "src" in path.parts else ROOT)
                       .with_suffix("").parts)  # fmt: skip
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    with_parents = set()
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return with_parents


def closure(path: Path) -> set[Path]:
    """`path` and every project file it imports, directly or not."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imported_modules(current):
            found = module_file(name)
            if found is not None and found not in seen:
                todo.append(found)
    return seen


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _deps(stage: dict) -> list[Path]:
    return [ROOT / (d if isinstance(d, str) else next(iter(d))) for d in stage.get("deps", [])]


@pytest.mark.parametrize("name", list(_stages()))
def test_each_stage_s_deps_cover_the_code_it_imports(name: str) -> None:
    stage = _stages()[name]
    module = stage["cmd"].split("-m", 1)[1].split()[0]
    entry = module_file(module)
    assert entry is not None, f"{name}: cannot find the module of `{stage['cmd']}`"
    deps = _deps(stage)
    missing = sorted(
        str(f.relative_to(ROOT))
        for f in closure(entry)
        if not any(f == d or d in f.parents for d in deps)
    )
    assert not missing, f"dvc.yaml stage {name}: deps miss {missing}"


def test_the_closure_follows_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: a lazy import inside a function counts, as does a package's init."""
    train = closure(ROOT / "pipeline" / "train.py")
    assert ROOT / "src/ganforge/recipe.py" in train  # imported inside pipeline/params.py
    assert ROOT / "src/ganforge/data/prepare.py" in train  # a lazy import in a validator
    assert ROOT / "src/ganforge/__init__.py" in train
    assert ROOT / "src/ganforge/inference/serve/__init__.py" not in train
