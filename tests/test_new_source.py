"""A new source is one package: a connector written into a temporary directory is served,
listed, creatable and configurable with no other change anywhere."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import connectors
from bot.clock import ManualClock
from bot.config import ConfigError, example_toml, parse_config
from bot.core import Core
from tests.conftest import GUILD, sha_headers
from web.app import create_app

CONNECTOR = """
from __future__ import annotations

from connectors.base import (
    ActivityEvent, Capabilities, ConfigKey, Connector, EndpointKind, EventSpec, RouteSpec,
    expect_object, iso, text, timestamp,
)


class HelloConnector(Connector):
    key = "hello"
    name = "Hello"
    capabilities = Capabilities(can_webhook=True)
    events = (EventSpec("hello.waved", "Someone waved at the server"),)
    endpoint_kinds = (
        EndpointKind(
            "hello", "a waving machine", routes=(RouteSpec("/webhooks/hello/{path}", "hello"),)
        ),
    )
    config = (
        ConfigKey("greeting", "hi", "What the machine says back."),
        ConfigKey("loudness", 3, "How loud it says it.", minimum=1, maximum=10),
    )

    def parse_webhook(self, body, context):
        data = expect_object(body)
        return {"who": text(data.get("who"), "who", max_len=32), "at": iso(context.received_at)}

    def dedupe_key(self, raw):
        return f"hello:{raw['who']}:{raw['at']}"

    def normalize(self, raw, link):
        return ActivityEvent(
            type="hello.waved", title=f"{raw['who']} waved", source="hello",
            occurred_at=timestamp(raw["at"], "at"),
        )
"""


@pytest.fixture
def hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """connectors/hello/, written into a temporary directory the connectors package reads."""
    package = tmp_path / "extra" / "hello"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .connector import HelloConnector\n")
    (package / "connector.py").write_text(textwrap.dedent(CONNECTOR))
    monkeypatch.setattr(connectors, "__path__", [*connectors.__path__, str(package.parent)])
    yield
    for name in [
        m for m in sys.modules if m == "connectors.hello" or m.startswith("connectors.hello.")
    ]:
        del sys.modules[name]


def test_it_is_configurable(hello: None) -> None:
    config = parse_config({"hello": {"greeting": "yo"}}, env={})
    assert (config.hello.greeting, config.hello.loudness) == ("yo", 3)
    with pytest.raises(ConfigError, match=r"hello\.loudness: must be between 1 and 10"):
        parse_config({"hello": {"loudness": 11}}, env={})
    with pytest.raises(ConfigError, match=r"hello\.volume: unknown key"):
        parse_config({"hello": {"volume": 1}}, env={})
    example = example_toml()
    assert '[hello]\n# What the machine says back.\ngreeting = "hi"' in example


async def test_it_is_served_listed_and_creatable(
    hello: None, tmp_path: Path, clock: ManualClock
) -> None:
    config = parse_config({"database": {"path": str(tmp_path / "q.sqlite3")}}, env={})
    core = await Core.start(config, clock)
    try:
        assert ("hello", "a waving machine") in core.endpoint_admin.kind_choices()
        assert "hello.waved" in core.registry.event_types()  # /feed events lists it
        endpoint = await core.endpoint_admin.create(kind="hello", guild_id=GUILD)
        await core.endpoints.refresh()
        [(label, url)] = core.endpoint_admin.urls(endpoint, "https://q.example")
        assert (label, url) == (
            None,  # the kind's one webhook route: /webhook create and the CLI name it
            f"https://q.example/webhooks/hello/{endpoint.path}",
        )
        async with TestClient(TestServer(create_app(core))) as client:
            body = json.dumps({"who": "Alex"}).encode()
            assert endpoint.secret is not None
            answer = await client.post(
                f"/webhooks/hello/{endpoint.path}",
                data=body,
                headers=sha_headers(endpoint.secret, body),
            )
            assert answer.status == 200 and (await answer.json()) == {"status": "accepted"}
            bad = await client.post(
                f"/webhooks/hello/{endpoint.path}",
                data=b"{}",
                headers=sha_headers(endpoint.secret, b"{}"),
            )
            assert bad.status == 422 and (await bad.json())["field"] == "who"
        [event] = await core.store.engine.fetchall(
            "SELECT type, title, source FROM activity_events"
        )
        assert tuple(event) == ("hello.waved", "Alex waved", "hello")
    finally:
        await core.stop()


async def test_the_cli_creates_it(
    hello: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from tests.process import write_config

    config = write_config(tmp_path)
    args = ["endpoint", "create", "--kind", "hello", "--guild", str(GUILD), "--json"]
    assert await asyncio.to_thread(main, [*args, "--config", str(config)]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["kind"] == "hello" and created["urls"][0].endswith(
        f"/webhooks/hello/{created['path']}"
    )
