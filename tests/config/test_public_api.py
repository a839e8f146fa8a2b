"""The platform's own programs use the components as a platform team would: through each area's
public API (`mlops_platform.components.<area>` and its `__all__`), never a module inside it.
Also the examples and the component package, which are written as users write programs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "mlops_platform"
AREAS = sorted(p.parent.name for p in (PACKAGE / "components").glob("*/__init__.py"))
# Modules directly under mlops_platform/components shared by every area (not component areas).
SHARED = sorted(p.stem for p in (PACKAGE / "components").glob("*.py") if p.stem != "__init__")
USERS = [
    *(PACKAGE / name for name in ("program.py", "wiring.py", "config.py", "plan.py", "handoff.py")),
    *sorted(REPO.glob("examples/*/__main__.py")),
    REPO / "provider" / "platform_components.py",
]


def component_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every `from mlops_platform.components... import` in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "mlops_platform.components"
        ):
            found.append((node.lineno, node.module or "", [a.name for a in node.names]))
    return found


def api_problems(path: Path) -> list[str]:
    problems = []
    for line, module, names in component_imports(path):
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
        where = f"{shown}:{line}"
        parts = module.split(".")
        if module == "mlops_platform.components":
            problems += [
                f"{where}: {name} is neither an area nor a shared module"
                for name in names
                if name not in AREAS and name not in SHARED
            ]
        elif len(parts) == 3 and parts[2] in SHARED:
            continue
        elif len(parts) == 3 and parts[2] in AREAS:
            public = set(importlib.import_module(module).__all__)
            problems += [
                f"{where}: {module} does not export {name} (add it to its __all__)"
                for name in names
                if name not in public
            ]
        else:
            problems.append(f"{where}: imports {module}, inside an area; use {'.'.join(parts[:3])}")
    return problems


@pytest.mark.parametrize("path", USERS, ids=lambda p: str(p.relative_to(REPO)))
def test_programs_use_only_the_public_api(path):
    assert api_problems(path) == []


def test_every_area_states_its_public_api():
    for area in AREAS:
        module = importlib.import_module(f"mlops_platform.components.{area}")
        exported = getattr(module, "__all__", None)
        assert exported, f"mlops_platform.components.{area} has no __all__"
        missing = [name for name in exported if not hasattr(module, name)]
        assert missing == [], f"mlops_platform.components.{area}.__all__ names {missing}"


def test_the_check_catches_a_private_import(tmp_path):
    program = tmp_path / "probe.py"
    program.write_text(
        "from mlops_platform.components.mlflow.model import tracking_uri\n"
        "from mlops_platform.components.mlflow import not_exported\n"
        "from mlops_platform.components import no_such_area\n"
    )
    assert api_problems(program) == [
        "probe.py:1: imports mlops_platform.components.mlflow.model, inside an area; "
        "use mlops_platform.components.mlflow",
        "probe.py:2: mlops_platform.components.mlflow does not export not_exported "
        "(add it to its __all__)",
        "probe.py:3: no_such_area is neither an area nor a shared module",
    ]
