"""The rooms of the code base import only what docs/architecture.md allows them to."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Room -> top-level packages/modules it must never import.
FORBIDDEN = {
    "spark": {"dagster", "lake_assets"},
    "lake_assets/ingestion": {"dagster", "lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/lake_maintenance": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/resources": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/io_managers": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/assets": {"lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/config": {"dagster", "lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/checks": {"dagster", "lake_assets.assets", "lake_assets.automation"},
    "lake_assets/explain.py": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/token_vault.py": {
        "dagster", "lake_assets.assets", "lake_assets.automation", "lake_assets.definitions",
    },
}

# Room -> the only lake_assets modules it may import (rooms with a short, closed list).
ALLOWED_OWN = {
    "lake_assets/token_vault.py": {"lake_assets.config", "lake_assets.entities"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(room: str, forbidden: set[str]) -> list[str]:
    root = REPO / room
    files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
    assert files, room
    return [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_only_what_it_may(room: str) -> None:
    assert _violations(room, FORBIDDEN[room]) == []


@pytest.mark.parametrize("room", sorted(ALLOWED_OWN))
def test_room_imports_only_the_project_modules_it_may(room: str) -> None:
    allowed = ALLOWED_OWN[room]
    own = {name for name in _imports(REPO / room) if name == "lake_assets" or name.startswith("lake_assets.")}
    assert own, room  # the rule would pass vacuously on a room that imports nothing of the project
    assert sorted(n for n in own if not any(n == a or n.startswith(a + ".") for a in allowed)) == []


def test_no_dagster_internals_anywhere() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for folder in ("lake_assets", "spark", "benchmarks", "lake_assets_tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        for name in _imports(path)
        if name.startswith("dagster._")
    ]
    assert offenders == []
