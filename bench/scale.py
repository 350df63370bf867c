"""Scale benchmark: a large community's database, and how fast its commands answer.

One run, everything local and bounded in count and time:

1. **Build.** A database shaped like a large community, written through the storage layer's own
   functions (the ingest transaction for webhooks, the playtime writer for Steam, the link
   writer): one guild with a feed channel, ``--members`` linked members (most with Steam, many
   with Minecraft), ``--active`` of them playing over ``--days`` days: Minecraft sessions
   (session.started + session.ended webhooks), BattleMetrics playtime reports, and Steam totals
   with the samples the sync records as they grow; libraries of about 50 games each from a
   catalogue of named games. A second, empty database gets the same guild and links.
2. **Warm.** The queries behind every command, through the core services exactly as the cogs
   and the web app call them, ``--repeat`` times each: ``/leaderboard`` (every period: today,
   7d, 30d, 90d, 365d, all, the calendar week and month; a game played on two sources and
   Minecraft; the first and a late page), ``/playtime show``, ``/playtime chart`` (7d, 30d,
   365d, all), get-playtime for 120 ids, ``questlog status``, the game autocomplete; then the
   Discord commands 10 at a time.
3. **Cold.** The same, each time after the core is stopped, the database file is dropped from
   the page cache (``posix_fadvise(DONTNEED)``, checked with ``mincore``) and the core started
   again: every read comes from the disk.
4. **Ingest.** Webhook deliveries through the pipeline on the large database and on the empty
   one, alternating rounds; the median of the round ratios (large / empty, events per second).
   Nine rounds of 8,000: single rounds swing from 0.65 to 1.2 on a shared 2-core host, and
   five rounds of 4,000 gave medians of 0.84 and 1.04 for the same code.
5. **Server.** ``questlog run --web-only`` on the large database: time from start to an
   answering ``/healthz``, RSS idle and while ``--webhooks`` signed deliveries arrive over HTTP.

Bounds (the exit status is 1 when one fails): warm p99 under 50 ms for every command (also 10
at once), the autocomplete under 20 ms, cold under 1 s, ingest on the large database at least
90 % of the empty one, RSS under 150 MB and flat (within 10 %) after the first 10,000 webhooks,
start-up under 3 s. ``--members 500`` is a quick run (part of the test suite, which checks that
it completes, not the bounds: those hold for the default size).

Run it with the project's interpreter: ``.venv/bin/python bench/scale.py`` (``--help``). The
default run takes several minutes and about 2 GB of disk in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import mmap
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bot.clock import Clock  # noqa: E402
from bot.config import Config, load_config  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.ingest.policy import IngestPolicy  # noqa: E402
from bot.server import settle_heap  # noqa: E402
from bot.services.get_playtime import PlaytimeQuery  # noqa: E402
from bot.services.leaderboards import PERIODS  # noqa: E402
from bot.services.status import status_report  # noqa: E402
from bot.storage import open_store  # noqa: E402
from bot.storage.events import compact_json, dedupe_hash, ingest  # noqa: E402
from bot.storage.links import link_account  # noqa: E402
from bot.storage.playtime import record_playtime, remember_game_name  # noqa: E402
from bot.storage.records import GLOBAL_SCOPE, Delivery  # noqa: E402
from connectors.base import Connector, WebhookContext  # noqa: E402
from connectors.registry import Registry  # noqa: E402

GUILD = 1
FEED_CHANNEL = 555
NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # the clock of every query: fixed, repeatable
SQUAD, RUST = 393380, 252490  # BattleMetrics-tracked games (also Steam games)
CATALOGUE = 3000  # distinct Steam games
LIBRARY = (20, 90)  # games per Steam library
CHUNK = 50_000  # deliveries and Steam reads per write transaction while building
BOUND_WARM_MS = 50.0
BOUND_AUTOCOMPLETE_MS = 20.0
BOUND_COLD_MS = 1000.0
BOUND_INGEST_RATIO = 0.9
BOUND_RSS_MB = 150.0
BOUND_RSS_GROWTH = 0.10
BOUND_STARTUP_S = 3.0
BENCH_KEY = "QmVuY2htYXJrIGtleSwgbm90IGEgc2VjcmV0ISEhISE="  # [security] secret_key, bench only
WORDS = (
    "Iron Star Dust Hollow Sky Forge Night Rune Frost Ember Wild Void Deep Last Lost Stone Silver "
    "Storm Crown Tide Ash Bright Dark Steel Raven Wolf Dragon Ghost Echo Hyper Neon Solar Lunar "
    "Quest Realm Legends Tactics Odyssey Frontier Colony Arena Souls Drift Empire Rogue Outpost"
).split()


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW


def member_id(i: int) -> int:
    return 200_000_000_000_000_000 + i


def steam_of(i: int) -> str:
    return str(76_561_198_000_000_000 + i)


def uuid_of(i: int) -> str:
    return str(uuid.UUID(int=(0x5CA1E << 100) | i, version=4))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- build


@dataclass
class Shape:
    members: int
    active: int
    days: int
    seed: int

    @property
    def steam_members(self) -> list[int]:
        return [i for i in range(self.members) if i % 20 < 17]  # 85 % link Steam

    @property
    def minecraft_members(self) -> list[int]:
        return [i for i in range(self.members) if i % 5 < 2]  # 40 % link Minecraft


@dataclass
class Built:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    bytes: int = 0
    popular_game: str = ""  # a Steam game also tracked by BattleMetrics
    active_member: int = 0  # a member with playtime in every source
    ids_120: list[str] = field(default_factory=list)


def catalogue_name(rng: random.Random, app: int) -> str:
    return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {app % 97 + 1}"


def deliveries_for_day(
    shape: Shape, rng: random.Random, day: datetime, bm_totals: dict[tuple[int, int], int]
) -> Iterator[tuple[str, dict[str, Any], WebhookContext]]:
    """(source, body, context) of one day's webhooks: Minecraft sessions of linked and unlinked
    players, BattleMetrics playtime reports at the end of a BattleMetrics session."""
    minecraft = shape.minecraft_members
    active_mc = minecraft[: max(1, len(minecraft) * shape.active // shape.members)]
    steam = shape.steam_members
    active_steam = steam[: max(1, len(steam) * shape.active // shape.members)]
    for i in active_mc + [shape.members + k for k in range(shape.active // 3)]:  # + unlinked
        if rng.random() > 0.3:
            continue
        start = day + timedelta(seconds=rng.randrange(6 * 3600, 22 * 3600))
        duration = rng.randrange(600, 3 * 3600)
        if start + timedelta(seconds=duration) > NOW:
            continue  # today's history ends now
        base = {"player_uuid": uuid_of(i), "player_name": f"mc_{i}", "server_id": "survival"}
        yield "minecraft", {**base, "type": "session.started", "at": iso(start)}, WebhookContext()
        end = start + timedelta(seconds=duration)
        body = {**base, "type": "session.ended", "at": iso(end), "duration_seconds": duration}
        yield "minecraft", body, WebhookContext()
    for i in active_steam:
        if rng.random() > 0.25:
            continue
        game = SQUAD if i % 3 else RUST
        key = (i, game)
        bm_totals[key] = bm_totals.get(key, rng.randrange(0, 200 * 3600)) + rng.randrange(
            900, 4 * 3600
        )
        at = day + timedelta(seconds=rng.randrange(8 * 3600, 23 * 3600))
        if at > NOW:
            continue
        t = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        context = WebhookContext(signed_at=at, signed_at_text=t, signature=f"{i:016x}{game:08x}")
        body = {"steam_id": steam_of(i), "playtime": str(bm_totals[key]), "game_id": game}
        yield "battlemetrics", body, context


def store_deliveries(
    conn: Any,
    items: list[tuple[Connector, dict[str, Any], str]],
    policy: IngestPolicy,
) -> None:
    """The ingest transaction for each (connector, raw event, received at), as the pipeline
    runs it (bot/ingest/pipeline.py) without the event loop."""
    for connector, raw, received in items:
        delivery = Delivery(
            GUILD,
            connector.key,
            None,
            dedupe_hash(connector, raw),
            compact_json(raw),
            received,
        )
        ingest(conn, delivery, connector, raw, connector.effects(raw), policy)


def steam_day(
    shape: Shape,
    rng: random.Random,
    day: datetime,
    libraries: dict[int, list[int]],
    totals: dict[tuple[int, int], int],
) -> list[tuple[str, str, int, datetime]]:
    """(steam id, game, new total, when) of a day's Steam sync reads that saw playtime grow:
    one read per sync interval (20 minutes) while a member plays."""
    steam = shape.steam_members
    active = steam[: max(1, len(steam) * shape.active // shape.members)]
    reads = []
    for i in active:
        if rng.random() > 0.4:
            continue
        library = libraries[i]
        for game in rng.sample(library[:5], k=min(len(library), rng.choice((1, 1, 2)))):
            start = day + timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600))
            for step in range(rng.randrange(1, 10)):
                at = start + timedelta(seconds=1200 * step)
                if at > NOW:
                    break
                totals[(i, game)] += 20 * 60
                reads.append((steam_of(i), str(game), totals[(i, game)], at))
    return reads


async def build(path: Path, shape: Shape, registry: Registry, *, history: bool) -> Built:
    """The database at ``path``: guild, feed channel, links; with ``history`` also the year of
    playtime. Every row is written by the storage package's own functions."""
    started = time.perf_counter()
    rng = random.Random(shape.seed)
    store = await open_store(path)
    built = Built(popular_game=str(SQUAD))
    policy = IngestPolicy.from_registry(registry)
    try:
        await store.stats.use_timezone("UTC")  # as the server's first start does (config.toml)
        # The feed posts as events arrive; what is left of a year is the last day's events.
        await store.feed.set_channel(
            GUILD, FEED_CHANNEL, iso(NOW - timedelta(days=shape.days)), max_age=86_400
        )
        first = NOW - timedelta(days=shape.days)

        def links(conn: Any) -> None:
            for i in range(shape.members):
                joined = first + timedelta(seconds=i)
                if i in steam_set:
                    link_account(conn, guild_id=GUILD, discord_user_id=member_id(i),
                                 source="steam", external_id=steam_of(i), now=joined,
                                 display_name=f"member {i}", verified=True)  # fmt: skip
                if i in mc_set:
                    link_account(conn, guild_id=GUILD, discord_user_id=member_id(i),
                                 source="minecraft", external_id=uuid_of(i), now=joined,
                                 display_name=f"mc_{i}", verified=True)  # fmt: skip

        steam_set, mc_set = set(shape.steam_members), set(shape.minecraft_members)
        await store.engine.write(links)
        await store.steam.enrol(first, lambda _sid: first)
        if not history:
            return built
        # Steam libraries: ~50 games each from a catalogue (popularity falls off), Squad and Rust
        # common; every member's starting totals, read by the sync's first pass.
        apps = [SQUAD, RUST] + [10_000 + 10 * k for k in range(CATALOGUE - 2)]
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(apps))]
        libraries: dict[int, list[int]] = {}
        totals: dict[tuple[int, int], int] = {}
        for i in shape.steam_members:
            size = rng.randrange(*LIBRARY)
            library = list(dict.fromkeys(rng.choices(apps, weights=weights, k=size)))
            libraries[i] = library
            for game in library:
                totals[(i, game)] = rng.choice((0, 0, rng.randrange(60, 500 * 3600)))

        def catalogue(conn: Any) -> None:
            for app in apps:
                remember_game_name(conn, str(app), catalogue_name(rng, app), iso(first))

        await store.engine.write(catalogue)

        def first_reads(conn: Any) -> None:
            for (i, game), seconds in totals.items():
                record_playtime(conn, scope=GLOBAL_SCOPE, source="steam", player_id=steam_of(i),
                                game_id=str(game), seconds=seconds, source_time=first,
                                now_text=iso(first))  # fmt: skip

        await store.engine.write(first_reads)
        connectors = {key: registry.get(key) for key in ("minecraft", "battlemetrics")}
        bm_totals: dict[tuple[int, int], int] = {}
        pending: list[tuple[Connector, dict[str, Any], str]] = []
        steam_pending: list[tuple[str, str, int, datetime]] = []

        def steam_reads(conn: Any, reads: list[tuple[str, str, int, datetime]]) -> None:
            for sid, game, seconds, at in reads:
                record_playtime(conn, scope=GLOBAL_SCOPE, source="steam", player_id=sid,
                                game_id=game, seconds=seconds, source_time=at,
                                now_text=iso(at))  # fmt: skip

        def both(conn: Any, items: list[Any], reads: list[Any]) -> None:
            store_deliveries(conn, items, policy)
            steam_reads(conn, reads)

        for number in range(shape.days + 1):  # the last day is today, until now
            day = (first + timedelta(days=number)).replace(hour=0, minute=0, second=0)
            for source, body, context in deliveries_for_day(shape, rng, day, bm_totals):
                connector = connectors[source]
                raw = connector.parse_webhook(body, context)
                received = body.get("at") or iso(context.signed_at or day)
                pending.append((connector, raw, received))
            steam_pending += steam_day(shape, rng, day, libraries, totals)
            if len(pending) + len(steam_pending) >= CHUNK or number == shape.days:
                items, reads, pending, steam_pending = pending, steam_pending, [], []
                await store.engine.write(lambda c, i=items, r=reads: both(c, i, r))
                await store.engine.checkpoint()  # keeps the WAL small while loading
        await store.feed.expire_old(iso(NOW))
        active = shape.minecraft_members[0] if shape.minecraft_members else 0
        built.active_member = member_id(active if active in steam_set else 0)
        built.ids_120 = [steam_of(i) for i in shape.steam_members[:120]]
        built.bytes = (await store.describe())["database_bytes"]
    finally:
        await store.close()
    built.seconds = time.perf_counter() - started
    built.rows = await table_rows(path)
    return built


