"""Slow and silent clients against the real server (bot/server.py): raw sockets on 127.0.0.1.

A connection that never finishes its headers, or sits idle after an answer, is closed after
[web] keepalive_seconds without an answer; a request that announces a body and does not send
it gets 408 after [web] body_timeout_seconds and its connection is closed at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_config
from bot.server import Server
from tests.conftest import GUILD

KEEPALIVE = 1.0
BODY_TIMEOUT = 0.5


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = parse_config(
        {
            "database": {"path": str(tmp_path / "questlog.sqlite3")},
            "web": {
                "port": 0,
                "keepalive_seconds": KEEPALIVE,
                "body_timeout_seconds": BODY_TIMEOUT,
            },
        },
        env={},
    )
    instance = Server(config)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def read_until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    started = time.monotonic()
    received = b""
    async with asyncio.timeout(limit):
        while chunk := await reader.read(65536):
            received += chunk
    return received, time.monotonic() - started


async def open_connection(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.port is not None
    return await asyncio.open_connection("127.0.0.1", server.port)


async def test_a_connection_that_never_finishes_its_headers_is_closed(server: Server) -> None:
    reader, writer = await open_connection(server)
    writer.write(b"POST /webhooks/minecraft/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
    await writer.drain()
    received, after = await read_until_closed(reader, limit=KEEPALIVE + 5)
    writer.close()
    assert received == b""  # closed without an answer
    assert KEEPALIVE * 0.8 <= after <= KEEPALIVE + 2


async def test_a_silent_connection_is_closed_after_the_keepalive(server: Server) -> None:
    reader, writer = await open_connection(server)
    received, after = await read_until_closed(reader, limit=KEEPALIVE + 5)
    writer.close()
    assert received == b"" and after <= KEEPALIVE + 2


async def test_an_idle_connection_after_an_answer_is_closed(server: Server) -> None:
    reader, writer = await open_connection(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    received, after = await read_until_closed(reader, limit=KEEPALIVE + 5)
    writer.close()
    assert received.startswith(b"HTTP/1.1 200")
    assert KEEPALIVE * 0.8 <= after <= KEEPALIVE + 2


async def answer(received: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


async def test_a_body_that_never_arrives_gets_408_and_the_connection_closes_at_once(
    server: Server,
) -> None:
    assert server.core is not None
    endpoint = await server.core.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
    await server.core.endpoints.refresh()
    reader, writer = await open_connection(server)
    writer.write(
        f"POST /webhooks/minecraft/{endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
    )
    await writer.drain()
    # aiohttp alone would linger 10 s reading the rest of the body before closing.
    received, after = await read_until_closed(reader, limit=BODY_TIMEOUT + 5)
    writer.close()
    status, headers, body = await answer(received)
    assert status == 408 and body["error"] == "request_timeout"
    assert headers.get("connection", "").lower() == "close"
    assert BODY_TIMEOUT * 0.8 <= after <= BODY_TIMEOUT + 2
    # The server keeps serving.
    reader, writer = await open_connection(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    received, _ = await read_until_closed(reader, limit=5)
    writer.close()
    assert received.startswith(b"HTTP/1.1 200")


async def test_a_body_sent_slowly_but_within_the_limit_is_read(server: Server) -> None:
    assert server.core is not None
    endpoint = await server.core.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
    await server.core.endpoints.refresh()
    body = b"{}"
    reader, writer = await open_connection(server)
    writer.write(
        f"POST /webhooks/minecraft/{endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    await asyncio.sleep(BODY_TIMEOUT / 3)
    writer.write(body)
    await writer.drain()
    received, _ = await read_until_closed(reader, limit=5)
    writer.close()
    status, _, answer_body = await answer(received)
    assert status == 401 and answer_body["error"] == "invalid_signature"  # read, then checked
