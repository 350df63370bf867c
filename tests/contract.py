"""What the store's contract tests share (tests/test_store_contract.py and the
tests/test_contract_<part>.py files): the backends, the ``store`` fixture and the ``@part``
marker.

A contract test uses only interface methods (bot/storage/interface.py) and names the parts of
the store it needs (``@part("feed", "events")``); it runs on SQLite always, and on PostgreSQL
(the throwaway cluster of tests/postgres.py) once every part it names is in
``PostgresStore.PARTS``. A test module takes part in this by importing ``store`` and
``pytest_generate_tests`` from here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.storage import Store, interface
from bot.storage.postgres.store import PostgresStore
from bot.storage.sqlite import SqliteStore
from tests.conftest import postgres_database

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GUILD, OTHER = 111, 222
SID = "76561198000000001"

OpenStore = Callable[[Path], Awaitable[Store]]
BACKENDS: dict[str, OpenStore] = {"sqlite": SqliteStore.open}
#: Every part of the Store interface, by its attribute name.
PARTS: dict[str, type] = {
    name: getattr(interface, annotation)
    for name, annotation in interface.Store.__annotations__.items()
}
BUILT = {"sqlite": set(PARTS), "postgresql": set(PostgresStore.PARTS)}


def part(*names: str) -> pytest.MarkDecorator:
    """The parts of the store a test needs: it runs on every backend that has them all."""
    unknown = set(names) - set(PARTS)
    assert not unknown, f"no such part of the store: {sorted(unknown)}"
    return pytest.mark.part(*names)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("part")
        wanted = set(marker.args) if marker else set(PARTS)
        backends = [b for b, built in sorted(BUILT.items()) if wanted <= built]
        metafunc.parametrize("store", backends, indirect=True)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param != "postgresql":
        opened = await BACKENDS[request.param](tmp_path / "store.db")
        try:
            yield opened
        finally:
            await opened.close()
        return
    async with postgres_database(request.getfixturevalue("postgres_cluster")) as url:
        pg = await PostgresStore.open(url)
        try:
            yield pg
        finally:
            await pg.close()