async def table_rows(path: Path) -> dict[str, int]:
    store = await open_store(path)
    try:
        return await store.table_rows()
    finally:
        await store.close()


# --------------------------------------------------------------------------- commands

Command = Callable[[Core], Awaitable[Any]]


async def board(core: Core, game: str, period: str, page: int) -> Any:
    return await core.stats.leaderboard(GUILD, game, period, NOW, page)  # type: ignore[arg-type]


def commands(built: Built, late_page: int) -> dict[str, Command]:
    """The query behind each command, called as the cog (or the web app, or the CLI) calls it."""
    popular, member = built.popular_game, built.active_member
    found: dict[str, Command] = {}
    for period in PERIODS:  # the rolling windows and the calendar week and month
        for game, label in ((popular, "steam+bm"), ("minecraft", "minecraft")):
            found[f"/leaderboard {period} {label} p1"] = lambda c, g=game, p=period: board(
                c, g, p, 0
            )
            found[f"/leaderboard {period} {label} p{late_page + 1}"] = lambda c, g=game, p=period: (
                board(c, g, p, late_page)
            )
    found["/playtime show"] = lambda c: c.stats.member(GUILD, member)
    for window in ("7d", "30d", "365d", "all"):
        found[f"/playtime chart {window}"] = lambda c, w=window: c.stats.daily_games(
            GUILD, member, w, NOW
        )
    query = PlaytimeQuery(built.ids_120, SQUAD, refresh=False)
    found["get-playtime 120 ids"] = lambda c: c.playtime.lookup(GUILD, query)
    found["questlog status"] = lambda c: status_report(c.store, c.config, NOW)
    found["autocomplete ''"] = lambda c: c.stats.games(GUILD, "")
    found["autocomplete 'st'"] = lambda c: c.stats.games(GUILD, "st")
    return found


