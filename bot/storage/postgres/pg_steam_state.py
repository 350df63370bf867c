"""The Steam sync's state on PostgreSQL: accounts and their schedule, sessions seen in the
summaries, library totals, achievements, the game cache and the daily call budget. Twins of
bot/storage/steam_state.py (its docstring tells how observations reach the feed): the same
names and parameters, with an ``asyncpg.Connection`` and typed values (datetime moments, date
days) instead of ISO text; the interface keeps SQLite's types (ISO text where it has them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bot.clock import to_iso
from bot.storage.events import compact_json, dedupe_hash
from bot.storage.interface import Growth, Observer
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_events import ingest
from bot.storage.postgres.pg_playtime import (
    LINK_COLLECTS,
    LINK_COUNTS,
    game_name,
    record_playtime,
    remember_game_name,
)
from bot.storage.postgres.pg_rewards import check_linking_guilds
from bot.storage.records import GLOBAL_SCOPE, Delivery, PlaytimeChange
from bot.storage.steam_state import unlock_time
from connectors.base import Effect, PlaytimeGrew
from connectors.steam.client import OwnedGame, Unlock

__all__ = [
    "PgSteam",
    "announce_growth",
    "apply_library",
    "enrol",
    "mark_private",
    "mark_retry",
    "seen",
    "store_unlocks",
    "unlock_time",
]


async def _linking_guilds(conn: asyncpg.Connection, steam_id: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT l.guild_id FROM account_links l WHERE l.source = 'steam'"
        " AND l.external_id = $1 AND " + LINK_COUNTS + " AND " + LINK_COLLECTS + " ORDER BY l.id",
        steam_id,
    )
    return [r[0] for r in rows]


async def _observe(
    conn: asyncpg.Connection,
    observer: Observer,
    raw: dict[str, Any],
    now: datetime,
    effects: list[Effect] | None = None,
) -> int:
    """Hand one observation to the ingest path for every guild that links the account;
    returns the activity events stored."""
    connector = observer.connector
    identity = dedupe_hash(connector, raw)
    payload = compact_json(raw)
    stored = 0
    for guild_id in await _linking_guilds(conn, raw["steam_id"]):
        delivery = Delivery(guild_id, connector.key, None, identity, payload, to_iso(now))
        result = await ingest(conn, delivery, connector, raw, effects or [], observer.policy)
        stored += len(result.event_ids)
    return stored


async def _opted_out_everywhere(conn: asyncpg.Connection, steam_id: str) -> bool:
    """Whether the account is linked, and only by members who turned collecting off (what
    Questlog does not sync, a lookup does not keep either)."""
    collects = await conn.fetchval(
        "SELECT bool_or(" + LINK_COLLECTS + ") FROM account_links l"
        " WHERE l.source = 'steam' AND l.external_id = $1",
        steam_id,
    )
    return collects is not None and not collects


async def _enrolled(conn: asyncpg.Connection, steam_id: str) -> bool:
    found = await conn.fetchval("SELECT 1 FROM steam_accounts WHERE steam_id = $1", steam_id)
    return found is not None


async def _name_or_app(conn: asyncpg.Connection, app_id: int) -> str:
    return await game_name(conn, str(app_id)) or f"app {app_id}"


async def enrol(
    conn: asyncpg.Connection, now: datetime, first_read: Callable[[str], datetime]
) -> tuple[int, int]:
    """Add accounts linked since the last pass (each first read at ``first_read(steam_id)``),
    drop those no guild links any more. Returns (linked accounts, accounts in a game)."""
    linked = {
        r[0]
        for r in await conn.fetch(
            "SELECT DISTINCT l.external_id FROM account_links l WHERE l.source = 'steam'"
            " AND " + LINK_COLLECTS  # a member's /privacy off stops the sync of their accounts
        )
    }
    known = {r[0] for r in await conn.fetch("SELECT steam_id FROM steam_accounts")}
    new = sorted(linked - known)
    if new:
        await conn.execute(
            "INSERT INTO steam_accounts (steam_id, next_sync_at, updated_at)"
            " SELECT steam_id, next_sync_at, $3 FROM unnest($1::text[], $2::timestamptz[])"
            " AS n (steam_id, next_sync_at)",
            new, [first_read(steam_id) for steam_id in new], now,
        )  # fmt: skip
    gone = sorted(known - linked)
    if gone:
        await conn.execute("DELETE FROM steam_accounts WHERE steam_id = ANY($1::text[])", gone)
    in_game = await conn.fetchval(
        "SELECT count(*) FROM steam_accounts WHERE in_game_app IS NOT NULL"
    )
    return len(linked), int(in_game)


async def seen(
    conn: asyncpg.Connection,
    batch: list[str],
    games: dict[str, int | None],
    now: datetime,
    active_interval: int,
    observer: Observer,
    logoffs: dict[str, int | None] | None = None,
) -> None:
    """Store what the summaries showed and pull in the library reads it calls for: the batch's
    accounts read in one statement and written in one, sessions opened and closed between."""
    soon = now + timedelta(seconds=active_interval)
    logoffs = logoffs or {}
    rows = await conn.fetch(
        "SELECT steam_id, in_game_app, next_sync_at, last_logoff, failures, in_game_since"
        " FROM steam_accounts WHERE steam_id = ANY($1::text[])",
        list(batch),
    )
    accounts = {r["steam_id"]: dict(r) for r in rows}
    for steam_id in batch:
        account = accounts.get(steam_id)
        if account is None:
            continue
        was, next_at = account["in_game_app"], account["next_sync_at"]
        known_logoff, failures = account["last_logoff"], account["failures"]
        game = games.get(steam_id)
        logoff = logoffs.get(steam_id)
        if failures:
            pass  # backing off after a 429 or an outage: the summaries do not pull it in
        elif game is not None:
            next_at = min(next_at, soon)  # playing: read again within an active interval
        elif was is not None:
            next_at = now  # just left the game: read now, for the session's last minutes
        elif logoff is not None and known_logoff is not None and logoff > known_logoff:
            # Online and gone again without a visible game (hidden game details): maybe played.
            next_at = min(next_at, now)
        if logoff is not None and logoff != known_logoff:
            account["last_logoff"] = logoff
        if was is not None and was != game:
            await _end_session(conn, steam_id, was, now, observer)
        if game is not None and was != game:
            await _start_session(conn, steam_id, game, now, observer)
        account["in_game_since"] = (
            None if game is None else account["in_game_since"] if was == game else now
        )
        account["in_game_app"], account["next_sync_at"] = game, next_at
        account["written"] = True
    written = [a for a in accounts.values() if a.get("written")]
    if not written:
        return
    await conn.execute(
        "UPDATE steam_accounts a SET in_game_app = n.game, last_summary_at = $6,"
        " next_sync_at = n.next_at, in_game_since = n.since, last_logoff = n.logoff,"
        " updated_at = $6 FROM unnest($1::text[], $2::bigint[], $3::timestamptz[],"
        " $4::timestamptz[], $5::bigint[]) AS n (steam_id, game, next_at, since, logoff)"
        " WHERE a.steam_id = n.steam_id",
        [a["steam_id"] for a in written],
        [a["in_game_app"] for a in written],
        [a["next_sync_at"] for a in written],
        [a["in_game_since"] for a in written],
        [a["last_logoff"] for a in written],
        now,
    )


async def _start_session(
    conn: asyncpg.Connection, steam_id: str, app_id: int, now: datetime, observer: Observer
) -> None:
    """Steam shows the player in a game: a session opens (public data: global scope)."""
    now_text = to_iso(now)
    await conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES ($1, 'steam', $2, '', $3, $4)",
        GLOBAL_SCOPE, steam_id, str(app_id), now,
    )  # fmt: skip
    raw = {
        "type": "session.started", "steam_id": steam_id, "app_id": app_id,
        "game_name": await _name_or_app(conn, app_id), "started": now_text, "at": now_text,
    }  # fmt: skip
    await _observe(conn, observer, raw, now)


async def _end_session(
    conn: asyncpg.Connection, steam_id: str, app_id: int, now: datetime, observer: Observer
) -> None:
    """Steam no longer shows the player in that game: the open session closes."""
    row = await conn.fetchrow(
        "SELECT id, started_at FROM sessions WHERE guild_id = $1 AND source = 'steam'"
        " AND player_id = $2 AND server_id = '' AND ended_at IS NULL AND closed_reason IS NULL"
        " ORDER BY started_at DESC LIMIT 1",
        GLOBAL_SCOPE,
        steam_id,
    )
    if row is None:
        return
    seconds = max(0, int((now - row["started_at"]).total_seconds()))
    await conn.execute(
        "UPDATE sessions SET ended_at = $1, duration_seconds = $2, closed_reason = 'ended'"
        " WHERE id = $3",
        now, seconds, row["id"],
    )  # fmt: skip
    raw = {
        "type": "session.ended", "steam_id": steam_id, "app_id": app_id,
        "game_name": await _name_or_app(conn, app_id), "seconds": seconds,
        "started": to_iso(row["started_at"]), "at": to_iso(now),
    }  # fmt: skip
    await _observe(conn, observer, raw, now)


async def _set_link_status(
    conn: asyncpg.Connection, steam_id: str, status: str | None, now: datetime
) -> None:
    await conn.execute(
        "UPDATE account_links SET status = $1, updated_at = $2 WHERE source = 'steam'"
        " AND external_id = $3 AND status IS DISTINCT FROM $1",
        status, now, steam_id,
    )  # fmt: skip


async def mark_private(
    conn: asyncpg.Connection, steam_id: str, now: datetime, next_at: datetime
) -> None:
    await conn.execute(
        "UPDATE steam_accounts SET state = 'private', private_since = coalesce(private_since, $1),"
        " last_synced_at = $1, next_sync_at = $2, failures = 0, last_error = NULL,"
        " updated_at = $1 WHERE steam_id = $3",
        now, next_at, steam_id,
    )  # fmt: skip
    await _set_link_status(conn, steam_id, "private_profile", now)


async def mark_retry(
    conn: asyncpg.Connection,
    steam_id: str,
    now: datetime,
    state: str,
    error: str,
    delay: Callable[[int], float],
) -> None:
    """A read failed (429, outage): the account waits ``delay(failures in a row)`` seconds."""
    found = await conn.fetchval("SELECT failures FROM steam_accounts WHERE steam_id = $1", steam_id)
    failures = (found or 0) + 1
    await conn.execute(
        "UPDATE steam_accounts SET state = $1, failures = $2, last_error = $3, next_sync_at = $4,"
        " updated_at = $5 WHERE steam_id = $6",
        state, failures, error[:300], now + timedelta(seconds=delay(failures)), now, steam_id,
    )  # fmt: skip


async def apply_library(
    conn: asyncpg.Connection,
    steam_id: str,
    games: list[OwnedGame],
    now: datetime,
    *,
    soon: datetime,
    later: datetime,
    growth: Growth,
) -> int:
    """Store the library's totals; after the baseline, announce what grew. The next read is
    ``soon`` while the player is in a game, else ``later``. Returns the events stored."""
    account = await conn.fetchrow(
        "SELECT baseline_at, in_game_app FROM steam_accounts WHERE steam_id = $1", steam_id
    )
    if account is None:
        return 0  # unlinked (or forgotten) while the library was being read: nothing is kept
    baseline = account["baseline_at"] is None
    stored = 0
    for game in games:
        if game.name:
            await remember_game_name(conn, str(game.app_id), game.name, now)
        change = await record_playtime(
            conn,
            scope=GLOBAL_SCOPE,
            source="steam",
            player_id=steam_id,
            game_id=str(game.app_id),
            seconds=game.playtime_seconds,
            source_time=now,
            now=now,
            sample=not baseline,
        )
        if not baseline and change.applied:
            stored += await announce_growth(
                conn, steam_id, game.app_id, game.name, change, now, growth
            )
    if baseline:  # growth is checked through the ingest path; a baseline is checked here
        await check_linking_guilds(conn, "steam", steam_id, now)
    next_read = soon if account["in_game_app"] is not None else later
    await conn.execute(
        "INSERT INTO steam_accounts (steam_id, state, baseline_at, last_synced_at, next_sync_at,"
        " updated_at) VALUES ($1, 'ok', $2, $2, $3, $2) ON CONFLICT (steam_id) DO UPDATE SET"
        " state = 'ok', baseline_at = coalesce(steam_accounts.baseline_at, excluded.baseline_at),"
        " last_synced_at = excluded.last_synced_at, next_sync_at = excluded.next_sync_at,"
        " private_since = NULL, failures = 0, last_error = NULL, updated_at = excluded.updated_at",
        steam_id, now, next_read,
    )  # fmt: skip
    await _set_link_status(conn, steam_id, None, now)
    return stored


async def announce_growth(
    conn: asyncpg.Connection,
    steam_id: str,
    app_id: int,
    name: str | None,
    change: PlaytimeChange,
    now: datetime,
    growth: Growth,
) -> int:
    """A stored Steam total grew (a library read, or a get-playtime lookup, whichever saw it
    first): the day's played line (since the community's midnight) and any milestone for
    every guild that links the account, and a pending achievement check. Nothing before the
    account's baseline. Returns the number of activity events stored."""
    old, total = change.old, change.new
    if old is None or total is None or total <= old:
        return 0
    account = await conn.fetchrow(
        "SELECT baseline_at FROM steam_accounts WHERE steam_id = $1", steam_id
    )
    if account is None or account["baseline_at"] is None:
        return 0  # the sync's first read of this account will be its silent baseline
    await conn.execute(
        "INSERT INTO steam_pending_checks (steam_id, app_id, since) VALUES ($1, $2, $3)"
        " ON CONFLICT (steam_id, app_id) DO NOTHING",
        steam_id, app_id, now,
    )  # fmt: skip
    day = growth.midnight.date()
    # Today's growth so far, from the per-day summary (its days are the community's, as the
    # sync's midnight is: the core sets both from [general] timezone).
    today = await conn.fetchval(
        "SELECT seconds FROM playtime_daily WHERE scope_guild_id = $1 AND game_id = $2"
        " AND day = $3 AND source = 'steam' AND player_id = $4",
        GLOBAL_SCOPE, str(app_id), day, steam_id,
    )  # fmt: skip
    raw = {
        "type": "played", "steam_id": steam_id, "app_id": app_id,
        "game_name": name if name is not None else await game_name(conn, str(app_id)),
        "today": today or 0, "total": total, "day": day.isoformat(), "at": to_iso(now),
    }  # fmt: skip
    grew = PlaytimeGrew(steam_id, str(app_id), old, total, now)
    return await _observe(conn, growth.observer, raw, now, [grew])


