"""Process lifecycle: ``main()`` owns storage, the web server, the pipeline, the scheduler and
the feed poster.

Start-up: core services (database, migrations, endpoint cache, Steam client), then the web
server and the scheduler (the Steam sync, with an API key), then (with a token, without
--web-only) the feed poster and the Discord bot, which logs in in the background. SIGINT/SIGTERM
stop everything in reverse order: stop accepting webhooks and drain the requests in flight, stop
the scheduler, stop the poster, close the bot, then close the core (background lookups, HTTP
client, database threads), and return 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Config
from web.signatures import BattleMetricsScheme, PlainHexScheme, Sha256Scheme

if TYPE_CHECKING:  # imported when the server starts: `questlog sign` needs only the schemes
    from aiohttp import web

    from bot.core import Core
    from bot.feed.poster import FeedPoster
    from bot.gateway.client import DiscordComponent
    from bot.storage.instance import ServerLock

log = logging.getLogger("questlog")

DRAIN_SECONDS = 5.0
# Collect the youngest GC generation after this many net allocations instead of Python's 700.
# Under load every in-flight request keeps a few hundred objects alive, and each young-generation
# collection walked all of them (and promoted them, so older collections walked them again):
# bench/ingest.py measured 6-7 % of the server's CPU in the collector at 700, under 0.5 % at
# 10,000 (README "Performance"). Reference cycles are still collected, only in larger rounds.
GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def server_gc() -> Iterator[None]:
    """Raise the young-generation GC threshold while the server runs; restore it afterwards."""
    before = gc.get_threshold()
    if 0 < before[0] < GC_YOUNG_THRESHOLD:  # 0 means automatic collection is off: keep it off
        gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def settle_heap() -> None:
    """Once started: collect, then move every object alive to the GC's permanent generation.
    Modules, catalogues, pydantic's validators and matplotlib's state are never garbage, and a
    full collection walked all of them each time: the scale benchmark saw a 47 ms full
    collection land inside a 4 ms /playtime chart (README "Performance"). Objects made later
    are collected as before."""
    gc.collect()
    gc.freeze()


NO_TOKEN_NOTICE = """\
No Discord bot token is configured, so Questlog runs in web-only mode: webhooks, storage and
get-playtime work, and activity events wait in the feed outbox until the bot runs with a token.
To connect to Discord:
  1. Open https://discord.com/developers/applications, create an application, open "Bot" and
     press "Reset Token" to get a token.
  2. Put it in config.toml under [discord] token = "...", or export DISCORD_TOKEN=... .
  3. Invite the bot with the OAuth2 URL generator (scopes: bot, applications.commands).