CONCURRENT = (  # ten Discord commands (and a server script's lookup) arriving together
    "/leaderboard all steam+bm p1",
    "/leaderboard 365d steam+bm p1",
    "/leaderboard 30d minecraft p1",
    "/leaderboard today steam+bm p1",
    "/playtime show",
    "/playtime chart 30d",
    "/playtime chart all",
    "autocomplete ''",
    "autocomplete 'st'",
    "get-playtime 120 ids",
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def timed(fn: Command, core: Core) -> float:
    started = time.perf_counter()
    await fn(core)
    return time.perf_counter() - started


def bench_config(
    directory: Path, database: Path, port: int = 0, postgres: str | None = None
) -> Path:
    """config.toml for the SQLite file, or config-pg.toml for the PostgreSQL URL."""
    path = directory / ("config-pg.toml" if postgres else "config.toml")
    extra = (
        f"url = {json.dumps(postgres)}\n\n[security]\nsecret_key = {json.dumps(BENCH_KEY)}\n"
        if postgres
        else ""
    )
    path.write_text(
        "[general]\n"
        'log_level = "WARNING"\n\n'
        "[web]\n"
        'host = "127.0.0.1"\n'
        f"port = {port or 8080}\n\n"
        "[database]\n"
        f"path = {json.dumps(str(database))}\n"
        f"{extra}\n"
        "[battlemetrics]\n"
        "tolerance_seconds = 86400\n\n"
        "[webhooks]\n"
        "tolerance_seconds = 86400\n",
        encoding="utf-8",
    )
    return path


async def start_core(config: Config) -> Core:
    core = await Core.start(config, FixedClock())
    settle_heap()  # as the server does once it has started
    return core


# --------------------------------------------------------------------------- page cache

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long)  # fmt: skip