async def _checked(conn: asyncpg.Connection, steam_id: str, app_id: int) -> None:
    await conn.execute(
        "DELETE FROM steam_pending_checks WHERE steam_id = $1 AND app_id = $2", steam_id, app_id
    )


def _unlocked_at(unlock: Unlock) -> datetime | None:
    """Steam's unlocktime as a moment (unlock_time's rules: missing, zero or absurd: None)."""
    if unlock_time(unlock) is None:
        return None
    assert unlock.unlock_time is not None
    return datetime.fromtimestamp(unlock.unlock_time, UTC)


async def store_unlocks(
    conn: asyncpg.Connection,
    steam_id: str,
    game: OwnedGame,
    *,
    silent: list[Unlock],
    fresh: list[Unlock],
    schema: dict[str, Any],
    percentages: dict[str, Any],
    now: datetime,
    observer: Observer,
    baseline: bool,
) -> int:
    """One completed achievement check of a game. On the game's first check (``baseline``) its
    earlier unlocks (``silent``) are stored without a word; new ones (``fresh``) are stored and
    announced once to every guild that links the account; the pending check is cleared. All in
    one transaction, so a failure loses nothing and nothing is announced twice."""
    if not await _enrolled(conn, steam_id):
        return 0  # unlinked (or forgotten) while the achievements were being read
    if baseline:
        if silent:
            await conn.execute(
                "INSERT INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
                " noticed_at) SELECT $1, $2, n.api_name, n.unlocked_at, $5"
                " FROM unnest($3::text[], $4::timestamptz[]) WITH ORDINALITY"
                " AS n (api_name, unlocked_at, nr) ORDER BY n.nr"
                " ON CONFLICT (steam_id, app_id, api_name) DO NOTHING",
                steam_id, game.app_id, [u.api_name for u in silent],
                [_unlocked_at(u) for u in silent], now,
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO steam_achievement_games (steam_id, app_id, baseline_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (steam_id, app_id) DO NOTHING",
            steam_id, game.app_id, now,
        )  # fmt: skip
    stored = 0
    for unlock in fresh:
        unlocked_at = _unlocked_at(unlock)
        inserted = await conn.fetchval(
            "INSERT INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
            " noticed_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (steam_id, app_id, api_name) DO NOTHING RETURNING 1",
            steam_id, game.app_id, unlock.api_name, unlocked_at, now,
        )  # fmt: skip
        if inserted is None:
            continue
        raw = {
            "type": "achievement", "steam_id": steam_id, "app_id": game.app_id,
            "game_name": game.name or await game_name(conn, str(game.app_id)),
            "api_name": unlock.api_name, "info": schema.get(unlock.api_name) or {},
            "percent": percentages.get(unlock.api_name),
            "at": to_iso(unlocked_at) if unlocked_at else to_iso(now),
        }  # fmt: skip
        stored += await _observe(conn, observer, raw, now)
    await _checked(conn, steam_id, game.app_id)
    return stored


def _day(text: str) -> date:
    """A budget's day, given as 'YYYY-MM-DD' text (the interface's form)."""
    return date.fromisoformat(text)


class PgSteam:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def enrol(self, now: datetime, first_read: Callable[[str], datetime]) -> tuple[int, int]:
        return await self._db.write(lambda c: enrol(c, now, first_read))

    async def accounts(self) -> list[str]:
        """Every SteamID the sync knows (linked by some guild), in order."""
        rows = await self._db.read(
            lambda c: c.fetch('SELECT steam_id FROM steam_accounts ORDER BY steam_id COLLATE "C"')
        )
        return [r[0] for r in rows]

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Accounts whose library read is due, the longest waiting first."""
        rows = await self._db.read(
            lambda c: c.fetch(
                "SELECT steam_id FROM steam_accounts WHERE next_sync_at <= $1"
                ' ORDER BY next_sync_at, steam_id COLLATE "C" LIMIT $2',
                now,
                None if limit < 0 else limit,
            )
        )
        return [r[0] for r in rows]

    async def seen(
        self,
        batch: list[str],
        games: dict[str, int | None],
        now: datetime,
        active_interval: int,
        observer: Observer,
        logoffs: dict[str, int | None],
    ) -> None:
        await self._db.write(
            lambda c: seen(c, batch, games, now, active_interval, observer, logoffs)
        )

    async def mark_private(self, steam_id: str, now: datetime, next_at: datetime) -> None:
        await self._db.write(lambda c: mark_private(c, steam_id, now, next_at))

    async def mark_retry(
        self, steam_id: str, now: datetime, state: str, error: str, delay: Callable[[int], float]
    ) -> None:
        await self._db.write(lambda c: mark_retry(c, steam_id, now, state, error, delay))

    async def apply_library(
        self,
        steam_id: str,
        games: list[OwnedGame],
        now: datetime,
        *,
        soon: datetime,
        later: datetime,
        growth: Growth,
    ) -> int:
        return await self._db.write(
            lambda c: apply_library(c, steam_id, games, now, soon=soon, later=later, growth=growth)
        )

    async def record_lookup(
        self,
        steam_id: str,
        app_id: int,
        *,
        seconds: int | None,
        status: str,
        name: str | None,
        now: datetime,
        growth: Growth | None = None,
    ) -> int:
        """A get-playtime lookup's answer: the total (or a known "no value") and the game's
        name; a total that grew is announced like the sync's own reads. Returns the events."""

        async def op(conn: asyncpg.Connection) -> int:
            if await _opted_out_everywhere(conn, steam_id):
                return 0  # the server gets its answer; nothing about the player is kept
            change = await record_playtime(
                conn,
                scope=GLOBAL_SCOPE,
                source="steam",
                player_id=steam_id,
                game_id=str(app_id),
                seconds=seconds,
                source_time=now,
                now=now,
                status=status,
            )
            if name:
                await remember_game_name(conn, str(app_id), name, now)
            # A lookup may see a Steam total grow before the sync does: the sync's own news
            # (the day's played line, milestones, an achievement check) must not be lost.
            if growth is None or not change.applied:
                return 0
            return await announce_growth(conn, steam_id, app_id, name, change, now, growth)

        return await self._db.write(op)

    async def pending_checks(self, steam_id: str) -> list[int]:
        """Games whose playtime grew and whose achievements were not checked since."""
        rows = await self._db.read(
            lambda c: c.fetch(
                "SELECT app_id FROM steam_pending_checks WHERE steam_id = $1"
                " ORDER BY since, app_id",
                steam_id,
            )
        )
        return [r[0] for r in rows]

    async def checked(self, steam_id: str, app_id: int) -> None:
        await self._db.write(lambda c: _checked(c, steam_id, app_id))

    async def unlocks(self, steam_id: str, app_id: int) -> tuple[set[str], str | None, str | None]:
        """(stored unlocks, the game's baseline time, the account's baseline time), times as
        ISO text (bot.clock.to_iso), as on SQLite."""

        async def fn(conn: asyncpg.Connection) -> tuple[set[str], str | None, str | None]:
            names = {
                r[0]
                for r in await conn.fetch(
                    "SELECT api_name FROM steam_achievements WHERE steam_id = $1 AND app_id = $2",
                    steam_id,
                    app_id,
                )
            }
            game = await conn.fetchval(
                "SELECT baseline_at FROM steam_achievement_games WHERE steam_id = $1"
                " AND app_id = $2",
                steam_id,
                app_id,
            )
            account = await conn.fetchval(
                "SELECT baseline_at FROM steam_accounts WHERE steam_id = $1", steam_id
            )
            return (
                names,
                to_iso(game) if game is not None else None,
                to_iso(account) if account is not None else None,
            )

        return await self._db.read(fn)

    async def store_unlocks(
        self,
        steam_id: str,
        game: OwnedGame,
        *,
        silent: list[Unlock],
        fresh: list[Unlock],
        schema: dict[str, Any],
        percentages: dict[str, Any],
        now: datetime,
        observer: Observer,
        baseline: bool,
    ) -> int:
        return await self._db.write(
            lambda c: store_unlocks(
                c, steam_id, game, silent=silent, fresh=fresh, schema=schema,
                percentages=percentages, now=now, observer=observer, baseline=baseline,
            )
        )  # fmt: skip

    async def cached(
        self, app_id: int, kind: str, language: str
    ) -> tuple[dict[str, Any], datetime] | None:
        """A cached schema or percentages answer and when it was fetched."""
        row = await self._db.read(
            lambda c: c.fetchrow(
                "SELECT body, fetched_at FROM steam_game_cache WHERE app_id = $1 AND kind = $2"
                " AND language = $3",
                app_id,
                kind,
                language,
            )
        )
        return (dict(json.loads(row["body"])), row["fetched_at"]) if row else None

    async def cache(
        self, app_id: int, kind: str, language: str, body: dict[str, Any], now: datetime
    ) -> None:
        text = json.dumps(body, ensure_ascii=False)

        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "INSERT INTO steam_game_cache (app_id, kind, language, body, fetched_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, kind, language) DO UPDATE SET"
                " body = excluded.body, fetched_at = excluded.fetched_at",
                app_id, kind, language, text, now,
            )  # fmt: skip

        await self._db.write(op)

    async def counts(self, now: datetime) -> dict[str, int]:
        """accounts, private, due (a read is due), in_game, linked (distinct linked SteamIDs)."""

        async def fn(conn: asyncpg.Connection) -> dict[str, int]:
            row = await conn.fetchrow(
                "SELECT count(*) AS accounts, count(*) FILTER (WHERE state = 'private') AS private,"
                " count(*) FILTER (WHERE next_sync_at <= $1) AS due,"
                " count(*) FILTER (WHERE in_game_app IS NOT NULL) AS in_game,"
                " (SELECT count(DISTINCT external_id) FROM account_links"
                " WHERE source = 'steam') AS linked FROM steam_accounts",
                now,
            )
            return {
                key: int(row[key]) for key in ("accounts", "private", "due", "in_game", "linked")
            }

        return await self._db.read(fn)

    async def reserve_call(self, day: str, purpose: str, limit: int) -> bool:
        """Count one Steam Web API call on ``day`` for ``purpose`` ("sync" or "lookup");
        False when that purpose's ``limit`` for the day is spent."""

        async def op(conn: asyncpg.Connection) -> bool:
            calls = await conn.fetchval(
                "INSERT INTO steam_budget (day, purpose, calls) VALUES ($1, $2, 1)"
                " ON CONFLICT (day, purpose) DO UPDATE SET calls = steam_budget.calls + 1"
                " WHERE steam_budget.calls < $3 RETURNING calls",
                _day(day), purpose, limit,
            )  # fmt: skip
            return calls is not None and calls <= limit

        return await self._db.write(op)

    async def calls_on(self, day: str) -> dict[str, int]:
        """The calls made on ``day`` per purpose (a purpose without calls is absent)."""
        rows = await self._db.read(
            lambda c: c.fetch(
                'SELECT purpose, calls FROM steam_budget WHERE day = $1 ORDER BY purpose COLLATE "C"',
                _day(day),
            )
        )
        return {str(purpose): int(calls) for purpose, calls in rows}

    async def set_key_state(
        self, refused_since: datetime | None, next_probe: datetime | None, detail: str | None
    ) -> None:
        """The sync's view of the Web API key, for ``questlog status`` in another process:
        refused since when and probed again when, or (all None) accepted (ISO text in meta, as
        on SQLite)."""
        values = {
            "steam_key_refused_since": to_iso(refused_since) if refused_since else None,
            "steam_key_next_probe": to_iso(next_probe) if next_probe else None,
            "steam_key_problem": detail,
        }

        async def op(conn: asyncpg.Connection) -> None:
            kept = {key: value for key, value in values.items() if value is not None}
            gone = [key for key, value in values.items() if value is None]
            if gone:
                await conn.execute("DELETE FROM meta WHERE key = ANY($1::text[])", gone)
            if kept:
                await conn.execute(
                    "INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[])"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    list(kept), list(kept.values()),
                )  # fmt: skip

        await self._db.write(op)

    async def key_state(self) -> dict[str, str]:
        """What ``set_key_state`` last stored (empty: the key was not refused)."""
        rows = await self._db.read(
            lambda c: c.fetch(
                "SELECT key, value FROM meta WHERE key IN"
                " ('steam_key_refused_since', 'steam_key_next_probe', 'steam_key_problem')"
            )
        )
        return {str(k): str(v) for k, v in rows}

    async def reserve_lookups(self, day: str, endpoint_id: int, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` of the endpoint's ``limit`` lookups on ``day``; how many."""

        async def op(conn: asyncpg.Connection) -> int:
            used = await conn.fetchval(
                "SELECT calls FROM steam_lookups WHERE day = $1 AND endpoint_id = $2",
                _day(day), endpoint_id,
            )  # fmt: skip
            granted = max(0, min(wanted, limit - int(used or 0)))
            if granted:
                await conn.execute(
                    "INSERT INTO steam_lookups (day, endpoint_id, calls) VALUES ($1, $2, $3)"
                    " ON CONFLICT (day, endpoint_id) DO UPDATE"
                    " SET calls = steam_lookups.calls + excluded.calls",
                    _day(day), endpoint_id, granted,
                )  # fmt: skip
            return granted

        return await self._db.write(op)