Start with --web-only to skip this notice."""


def sign_payload(scheme: str, secret: str, body: bytes, timestamp: str | None) -> str:
    """A signature as a sender computes it, in the web server's own schemes (``questlog
    sign``): ``bm`` (BattleMetrics, ``timestamp`` required), ``sha256`` (Minecraft and custom
    scripts, optional ``timestamp``) or ``hex`` (get-playtime)."""
    if scheme == "bm":
        assert timestamp is not None
        return BattleMetricsScheme.sign(secret, body, timestamp)
    if scheme == "sha256":
        return Sha256Scheme.sign(secret, body, timestamp)
    return PlainHexScheme.sign(secret, body)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)


class Server:
    """The running process: core services, the web site and, with a token, the feed poster and
    the Discord bot."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.core: Core | None = None
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        self.poster: FeedPoster | None = None
        self.discord: DiscordComponent | None = None
        self.lock: ServerLock | None = None

    async def start_discord(self) -> None:
        """Start the feed poster and the bot; a Discord outage never stops the webhooks."""
        from bot.feed.poster import FeedPoster
        from bot.gateway.client import DiscordComponent

        assert self.core is not None
        self.poster = FeedPoster(self.core.store, self.core.clock)
        self.core.pipeline.on_event = self.poster.wake
        await self.poster.start()
        DiscordComponent.use_endpoints(
            self.config.discord.api_base_url, self.config.discord.gateway_url
        )
        if self.core.presence is not None:
            await self.core.presence.start()
        self.discord = DiscordComponent(
            self.core,
            self.poster,
            self.config.discord.token,
            dev_guild_id=self.config.discord.dev_guild_id,
            presence=self.core.presence is not None,
            shard_count=self.config.discord.shard_count,
            shard_ids=self.config.discord.shard_ids,
        )
        await self.discord.start()

    async def start(self) -> None:
        from aiohttp import web

        from bot.core import Core
        from bot.storage.instance import hold_server_lock
        from web.accesslog import AccessLogger
        from web.app import create_app

        if not self.config.database.url:  # one server per SQLite file; PostgreSQL takes many
            self.lock = hold_server_lock(self.config.database.path)
        try:
            self.core = await Core.start(self.config, self.clock)
        except BaseException:
            if self.lock is not None:
                self.lock.release()
                self.lock = None
            raise
        try:
            app = create_app(self.core)
            self.runner = web.AppRunner(
                app,
                handle_signals=False,
                access_log=logging.getLogger("aiohttp.access")
                if self.config.web.access_log
                else None,
                access_log_class=AccessLogger,
                shutdown_timeout=DRAIN_SECONDS,
                # Also closes a connection whose request headers are not complete by then
                # (aiohttp >= 3.14.4; before, such a connection had no limit at all).
                keepalive_timeout=self.config.web.keepalive_seconds,
            )
            await self.runner.setup()
            site = web.TCPSite(self.runner, self.config.web.host, self.config.web.port)
            await site.start()
        except BaseException:
            await self.stop()
            raise
        assert self.core.instance_jobs is not None
        await self.core.instance_jobs.start()  # the Steam sync, pruning, rewards, Linked Roles
        await self.core.actions.start()
        settle_heap()
        address = self.runner.addresses[0]
        self.port = int(address[1])
        host = self.config.web.host
        shown = f"[{host}]" if ":" in host else host
        log.info("web server listening on http://%s:%d", shown, self.port)
        # For `questlog endpoint create` with port = 0 (it checks /healthz answers there).
        local = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, shown)
        await self.core.store.endpoints.set_listening(f"http://{local}:{self.port}")

    async def stop(self) -> None:
        """Every step runs even if an earlier one fails: the database must always be closed, or
        its thread would keep the process alive after SIGTERM."""
        runner, poster, discord, core = self.runner, self.poster, self.discord, self.core
        self.runner = self.poster = self.discord = self.core = None  # type: ignore[assignment]

        async def forget_address() -> None:
            if core is not None:
                await core.store.endpoints.set_listening(None)

        steps = [
            ("draining web requests", runner.cleanup if runner else None),
            ("forgetting the listening address", forget_address if runner else None),
            (
                "stopping the instance jobs",
                core.instance_jobs.stop if core and core.instance_jobs else None,
            ),
            ("stopping the feed poster", poster.stop if poster else None),
            ("closing the Discord bot", discord.stop if discord else None),
            ("closing storage", core.stop if core else None),
        ]
        for what, step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception:
                log.exception("shutdown: %s failed; continuing", what)
        if self.lock is not None:  # the database is closed: another server may take it
            self.lock.release()
            self.lock = None


async def serve(
    config: Config,
    *,
    web_only: bool,
    clock: Clock | None = None,
    on_ready: Callable[[Server], None] | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (
            NotImplementedError,
            RuntimeError,
        ):  # Windows: Ctrl+C still raises KeyboardInterrupt
            pass
    if not web_only and not config.discord.token:
        for line in NO_TOKEN_NOTICE.splitlines():
            log.warning(line)
    server = Server(config, clock=clock)
    await server.start()
    try:
        with server_gc():
            if not web_only and config.discord.token:
                await server.start_discord()
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
        log.info("shutting down: draining web requests")
    finally:
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
    log.info("stopped")
    return 0
