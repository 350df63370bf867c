"""serve() in-process: the server's GC tuning is in force while it runs and undone afterwards."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

from bot.config import Config
from bot.server import GC_YOUNG_THRESHOLD, Server, serve, server_gc


async def test_serve_raises_the_young_gc_threshold_only_while_running(config: Config) -> None:
    before = gc.get_threshold()
    assert before[0] < GC_YOUNG_THRESHOLD  # the interpreter default (700)
    seen: list[tuple[int, int, int]] = []

    def ready(server: Server) -> None:
        seen.append(gc.get_threshold())
        # serve() stops on SIGTERM, exactly as in production.
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    assert await asyncio.wait_for(serve(config, web_only=True, on_ready=ready), timeout=20) == 0
    assert seen == [(GC_YOUNG_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before


def test_server_gc_leaves_automatic_collection_off_when_it_was_off() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(0, *before[1:])
        with server_gc():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
