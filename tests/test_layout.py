"""The dependency direction of DESIGN.md: cogs and web call the core; the core calls connectors
through their contract; connectors and web never import discord."""

from __future__ import annotations

import ast
import re
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


TOP_LEVEL = {"bot", "cogs", "connectors", "web", "data", "tests", "bench"}


def modules(*packages: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (``__init__`` excluded)."""
    found = {}
    for package in packages:
        for file in (ROOT / package).rglob("*.py"):
            if file.name != "__init__.py":
                found[".".join(file.relative_to(ROOT).with_suffix("").parts)] = file
    return found


def command_groups(file: Path) -> set[str]:
    """The app-command groups a cog module defines (GroupCog group_name or Group(name=...))."""
    names = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        for keyword in getattr(node, "keywords", []):
            if keyword.arg == "group_name" and isinstance(keyword.value, ast.Constant):
                names.add(keyword.value.value)
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "Group"
        ):
            for keyword in node.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    names.add(keyword.value.value)
    return names


def test_only_the_lifecycle_module_wires_web_and_cogs() -> None:
    offenders = {
        str(f.relative_to(ROOT)): sorted(names & {"web", "cogs"})
        for f, names in imports_of("bot").items()
        if names & {"web", "cogs"} and f != ROOT / "bot" / "server.py"
    }
    assert offenders == {}


def test_module_names_say_one_thing_in_one_place() -> None:
    """Inside bot/, web/ and cogs/ no two modules share their last name, except a cog named
    after its command group (cogs/feed.py is /feed)."""
    by_name: dict[str, list[str]] = {}
    for dotted, file in modules("bot", "web", "cogs").items():
        name = dotted.rsplit(".", 1)[-1]
        if dotted.startswith("cogs.") and name in command_groups(file):
            continue
        by_name.setdefault(name, []).append(dotted)
    assert {n: m for n, m in by_name.items() if len(m) > 1} == {}


def test_bot_subpackages_are_not_named_like_a_top_level_folder_or_a_connector() -> None:
    connectors = {p.name for p in (ROOT / "connectors").iterdir() if (p / "__init__.py").exists()}
    subpackages = {p.name for p in (ROOT / "bot").rglob("*") if (p / "__init__.py").exists()}
    assert subpackages & (TOP_LEVEL | connectors) == set()
    assert {"storage", "ingest", "feed", "steam_sync", "gateway", "cli"} <= subpackages


def _imports_module(names: set[str], file: Path, prefix: str) -> bool:
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            if any(a.name == prefix or a.name.startswith(prefix + ".") for a in node.names):
                return True
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == prefix or node.module.startswith(prefix + "."):
                return True
    return False


def test_only_the_storage_package_imports_sqlite3() -> None:
    storage = ROOT / "bot" / "storage"
    offenders = [
        str(f.relative_to(ROOT))
        for package in ("bot", "cogs", "web", "connectors")
        for f, names in imports_of(package).items()
        if {"sqlite3", "aiosqlite"} & names and storage not in f.parents
    ]
    assert offenders == []


def test_cogs_and_web_do_not_import_the_storage_package() -> None:
    offenders = [
        str(f.relative_to(ROOT))
        for package in ("cogs", "web")
        for f, names in imports_of(package).items()
        if _imports_module(names, f, "bot.storage")
    ]
    assert offenders == []


SQL = re.compile(
    r"^\s*(SELECT \S|INSERT (OR \w+ )?INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX|TRIGGER)"
    r"|DROP TABLE|ALTER TABLE|PRAGMA \w|BEGIN( IMMEDIATE)?$|WITH \w+ AS)"
)


def test_no_sql_outside_the_storage_package() -> None:
    """Every statement lives in bot/storage/: a string that starts like SQL anywhere else in
    bot/, cogs/ or web/ is one that escaped."""
    storage = ROOT / "bot" / "storage"
    found = []
    for package in ("bot", "cogs", "web"):
        for file in (ROOT / package).rglob("*.py"):
            if storage in file.parents:
                continue
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if SQL.match(node.value):
                        found.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_every_connector_implements_the_contract_it_declares() -> None:
    """dedupe_key and normalize wherever a connector makes raw events (it declares events, syncs
    or receives webhooks; the Discord connector only proves identities); parse_webhook where it
    receives webhooks (no NotImplementedError left in a registered connector)."""
    from connectors.base import Connector

    for cls in default_registry().classes():
        if not (cls.events or cls.capabilities.can_sync or cls.capabilities.can_webhook):
            continue
        assert cls.dedupe_key is not Connector.dedupe_key, cls.key
        assert cls.normalize is not Connector.normalize, cls.key
        if cls.capabilities.can_webhook:
            assert cls.parse_webhook is not Connector.parse_webhook, cls.key
