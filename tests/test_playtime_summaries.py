"""The summaries behind fast playtime commands (migration 0014): per-day playtime, the guild's
games, row counts; and the one-statement leaderboard against a straightforward reference."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.storage import open_store
from bot.storage.engine import apply_migrations, connect_sync
from bot.storage.links import link_account
from bot.storage.playtime import (
    add_playtime,
    cover,
    local_day,
    record_playtime,
    remember_game_name,
)
from bot.storage.records import DayRange
from bot.storage.stats import use_timezone

GUILD, OTHER = 1, 2
NOW = datetime(2025, 3, 12, 18, tzinfo=UTC)


def _schema_at(path: Path, version: int) -> sqlite3.Connection:
    conn = connect_sync(path)
    apply_migrations(conn, up_to=version)
    return conn


def test_migration_0014_fills_the_summaries_from_what_is_stored(tmp_path: Path) -> None:
    conn = _schema_at(tmp_path / "q.sqlite3", 13)
    stamp = "2025-03-01T12:00:00.000000Z"
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    conn.executemany(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, 'x', 'x')",
        [(GUILD, 10, "steam", "s1"), (OTHER, 20, "steam", "s2")],
    )
    conn.executemany(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, 'x', 'x')",
        [
            (0, "steam", "s1", "730", 60),
            (0, "steam", "s1", "570", None),  # private: no value, not listed
            (0, "steam", "s2", "440", 60),  # another guild's member
            (GUILD, "minecraft", "u1", "minecraft", 60),
        ],
    )
    conn.execute(
        "INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id, at,"
        " delta_seconds, total_seconds) VALUES (0, 'steam', 's1', '730', ?, 60, 60)",
        (stamp,),
    )
    conn.execute(
        "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
        " VALUES (1, 'custom', 'h', '{}', 'x')"
    )
    apply_migrations(conn)
    games = conn.execute("SELECT guild_id, game_id FROM guild_games ORDER BY 1, 2").fetchall()
    assert [tuple(r) for r in games] == [(GUILD, "730"), (GUILD, "minecraft"), (OTHER, "440")]
    counts = dict(conn.execute("SELECT name, rows FROM row_counts").fetchall())
    assert (counts["raw_events"], counts["activity_events"]) == (1, 0)
    # The days come from the samples once a time zone is set (the first start does it).
    assert conn.execute("SELECT count(*) FROM playtime_daily").fetchone()[0] == 0
    assert use_timezone(conn, "UTC")
    days = conn.execute("SELECT game_id, day, source, player_id, seconds FROM playtime_daily")
    assert [tuple(r) for r in days.fetchall()] == [("730", "2025-03-01", "steam", "s1", 60)]
    # The rebuild puts back the per-player index exactly as the migration made it.
    fresh = _schema_at(tmp_path / "fresh.sqlite3", 14)
    index = "SELECT sql FROM sqlite_schema WHERE name = 'playtime_daily_player'"
    assert conn.execute(index).fetchone()[0] == fresh.execute(index).fetchone()[0]
    fresh.close()
    conn.close()


async def test_row_counts_follow_inserts_and_deletes(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "q.sqlite3")
    try:

        def op(c: sqlite3.Connection) -> None:
            for n in range(3):
                c.execute(
                    "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
                    " VALUES (1, 'custom', ?, '{}', 'x')",
                    (f"h{n}",),
                )
            c.execute("DELETE FROM raw_events WHERE dedupe_hash = 'h0'")

        await store.engine.write(op)
        assert await store.events.counts() == (2, 0)
        assert (await store.table_rows())["raw_events"] == 2
    finally:
        await store.close()


async def test_guild_games_follow_playtime_and_links(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "q.sqlite3")
    try:

        def op(c: sqlite3.Connection) -> None:
            link_account(c, guild_id=GUILD, discord_user_id=10, source="steam",
                         external_id="s1", now=NOW)  # fmt: skip
            for sid, game, seconds in (("s1", "730", 60), ("s1", "570", None), ("s2", "440", 5)):
                record_playtime(c, scope=0, source="steam", player_id=sid, game_id=game,
                                seconds=seconds, source_time=NOW, now_text="x")  # fmt: skip
            add_playtime(c, scope=OTHER, source="minecraft", player_id="u", game_id="minecraft",
                         delta=60, at=NOW, now_text="x")  # fmt: skip

        await store.engine.write(op)
        assert await store.stats.guild_games(GUILD) == [("730", None)]
        assert await store.stats.guild_games(OTHER) == [("minecraft", "Minecraft")]
        # Linking an account brings its Steam games; a value that appears later lists its game.
        await store.links.link(guild_id=OTHER, discord_user_id=20, source="steam",
                               external_id="s2", now=NOW)  # fmt: skip
        assert [g for g, _ in await store.stats.guild_games(OTHER)] == ["440", "minecraft"]
        await store.engine.write(
            lambda c: record_playtime(
                c,
                scope=0,
                source="steam",
                player_id="s1",
                game_id="570",
                seconds=30,
                source_time=NOW + timedelta(hours=1),
                now_text="x",
            )
        )
        assert [g for g, _ in await store.stats.guild_games(GUILD)] == ["570", "730"]
    finally:
        await store.close()


def test_cover_counts_every_day_once_with_the_fewest_rows() -> None:
    def days_of(keys: list[str], runs: list[tuple[str, str]]) -> list[date]:
        found: list[date] = []
        for key in keys:
            kind, start = key.split(":")
            first = date.fromisoformat(start + ("-01" if kind == "month" else ""))
            last = (
                first + timedelta(days=6)
                if kind == "week"
                else date(first.year + first.month // 12, first.month % 12 + 1, 1)
                - timedelta(days=1)
            )
            found += [first + timedelta(days=n) for n in range((last - first).days + 1)]
        for a, b in runs:
            first, last = date.fromisoformat(a), date.fromisoformat(b)
            found += [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return sorted(found)

    # A rolling year: 11 whole months, whole weeks either side, a few days.
    keys, runs = cover(date(2025, 12, 2), date(2026, 12, 1))
    assert keys == [f"month:2026-{n:02d}" for n in range(1, 12)] + [
        "week:2025-12-08",
        "week:2025-12-15",
        "week:2025-12-22",
    ]
    assert runs == [("2025-12-02", "2025-12-07"), ("2025-12-29", "2025-12-31"), ("2026-12-01",) * 2]
    assert cover(date(2026, 3, 1), date(2026, 3, 31)) == (["month:2026-03"], [])
    assert cover(date(2026, 11, 30), date(2026, 12, 6)) == (["week:2026-11-30"], [])
    assert cover(date(2026, 12, 1), date(2026, 12, 1)) == ([], [("2026-12-01", "2026-12-01")])
    assert cover(date(2026, 12, 2), date(2026, 12, 1)) == ([], [])
    # Every range of up to 400 days within two years: each day exactly once.
    rng = random.Random(3)
    for _ in range(400):
        first = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 730))
        last = first + timedelta(days=rng.randrange(0, 400))
        keys, runs = cover(first, last)
        expected = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        assert days_of(keys, runs) == expected, (first, last)
        assert len(runs) <= 4 and all(b >= a for a, b in runs)


def test_local_day_of_stored_times() -> None:
    assert local_day("2025-03-01T22:30:00.000000Z", ZoneInfo("UTC")) == "2025-03-01"
    assert local_day("2025-03-01T22:30:00.000000Z", ZoneInfo("Europe/Moscow")) == "2025-03-02"
    assert local_day("2025-03-01T02:30:00.000000Z", ZoneInfo("America/New_York")) == "2025-02-28"


async def test_leaderboard_matches_a_reference_on_random_data(tmp_path: Path) -> None:
    """Members with several accounts of a source (they add up), two sources of one game (the
    larger counts), unlinked players and another guild (ignored), every period and page; links
    made before and after the playtime, then unlinks and an account moved to another member."""
    rng = random.Random(7)
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+5:45: days that do not start on a UTC hour
    store = await open_store(tmp_path / "q.sqlite3")
    links: list[tuple[int, int, str, str]] = []  # guild, member, link source, external id
    for member in range(40):
        for n in range(rng.choice((1, 1, 2))):
            links.append((GUILD, member, "steam", f"s{member}-{n}"))
        if rng.random() < 0.4:
            links.append((GUILD, member, "minecraft", f"m{member}"))
    links.append((OTHER, 99, "steam", "s1-0"))  # the same account in another guild
    players = [(0, "steam", f"s{m}-{n}") for m in range(45) for n in range(2)]
    players += [(GUILD, "battlemetrics", f"s{m}-{n}") for m in range(45) for n in range(2)]
    players += [(GUILD, "minecraft", f"m{m}") for m in range(45)]
    players += [(OTHER, "battlemetrics", "s1-0")]
    samples: list[tuple[int, str, str, str, datetime, int]] = []
    aways: list[tuple[str, datetime, int]] = []  # Minecraft's AFK time, beside its samples

    def link(c: sqlite3.Connection, items: list[tuple[int, int, str, str]]) -> None:
        for guild, member, source, external in items:
            link_account(c, guild_id=guild, discord_user_id=member, source=source,
                         external_id=external, now=NOW, reassign=True)  # fmt: skip

    def play(c: sqlite3.Connection) -> None:
        for scope, source, player in players:
            game = "minecraft" if source == "minecraft" else rng.choice(("730", "440"))
            at = NOW - timedelta(days=40)
            for _ in range(rng.randrange(0, 6)):
                at += timedelta(days=rng.randrange(0, 12), minutes=rng.randrange(0, 1440))
                at = min(at, NOW)
                delta = rng.randrange(60, 7200)
                away = rng.choice((0, rng.randrange(1, 900))) if source == "minecraft" else 0
                add_playtime(c, scope=scope, source=source, player_id=player, game_id=game,
                             delta=delta, at=at, now_text="x", away=away)  # fmt: skip
                samples.append((scope, source, player, game, at, delta))
                aways.append((player, at, away))

    async def compare(spans: tuple[DayRange | None, ...]) -> None:
        for game in ("730", "440", "minecraft"):
            for span in spans:
                expected = _reference(links, samples, game, span, zone)
                got, away = [], {}
                for offset in range(0, len(expected), 7):
                    page = await store.stats.leaderboard(GUILD, game, span, offset, 7)
                    assert (page.total, page.offset) == (len(expected), offset)
                    got += page.rows
                    away |= page.away
                assert got == expected, (game, span)
                if game == "minecraft":  # the total beside the active time
                    linked = {
                        member: external for guild, member, source, external in links
                        if guild == GUILD and source == "minecraft"
                    }  # fmt: skip
                    want = {
                        member: spent
                        for member, _ in expected
                        if (spent := sum(
                            a for player, at, a in aways
                            if player == linked[member] and _within(at, span, zone)
                        ))
                    }  # fmt: skip
                    assert away == want, span
                past = await store.stats.leaderboard(GUILD, game, span, len(expected) + 7, 7)
                assert past.rows == (got[(len(got) - 1) // 7 * 7 :] if got else [])

    try:
        assert await store.stats.use_timezone(zone.key)
        await store.engine.write(lambda c: link(c, links[::2]))
        await store.engine.write(play)
        await store.engine.write(lambda c: link(c, links[1::2]))  # accounts with playtime
        periods: list[DayRange | None] = [
            None,
            (date(2025, 3, 12), date(2025, 3, 12)),  # a day
            (date(2025, 3, 4), date(2025, 3, 4)),
            (date(2025, 3, 10), date(2025, 3, 16)),  # a calendar week
            (date(2025, 2, 24), date(2025, 3, 2)),
            (date(2025, 3, 1), date(2025, 3, 31)),  # a calendar month
            (date(2025, 2, 1), date(2025, 2, 28)),
            (date(2025, 1, 20), date(2025, 3, 12)),  # whole February, weeks and days around it
            (date(2025, 3, 6), date(2025, 3, 12)),  # a rolling week across a Monday
            (date(2025, 3, 13), date(2025, 3, 12)),  # empty
        ]
        for _ in range(12):  # rolling windows ending anywhere
            last = date(2025, 1, 25) + timedelta(days=rng.randrange(0, 50))
            periods.append((last - timedelta(days=rng.choice((0, 6, 29, 44))), last))
        await compare(tuple(periods))
        assert any(_reference(links, samples, "730", None, zone))
        # Unlinks, and an account that moves to another member: the all-time sums follow.
        for member in (3, 4, 5):
            await store.links.unlink(
                guild_id=GUILD, discord_user_id=member, source="steam", now=NOW
            )
        links[:] = [item for item in links if not (item[1] in (3, 4, 5) and item[2] == "steam")]
        moved = next(item for item in links if item[1] == 7 and item[2] == "steam")
        links[links.index(moved)] = (GUILD, 8, "steam", moved[3])
        await store.engine.write(lambda c: link(c, [(GUILD, 8, "steam", moved[3])]))
        await compare(
            (None, (date(2025, 3, 1), date(2025, 3, 31)), (date(2025, 2, 10), NOW.date()))
        )
    finally:
        await store.close()


def _within(at: datetime, span: DayRange | None, zone: ZoneInfo) -> bool:
    return span is None or span[0] <= at.astimezone(zone).date() <= span[1]


def _reference(
    links: list[tuple[int, int, str, str]],
    samples: list[tuple[int, str, str, str, datetime, int]],
    game: str,
    span: DayRange | None,
    zone: ZoneInfo,
) -> list[tuple[int, int]]:
    """The board computed the plain way: every link, every source it can have playtime in."""
    wanted = {
        "steam": [("steam", 0), ("battlemetrics", GUILD)],
        "minecraft": [("minecraft", GUILD)],
    }

    def within(at: datetime) -> bool:
        return _within(at, span, zone)

    per: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for guild, member, link_source, external in links:
        if guild != GUILD:
            continue
        for source, scope in wanted[link_source]:
            per[member][source] += sum(
                delta
                for s_scope, s_source, player, s_game, at, delta in samples
                if (s_scope, s_source, player, s_game) == (scope, source, external, game)
                and within(at)
            )
    board = [(m, max(sources.values())) for m, sources in per.items() if max(sources.values()) > 0]
    return sorted(board, key=lambda item: (-item[1], item[0]))


def test_migration_0015_sums_each_members_linked_accounts(tmp_path: Path) -> None:
    conn = _schema_at(tmp_path / "q.sqlite3", 14)
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    conn.executemany(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, 'x', 'x')",
        [(GUILD, 10, "steam", "s1"), (GUILD, 10, "steam", "s2"), (GUILD, 11, "minecraft", "u1"),
         (OTHER, 20, "steam", "s1")],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, 'x', 'x')",
        [
            (0, "steam", "s1", "730", 100),
            (0, "steam", "s2", "730", 50),  # the member's second Steam account adds up
            (GUILD, "battlemetrics", "s1", "730", 120),
            (OTHER, "battlemetrics", "s1", "730", 999),  # the other guild's server
            (GUILD, "minecraft", "u1", "minecraft", 70),
            (GUILD, "minecraft", "u2", "minecraft", 80),  # nobody links it
            (0, "steam", "s1", "570", None),  # no value
        ],
    )
    conn.execute("INSERT INTO meta (key, value) VALUES ('summary_timezone', 'UTC')")
    apply_migrations(conn)
    rows = conn.execute(
        "SELECT guild_id, game_id, discord_user_id, source, seconds FROM member_playtime ORDER BY 1, 2, 3, 4"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (GUILD, "730", 10, "battlemetrics", 120),
        (GUILD, "730", 10, "steam", 150),
        (GUILD, "minecraft", 11, "minecraft", 70),
        (OTHER, "730", 20, "battlemetrics", 999),
        (OTHER, "730", 20, "steam", 100),
    ]
    # The periods are filled by the next start, which rebuilds the days too.
    assert conn.execute("SELECT value FROM meta WHERE key = 'summary_timezone'").fetchone() is None
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert "playtime_samples_player" not in names
    conn.close()


async def test_autocomplete_list_is_read_again_only_when_games_change(tmp_path: Path) -> None:
    from bot.services.leaderboards import PlaytimeStats

    store = await open_store(tmp_path / "q.sqlite3")
    stats = PlaytimeStats(store, ZoneInfo("UTC"))
    reads = 0
    real = store.stats.guild_games

    async def counted(guild_id: int) -> list[tuple[str, str | None]]:
        nonlocal reads
        reads += 1
        return await real(guild_id)

    store.stats.guild_games = counted  # type: ignore[method-assign]
    try:

        def play(game: str) -> Callable[[sqlite3.Connection], object]:
            return lambda c: add_playtime(c, scope=GUILD, source="minecraft", player_id="u",
                                          game_id=game, delta=60, at=NOW, now_text="x")  # fmt: skip

        await store.engine.write(play("minecraft"))
        assert await stats.games(GUILD, "") == [("minecraft", "Minecraft")]
        version = await store.stats.games_version()
        await store.engine.write(play("minecraft"))  # more playtime: the list is the same
        assert await store.stats.games_version() == version
        assert await stats.games(GUILD, "mine") == [("minecraft", "Minecraft")]
        assert reads == 1
        await store.engine.write(play("730"))
        assert await stats.games(GUILD, "") == [
            ("minecraft", "Minecraft"),
            ("730", "Steam app 730"),
        ]
        await store.engine.write(lambda c: remember_game_name(c, "730", "Counter-Strike 2", "x"))
        await store.engine.write(lambda c: remember_game_name(c, "730", "Counter-Strike 2", "y"))
        assert await stats.games(GUILD, "") == [
            ("730", "Counter-Strike 2"),
            ("minecraft", "Minecraft"),
        ]
        assert reads == 3  # a new game and a new name; the same name again changed nothing
        # Names that start with what was typed come first, then names that contain it.
        assert [g for g, _ in await stats.games(GUILD, "c")] == ["730", "minecraft"]
        assert [g for g, _ in await stats.games(GUILD, "strike")] == ["730"]
    finally:
        await store.close()


def test_outbox_counts_follow_every_status_change(tmp_path: Path) -> None:
    conn = _schema_at(tmp_path / "q.sqlite3", 15)
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    conn.execute(
        "INSERT INTO activity_events (guild_id, type, source, title, payload, occurred_at,"
        " created_at) VALUES (1, 't', 's', 'x', '{}', 'x', 'x')"
    )
    insert = (
        "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at, updated_at)"
        " VALUES (1, 1, 5, ?, 'x', 'x')"
    )
    conn.executemany(insert, [("pending",), ("pending",), ("sent",)])
    apply_migrations(conn)  # 0016 counts what is there

    def counted() -> dict[str, int]:
        rows = conn.execute("SELECT name, rows FROM row_counts WHERE name LIKE 'feed_outbox:%'")
        return {name.split(":")[1]: n for name, n in rows.fetchall() if n}

    def real() -> dict[str, int]:
        rows = conn.execute("SELECT status, count(*) FROM feed_outbox GROUP BY status")
        return dict(rows.fetchall())

    assert counted() == real() == {"pending": 2, "sent": 1}
    conn.executemany(insert, [("pending",)] * 3)
    conn.execute("UPDATE feed_outbox SET status = 'failed' WHERE id = 1")
    conn.execute("UPDATE feed_outbox SET status = 'superseded' WHERE id = 4")
    conn.execute("UPDATE feed_outbox SET updated_at = 'y'")  # no status change
    conn.execute("UPDATE feed_outbox SET status = 'expired' WHERE status = 'pending'")
    conn.execute("DELETE FROM feed_outbox WHERE id = 3")
    assert counted() == real()
    conn.close()
