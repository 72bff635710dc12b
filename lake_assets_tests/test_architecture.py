"""The rooms of the code base import only what docs/architecture.md allows them to."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Room -> top-level packages/modules it must never import.
FORBIDDEN = {
    "spark": {"dagster", "lake_assets"},
    "lake_assets/ingestion": {
        "dagster", "lake_assets.assets", "lake_assets.automation", "lake_assets.definitions",
        "lake_assets.io_managers.parquet_lake", "lake_assets.io_managers.warehouse",
    },
    "lake_assets/lake_maintenance": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/resources": {"lake_assets.assets", "lake_assets.automation", "lake_assets.definitions"},
    "lake_assets/io_managers": {
        "lake_assets.assets", "lake_assets.automation", "lake_assets.definitions", "lake_assets.ingestion",
    },
    # The IO manager's write, which the ingestion's run without Dagster uses too.
    "lake_assets/io_managers/lake_store.py": {"dagster"},
    "lake_assets/io_managers/lake_write.py": {"dagster"},
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


# The functions that put files into the lake and commit them. Only the lake storage and the IO managers
# call them: data reaches the lake through the lake IO manager's write (`io_managers/lake_store.py`).
LAKE_WRITES = {"write_arrow", "staged_batch", "staged_partitions", "write_spark", "write_spark_partitions", "_commit",
               "_commit_partitions"}
LAKE_WRITERS = ("lake_assets/io_managers/", "lake_assets/resources/lake_storage.py")


def _lake_write_calls(path: Path) -> list[str]:
    """Calls of a lake write function, and `.commit(...)` calls with arguments (a staged batch's commit
    takes rows and state; a database connection's or a snapshot expiry's takes none)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in LAKE_WRITES or (name == "commit" and (node.args or node.keywords)):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} calls {name}")
    return found


def test_only_the_lake_storage_and_the_io_managers_write_lake_files() -> None:
    files = [p for folder in ("lake_assets", "spark") for p in sorted((REPO / folder).rglob("*.py"))]
    writers = [p for p in files if str(p.relative_to(REPO)).startswith(LAKE_WRITERS)]
    assert any(_lake_write_calls(p) for p in writers)  # the rule sees the calls where they belong
    offenders = [call for p in files if p not in writers for call in _lake_write_calls(p)]
    assert offenders == []
