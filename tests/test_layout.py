"""The dependency direction of DESIGN.md: cogs and web call the core; the core calls connectors
through their contract; connectors and web never import discord."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from connectors.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for file in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[file] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("connectors", {"discord", "bot", "web", "cogs", "aiohttp"}),
        ("web", {"discord", "cogs", "connectors"}),
    ],
)
def test_import_direction(package: str, forbidden: set[str]) -> None:
    offenders = {
        str(f.relative_to(ROOT)): sorted(names & forbidden)
        for f, names in imports_of(package).items()
        if names & forbidden
    }
    assert offenders == {}


def test_registry_discovers_every_connector_package() -> None:
    packages = {p.name for p in (ROOT / "connectors").iterdir() if (p / "__init__.py").exists()}
    assert set(default_registry().keys()) == packages