def resident_share(path: Path) -> float:
    """Share of the file's pages in the page cache (mincore over a read-only mapping)."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return 0.0
    page = os.sysconf("SC_PAGE_SIZE")
    pages = (size + page - 1) // page
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, ctypes.c_size_t(size), mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(v & 1 for v in vector) / pages
        finally:
            _libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size))
    finally:
        os.close(fd)


def evict(database: Path) -> float:
    """Drop the database's files from the page cache; returns the share still resident."""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{database}{suffix}")
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return resident_share(database)


# --------------------------------------------------------------------------- phases


def answer_size(name: str, answer: Any) -> int:
    """How much a command found (rows, days with playtime, ...): every one must find some."""
    if name.startswith("/leaderboard"):
        return len(answer.rows)
    if name == "/playtime show":
        return len(answer.totals)
    if name.startswith("/playtime chart"):
        days, _names = answer
        return sum(1 for _, games in days if games)
    if name == "questlog status":
        return int(answer["raw_events"])
    return len(answer)


async def warm_phase(
    config: Config, found: dict[str, Command], repeat: int, answers: dict[str, int]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    core = await start_core(config)
    try:
        for name, fn in found.items():  # one untimed pass: the file and SQLite's caches warm up
            answers[name] = answer_size(name, await fn(core))
        alone = {}
        for name, fn in found.items():
            alone[name] = summary([await timed(fn, core) for _ in range(repeat)])
        together: dict[str, list[float]] = {name: [] for name in CONCURRENT}
        for _ in range(repeat):
            started = time.perf_counter()

            async def one(name: str, started: float = started) -> None:
                await found[name](core)
                together[name].append(time.perf_counter() - started)

            await asyncio.gather(*(one(name) for name in CONCURRENT))
        return alone, {name: summary(values) for name, values in together.items()}
    finally:
        await core.stop()


async def cold_phase(
    config: Config, found: dict[str, Command], repeat: int
) -> tuple[dict[str, dict[str, float]], float]:
    database = config.database.path
    samples: dict[str, list[float]] = {name: [] for name in found}
    resident = 0.0
    for _ in range(repeat):
        for name, fn in found.items():
            resident = max(resident, evict(Path(database)))
            core = await start_core(config)
            try:
                samples[name].append(await timed(fn, core))
            finally:
                await core.stop()
    return {name: summary(values) for name, values in samples.items()}, resident


def ingest_round(
    shape: Shape, number: int, count: int
) -> list[tuple[str, dict[str, Any], WebhookContext]]:
    """``count`` new deliveries (half BattleMetrics reports, half Minecraft sessions) from
    linked players, later than everything stored; the same for both databases."""
    steam, minecraft = shape.steam_members, shape.minecraft_members or [0]
    base = NOW + timedelta(hours=number)
    items: list[tuple[str, dict[str, Any], WebhookContext]] = []
    for k in range(count // 2):
        i = steam[k % len(steam)]
        at = base + timedelta(milliseconds=k)
        t = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        context = WebhookContext(signed_at=at, signed_at_text=t, signature=f"{number:08x}{k:016x}")
        total = str(10_000_000 + number * count + k)
        items.append(("battlemetrics", {"steam_id": steam_of(i), "playtime": total,
                                        "game_id": SQUAD}, context))  # fmt: skip
    for k in range(count - count // 2):
        i = minecraft[(k // 2) % len(minecraft)]
        at = base + timedelta(seconds=k)
        base_body = {"player_uuid": uuid_of(i), "player_name": f"mc_{i}", "server_id": "bench"}
        if k % 2 == 0:
            body = {**base_body, "type": "session.started", "at": iso(at)}
        else:
            body = {**base_body, "type": "session.ended", "at": iso(at), "duration_seconds": 1}
        items.append(("minecraft", body, WebhookContext()))
    return items


async def ingest_once(core: Core, items: list[tuple[str, dict[str, Any], WebhookContext]]) -> float:
    """Events per second through the pipeline, all offered at once (the writer group-commits)."""
    parsed = [(s, core.pipeline.parse_webhook(s, body, ctx)) for s, body, ctx in items]
    started = time.perf_counter()
    results = await asyncio.gather(*(core.pipeline.ingest(s, GUILD, raw) for s, raw in parsed))
    elapsed = time.perf_counter() - started
    accepted = sum(1 for r in results if r.status == "accepted")
    if accepted != len(items):
        raise RuntimeError(f"ingest accepted {accepted} of {len(items)} deliveries")
    return len(items) / elapsed


def sqlite_us(core: Core) -> float | None:
    """Microseconds of SQLite work (operations and COMMIT) per write so far (None for
    PostgreSQL, whose engine does not time its work)."""
    engine = core.store.engine
    if not hasattr(engine, "ops_seconds"):
        return None
    return round(1e6 * (engine.ops_seconds + engine.commit_seconds) / max(1, engine.batched_ops), 1)


async def ingest_phase(
    large: Config, empty: Config, shape: Shape, rounds: int, count: int
) -> dict[str, Any]:
    """Alternating rounds, empty first and last; each large round against the mean of the empty
    rounds beside it (the host's speed drifts within seconds)."""
    cores = {"large": await start_core(large), "empty": await start_core(empty)}
    try:
        for core in cores.values():  # warm both: one untimed round each
            await ingest_once(core, ingest_round(shape, 0, count))
        rates: dict[str, list[float]] = {"large": [], "empty": []}
        for number in range(1, 2 * rounds + 2):
            which = "empty" if number % 2 else "large"
            rates[which].append(await ingest_once(cores[which], ingest_round(shape, number, count)))
        ratios = [
            rate / ((rates["empty"][k] + rates["empty"][k + 1]) / 2)
            for k, rate in enumerate(rates["large"])
        ]
        return {
            "events_per_second": {k: [round(v) for v in vs] for k, vs in rates.items()},
            "ratios": [round(r, 3) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 3),
            "sqlite_us_per_write": {name: sqlite_us(c) for name, c in cores.items()},
        }
    finally:
        for core in cores.values():
            await core.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/<pid>/status")


async def send_all(port: int, lines: list[str], pid: int, every: int) -> list[tuple[int, float]]:
    """POST every pre-signed request (16 at a time); RSS after each ``every`` answers."""
    import aiohttp

    url = f"http://127.0.0.1:{port}"
    marks: list[tuple[int, float]] = []
    done = 0
    failed: list[int] = []
    queue = iter(lines)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def worker() -> None:
            nonlocal done
            for line in queue:
                path, signature, body = line.split("\t", 2)
                headers = {"Content-Type": "application/json", "X-Signature": signature}
                async with session.post(url + path, data=body, headers=headers) as reply:
                    await reply.read()
                    if reply.status >= 300:
                        failed.append(reply.status)
                done += 1
                if done % every == 0:
                    marks.append((done, rss_mb(pid)))

        await asyncio.gather(*(worker() for _ in range(16)))
    if failed:
        raise RuntimeError(f"{len(failed)} webhooks failed, e.g. status {failed[0]}")
    return marks


def server_phase(directory: Path, shape: Shape, webhooks: int) -> dict[str, Any]:
    import ingest as http_bench  # bench/ingest.py: config, endpoints, signed requests

    port = http_bench.free_port()
    config = bench_config(directory, directory / "questlog.sqlite3", port)
    bm = http_bench.create_endpoint(config, "playtime")
    mc = http_bench.create_endpoint(config, "minecraft")
    workload = http_bench.build_workload(
        webhooks, bm, mc, max(1, len(shape.steam_members)), datetime.now(UTC)
    )
    evict(directory / "questlog.sqlite3")
    command = [*http_bench.questlog_command(), "run", "--web-only", "--config", str(config)]
    log_path = directory / "server.log"
    started = time.perf_counter()
    with http_bench.server_process(command, port, log_path, "questlog") as process:
        startup = time.perf_counter() - started
        time.sleep(1.0)
        idle = rss_mb(process.pid)
        every = max(1, min(10_000, webhooks // 20))
        sent = time.perf_counter()
        marks = asyncio.run(send_all(port, workload.lines, process.pid, every))
        seconds = time.perf_counter() - sent
        status = http_bench.stop_process(process)
    if status != 0:
        raise RuntimeError(f"the server exited with status {status} (log: {log_path})")
    after_10k = [rss for count, rss in marks if count >= 10_000]
    growth = (max(after_10k) - after_10k[0]) / after_10k[0] if len(after_10k) > 1 else None
    # For information: what a leak would show even where the caches fill slowly.
    late = [rss for count, rss in marks if count >= webhooks // 2]
    late_growth = (max(late) - late[0]) / late[0] if len(late) > 1 else None
    return {
        "startup_seconds": round(startup, 2),
        "rss_idle_mb": round(idle, 1),
        "rss_mb": [(count, round(rss, 1)) for count, rss in marks],
        "rss_final_mb": round(marks[-1][1], 1) if marks else idle,
        "rss_growth_after_10k": round(growth, 3) if growth is not None else None,
        "rss_growth_second_half": round(late_growth, 3) if late_growth is not None else None,
        "webhooks": webhooks,
        "webhooks_per_second": round(webhooks / seconds),
    }


# --------------------------------------------------------------------------- report


def bounds(result: dict[str, Any]) -> list[str]:
    """Each bound the run missed, as a sentence (empty: every bound holds)."""
    missed = [f"{name} found nothing" for name, size in result["answers"].items() if not size]
    for name, figures in result["warm"].items():
        limit = BOUND_AUTOCOMPLETE_MS if name.startswith("autocomplete") else BOUND_WARM_MS
        if figures["p99_ms"] >= limit:
            missed.append(f"warm {name}: p99 {figures['p99_ms']} ms >= {limit} ms")
    for name, figures in result["concurrent"].items():
        if figures["p99_ms"] >= BOUND_WARM_MS:
            missed.append(f"10 at once, {name}: p99 {figures['p99_ms']} ms >= {BOUND_WARM_MS} ms")
    for name, figures in result.get("cold", {}).items():
        if figures["max_ms"] >= BOUND_COLD_MS:
            missed.append(f"cold {name}: max {figures['max_ms']} ms >= {BOUND_COLD_MS} ms")
    ingest = result.get("ingest")
    if ingest and ingest["ratio_median"] < BOUND_INGEST_RATIO:
        missed.append(f"ingest large/empty {ingest['ratio_median']} < {BOUND_INGEST_RATIO}")
    postgres = result.get("postgres")
    if postgres:
        missed += [f"PostgreSQL: {line}" for line in bounds({**postgres, "postgres": None})]
    server = result.get("server")
    if server:
        if server["rss_final_mb"] >= BOUND_RSS_MB:
            missed.append(f"RSS {server['rss_final_mb']} MB >= {BOUND_RSS_MB} MB")
        growth = server["rss_growth_after_10k"]
        if growth is not None and growth > BOUND_RSS_GROWTH:
            missed.append(f"RSS grew {growth:.0%} after the first 10,000 webhooks")
        if server["startup_seconds"] >= BOUND_STARTUP_S:
            missed.append(f"start-up {server['startup_seconds']} s >= {BOUND_STARTUP_S} s")
    return missed


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name in rows)
    print(f"  {'':{width}}  {'p50 ms':>9}  {'p99 ms':>9}  {'max ms':>9}")
    for name, f in rows.items():
        print(f"  {name:{width}}  {f['p50_ms']:9.2f}  {f['p99_ms']:9.2f}  {f['max_ms']:9.2f}")


def report(result: dict[str, Any]) -> None:
    build_info = result["build"]
    print(f"database: {build_info['bytes'] / 2**20:.0f} MiB, {sum(build_info['rows'].values()):,}"
          f" rows, built in {build_info['seconds']:.0f} s")  # fmt: skip
    for table, rows in sorted(build_info["rows"].items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {table:22} {rows:>12,}")
    print_table(f"warm, {result['repeat']} runs each", result["warm"])
    print_table("warm, 10 at once", result["concurrent"])
    if "cold" in result:
        share = result["cold_resident_share"]
        print_table(f"cold (page cache dropped; at most {share:.1%} resident)", result["cold"])
    if "ingest" in result:
        ingest = result["ingest"]
        print(f"\ningest, large / empty: median {ingest['ratio_median']} (rounds {ingest['ratios']});"
              f" events/s {ingest['events_per_second']};"
              f" SQLite us/write {ingest['sqlite_us_per_write']}")  # fmt: skip
    if "server" in result:
        s = result["server"]
        print(f"\nserver: start-up to /healthz {s['startup_seconds']} s; RSS idle {s['rss_idle_mb']}"
              f" MB, after {s['webhooks']:,} webhooks {s['rss_final_mb']} MB (growth after 10k:"
              f" {s['rss_growth_after_10k']}, over the second half: {s['rss_growth_second_half']});"
              f" {s['webhooks_per_second']} webhooks/s")  # fmt: skip
        print(f"  RSS by webhooks: {s['rss_mb']}")
    if "postgres" in result:
        pg = result["postgres"]
        print(f"\nPostgreSQL (both databases copied in {pg['copy_seconds']} s):")
        print_table(f"  warm, {result['repeat']} runs each", pg["warm"])
        print_table("  warm, 10 at once", pg["concurrent"])
        if "ingest" in pg:
            ingest = pg["ingest"]
            print(f"\n  ingest, large / empty: median {ingest['ratio_median']}"
                  f" (rounds {ingest['ratios']}); events/s {ingest['events_per_second']}")  # fmt: skip
    missed = result["missed"]
    print("\nbounds: " + ("all met" if not missed else "MISSED\n  " + "\n  ".join(missed)))


async def measure(args: argparse.Namespace, directory: Path, shape: Shape) -> dict[str, Any]:
    registry = Registry().discover()
    large_db, empty_db = directory / "questlog.sqlite3", directory / "empty" / "questlog.sqlite3"
    built = await build(large_db, shape, registry, history=True)
    await build(empty_db, shape, registry, history=False)
    large = load_config(bench_config(directory, large_db), env={})
    empty = load_config(bench_config(empty_db.parent, empty_db), env={})
    late_page = max(1, min(len(shape.minecraft_members), shape.active) // 10 // 2)
    found = commands(built, late_page)
    result: dict[str, Any] = {
        "shape": vars(shape),
        "repeat": args.repeat,
        "build": {"seconds": round(built.seconds, 1), "bytes": built.bytes, "rows": built.rows},
    }
    if args.database:  # first: the copies must hold what was built, not the ingest rounds
        result["postgres"] = await measure_postgres(args, directory, shape, found, large_db,
                                                    empty_db)  # fmt: skip
    result["answers"] = {}
    result["warm"], result["concurrent"] = await warm_phase(
        large, found, args.repeat, result["answers"]
    )
    if args.cold_repeat:
        result["cold"], result["cold_resident_share"] = await cold_phase(
            large, found, args.cold_repeat
        )
    if args.ingest_rounds:
        result["ingest"] = await ingest_phase(
            large, empty, shape, args.ingest_rounds, args.ingest_count
        )
    return result


async def measure_postgres(
    args: argparse.Namespace,
    directory: Path,
    shape: Shape,
    found: dict[str, Command],
    large_db: Path,
    empty_db: Path,
) -> dict[str, Any]:
    """``--database``: the same two databases copied into PostgreSQL (``questlog db copy``'s
    code, verified), and the warm and ingest phases again on them. The cold phase drops a
    file's pages from the page cache, which a PostgreSQL server's own buffers do not follow,
    and the server phase measures a process on the SQLite file: neither is run here."""
    import asyncpg

    from bot.storage.postgres.copy import copy_database

    parts = urllib.parse.urlsplit(args.database)
    names = {
        which: f"questlog_scale_{which}_{uuid.uuid4().hex[:8]}" for which in ("large", "empty")
    }
    urls = {w: urllib.parse.urlunsplit(parts._replace(path=f"/{n}")) for w, n in names.items()}
    admin = await asyncpg.connect(args.database)
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
        result: dict[str, Any] = {}
        try:
            started = time.perf_counter()
            for which, path in (("large", large_db), ("empty", empty_db)):
                await copy_database(path, urls[which])
            result["copy_seconds"] = round(time.perf_counter() - started, 1)
            large = load_config(bench_config(directory, large_db, postgres=urls["large"]), env={})
            empty = load_config(
                bench_config(empty_db.parent, empty_db, postgres=urls["empty"]), env={}
            )
            result["answers"] = {}
            result["warm"], result["concurrent"] = await warm_phase(
                large, found, args.repeat, result["answers"]
            )
            if args.ingest_rounds:
                result["ingest"] = await ingest_phase(
                    large, empty, shape, args.ingest_rounds, args.ingest_count
                )
        finally:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return result
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000, help="linked members")
    parser.add_argument("--active", type=int, help="members who play (default: 30 %%)")
    parser.add_argument("--days", type=int, default=365, help="days of history")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query, warm")
    parser.add_argument("--cold-repeat", type=int, default=20, help="timed runs per query, cold")
    parser.add_argument("--ingest-rounds", type=int, default=9, help="large rounds (0: skip)")
    parser.add_argument("--ingest-count", type=int, default=8000, help="deliveries per round")
    parser.add_argument("--webhooks", type=int, default=200_000, help="over HTTP (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it")
    parser.add_argument(
        "--database",
        metavar="URL",
        help="also measure on PostgreSQL: postgresql://user@host/db of a server where the bench"
        " may create (and drop) two databases of its own",
    )
    args = parser.parse_args(argv)
    shape = Shape(args.members, args.active or max(1, args.members * 3 // 10), args.days, args.seed)
    with tempfile.TemporaryDirectory(prefix="questlog-scale-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(measure(args, directory, shape))
        if args.webhooks:
            result["server"] = server_phase(directory, shape, args.webhooks)
    result["missed"] = bounds(result)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 1 if result["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
