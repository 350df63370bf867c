"""The Steam sync's state in SQLite: accounts and their schedule, sessions seen in the
summaries, library totals, achievements, the game cache and the daily call budget.

What the state changes mean for the feed is observed, not written here: each observation (a
total that grew, an unlock, a session start or end) goes through the one ingest path
(bot/storage/events.py) for every guild that links the account, in the same transaction as the
state it follows from, so the Steam connector's ``dedupe_key`` makes each one announced once,
also across restarts, and its ``normalize`` says how it reads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.events import compact_json, dedupe_hash, ingest
from bot.storage.interface import Growth, Observer
from bot.storage.playtime import (
    LINK_COLLECTS,
    LINK_COUNTS,
    game_name,
    record_playtime,
    remember_game_name,
)
from bot.storage.records import GLOBAL_SCOPE, Delivery, PlaytimeChange
from bot.storage.rewards import check_linking_guilds
from connectors.base import Effect, PlaytimeGrew
from connectors.steam.client import OwnedGame, Unlock


def _linking_guilds(conn: sqlite3.Connection, steam_id: str) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT l.guild_id FROM account_links l WHERE l.source = 'steam'"
            " AND l.external_id = ? AND " + LINK_COUNTS + " AND " + LINK_COLLECTS,
            (steam_id,),
        ).fetchall()
    ]


def _observe(
    conn: sqlite3.Connection,
    observer: Observer,
    raw: dict[str, Any],
    now_text: str,
    effects: list[Effect] | None = None,
) -> int:
    """Hand one observation to the ingest path for every guild that links the account;
    returns the activity events stored."""
    connector = observer.connector
    identity = dedupe_hash(connector, raw)
    payload = compact_json(raw)
    stored = 0
    for guild_id in _linking_guilds(conn, raw["steam_id"]):
        delivery = Delivery(guild_id, connector.key, None, identity, payload, now_text)
        result = ingest(conn, delivery, connector, raw, effects or [], observer.policy)
        stored += len(result.event_ids)
    return stored


def _opted_out_everywhere(conn: sqlite3.Connection, steam_id: str) -> bool:
    """Whether the account is linked, and only by members who turned collecting off (what
    Questlog does not sync, a lookup does not keep either)."""
    links = conn.execute(
        "SELECT max(" + LINK_COLLECTS + ") FROM account_links l"
        " WHERE l.source = 'steam' AND l.external_id = ?",
        (steam_id,),
    ).fetchone()
    return links[0] is not None and not links[0]


def _enrolled(conn: sqlite3.Connection, steam_id: str) -> bool:
    found = conn.execute("SELECT 1 FROM steam_accounts WHERE steam_id = ?", (steam_id,))
    return found.fetchone() is not None


def _name_or_app(conn: sqlite3.Connection, app_id: int) -> str:
    return game_name(conn, str(app_id)) or f"app {app_id}"


def enrol(
    conn: sqlite3.Connection, now: datetime, first_read: Callable[[str], datetime]
) -> tuple[int, int]:
    """Add accounts linked since the last pass (each first read at ``first_read(steam_id)``),
    drop those no guild links any more. Returns (linked accounts, accounts in a game)."""
    now_text = to_iso(now)
    linked = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT l.external_id FROM account_links l WHERE l.source = 'steam'"
            " AND " + LINK_COLLECTS  # a member's /privacy off stops the sync of their accounts
        ).fetchall()
    }
    known = {r[0] for r in conn.execute("SELECT steam_id FROM steam_accounts").fetchall()}
    for steam_id in linked - known:
        conn.execute(
            "INSERT INTO steam_accounts (steam_id, next_sync_at, updated_at) VALUES (?, ?, ?)",
            (steam_id, to_iso(first_read(steam_id)), now_text),
        )
    for steam_id in known - linked:
        conn.execute("DELETE FROM steam_accounts WHERE steam_id = ?", (steam_id,))
    (in_game,) = conn.execute(
        "SELECT count(*) FROM steam_accounts WHERE in_game_app IS NOT NULL"
    ).fetchone()
    return len(linked), in_game


def seen(
    conn: sqlite3.Connection,
    batch: list[str],
    games: dict[str, int | None],
    now: datetime,
    active_interval: int,
    observer: Observer,
    logoffs: dict[str, int | None] | None = None,
) -> None:
    """Store what the summaries showed and pull in the library reads it calls for."""
    now_text = to_iso(now)
    soon = to_iso(now + timedelta(seconds=active_interval))
    logoffs = logoffs or {}
    for steam_id in batch:
        row = conn.execute(
            "SELECT in_game_app, next_sync_at, last_logoff, failures FROM steam_accounts"
            " WHERE steam_id = ?",
            (steam_id,),
        ).fetchone()
        if row is None:
            continue
        was, next_at, known_logoff, failures = row
        game = games.get(steam_id)
        logoff = logoffs.get(steam_id)
        if failures:
            pass  # backing off after a 429 or an outage: the summaries do not pull it in
        elif game is not None:
            next_at = min(next_at, soon)  # playing: read again within an active interval
        elif was is not None:
            next_at = now_text  # just left the game: read now, for the session's last minutes
        elif logoff is not None and known_logoff is not None and logoff > known_logoff:
            # Online and gone again without a visible game (hidden game details): maybe played.
            next_at = min(next_at, now_text)
        if logoff is not None and logoff != known_logoff:
            conn.execute(
                "UPDATE steam_accounts SET last_logoff = ? WHERE steam_id = ?", (logoff, steam_id)
            )
        if was is not None and was != game:
            _end_session(conn, steam_id, was, now, observer)
        if game is not None and was != game:
            _start_session(conn, steam_id, game, now, observer)
        conn.execute(
            "UPDATE steam_accounts SET in_game_app = ?, last_summary_at = ?, next_sync_at = ?,"
            " in_game_since = CASE WHEN ? IS NULL THEN NULL"
            " WHEN in_game_app IS ? THEN in_game_since ELSE ? END, updated_at = ?"
            " WHERE steam_id = ?",
            (game, now_text, next_at, game, game, now_text, now_text, steam_id),
        )


def _start_session(
    conn: sqlite3.Connection, steam_id: str, app_id: int, now: datetime, observer: Observer
) -> None:
    """Steam shows the player in a game: a session opens (public data: global scope)."""
    now_text = to_iso(now)
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES (?, 'steam', ?, '', ?, ?)",
        (GLOBAL_SCOPE, steam_id, str(app_id), now_text),
    )
    raw = {
        "type": "session.started", "steam_id": steam_id, "app_id": app_id,
        "game_name": _name_or_app(conn, app_id), "started": now_text, "at": now_text,
    }  # fmt: skip
    _observe(conn, observer, raw, now_text)


def _end_session(
    conn: sqlite3.Connection, steam_id: str, app_id: int, now: datetime, observer: Observer
) -> None:
    """Steam no longer shows the player in that game: the open session closes."""
    now_text = to_iso(now)
    row = conn.execute(
        "SELECT id, started_at FROM sessions WHERE guild_id = ? AND source = 'steam'"
        " AND player_id = ? AND server_id = '' AND ended_at IS NULL AND closed_reason IS NULL"
        " ORDER BY started_at DESC LIMIT 1",
        (GLOBAL_SCOPE, steam_id),
    ).fetchone()
    if row is None:
        return
    seconds = max(0, int((now - from_iso(row[1])).total_seconds()))
    conn.execute(
        "UPDATE sessions SET ended_at = ?, duration_seconds = ?, closed_reason = 'ended'"
        " WHERE id = ?",
        (now_text, seconds, row[0]),
    )
    raw = {
        "type": "session.ended", "steam_id": steam_id, "app_id": app_id,
        "game_name": _name_or_app(conn, app_id), "seconds": seconds, "started": row[1],
        "at": now_text,
    }  # fmt: skip
    _observe(conn, observer, raw, now_text)


def _set_link_status(conn: sqlite3.Connection, steam_id: str, status: str | None, now: str) -> None:
    conn.execute(
        "UPDATE account_links SET status = ?, updated_at = ? WHERE source = 'steam'"
        " AND external_id = ? AND status IS NOT ?",
        (status, now, steam_id, status),
    )


def mark_private(conn: sqlite3.Connection, steam_id: str, now: datetime, next_at: datetime) -> None:
    now_text = to_iso(now)
    conn.execute(
        "UPDATE steam_accounts SET state = 'private', private_since = coalesce(private_since, ?),"
        " last_synced_at = ?, next_sync_at = ?, failures = 0, last_error = NULL, updated_at = ?"
        " WHERE steam_id = ?",
        (now_text, now_text, to_iso(next_at), now_text, steam_id),
    )
    _set_link_status(conn, steam_id, "private_profile", now_text)


def mark_retry(
    conn: sqlite3.Connection,
    steam_id: str,
    now: datetime,
    state: str,
    error: str,
    delay: Callable[[int], float],
) -> None:
    """A read failed (429, outage): the account waits ``delay(failures in a row)`` seconds."""
    row = conn.execute(
        "SELECT failures FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    failures = (row[0] if row else 0) + 1
    now_text = to_iso(now)
    conn.execute(
        "UPDATE steam_accounts SET state = ?, failures = ?, last_error = ?, next_sync_at = ?,"
        " updated_at = ? WHERE steam_id = ?",
        (state, failures, error[:300], to_iso(now + timedelta(seconds=delay(failures))),
         now_text, steam_id),
    )  # fmt: skip


def apply_library(
    conn: sqlite3.Connection,
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
    now_text = to_iso(now)
    account = conn.execute(
        "SELECT baseline_at, in_game_app FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    if account is None:
        return 0  # unlinked (or forgotten) while the library was being read: nothing is kept
    baseline = account[0] is None
    stored = 0
    for game in games:
        if game.name:
            remember_game_name(conn, str(game.app_id), game.name, now_text)
        change = record_playtime(
            conn,
            scope=GLOBAL_SCOPE,
            source="steam",
            player_id=steam_id,
            game_id=str(game.app_id),
            seconds=game.playtime_seconds,
            source_time=now,
            now_text=now_text,
            sample=not baseline,
        )
        if not baseline and change.applied:
            stored += announce_growth(conn, steam_id, game.app_id, game.name, change, now, growth)
    if baseline:  # growth is checked through the ingest path; a baseline is checked here
        check_linking_guilds(conn, "steam", steam_id, now)
    next_read = soon if account is not None and account[1] is not None else later
    conn.execute(
        "INSERT INTO steam_accounts (steam_id, state, baseline_at, last_synced_at, next_sync_at,"
        " updated_at) VALUES (?, 'ok', ?, ?, ?, ?) ON CONFLICT (steam_id) DO UPDATE SET"
        " state = 'ok', baseline_at = coalesce(steam_accounts.baseline_at, excluded.baseline_at),"
        " last_synced_at = excluded.last_synced_at, next_sync_at = excluded.next_sync_at,"
        " private_since = NULL, failures = 0, last_error = NULL, updated_at = excluded.updated_at",
        (steam_id, now_text, now_text, to_iso(next_read), now_text),
    )
    _set_link_status(conn, steam_id, None, now_text)
    return stored


def announce_growth(
    conn: sqlite3.Connection,
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
    account = conn.execute(
        "SELECT baseline_at FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    if account is None or account[0] is None:
        return 0  # the sync's first read of this account will be its silent baseline
    now_text = to_iso(now)
    conn.execute(
        "INSERT OR IGNORE INTO steam_pending_checks (steam_id, app_id, since) VALUES (?, ?, ?)",
        (steam_id, app_id, now_text),
    )
    midnight = growth.midnight
    # Today's growth so far, from the per-day summary (its days are the community's, as the
    # sync's midnight is: the core sets both from [general] timezone).
    day = conn.execute(
        "SELECT seconds FROM playtime_daily WHERE scope_guild_id = ? AND game_id = ? AND day = ?"
        " AND source = 'steam' AND player_id = ?",
        (GLOBAL_SCOPE, str(app_id), midnight.date().isoformat(), steam_id),
    ).fetchone()
    today = day[0] if day else 0
    raw = {
        "type": "played", "steam_id": steam_id, "app_id": app_id,
        "game_name": name if name is not None else game_name(conn, str(app_id)),
        "today": today, "total": total, "day": midnight.date().isoformat(), "at": now_text,
    }  # fmt: skip
    grew = PlaytimeGrew(steam_id, str(app_id), old, total, now)
    return _observe(conn, growth.observer, raw, now_text, [grew])


def _checked(conn: sqlite3.Connection, steam_id: str, app_id: int) -> None:
    conn.execute(
        "DELETE FROM steam_pending_checks WHERE steam_id = ? AND app_id = ?", (steam_id, app_id)
    )


def unlock_time(unlock: Unlock) -> str | None:
    """Steam's unlocktime as stored text; missing, zero or absurd values are None."""
    if unlock.unlock_time is None or not 0 < unlock.unlock_time < 253_402_300_799:
        return None
    return to_iso(datetime.fromtimestamp(unlock.unlock_time, UTC))


def store_unlocks(
    conn: sqlite3.Connection,
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
    if not _enrolled(conn, steam_id):
        return 0  # unlinked (or forgotten) while the achievements were being read
    now_text = to_iso(now)
    if baseline:
        conn.executemany(
            "INSERT OR IGNORE INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
            " noticed_at) VALUES (?, ?, ?, ?, ?)",
            [(steam_id, game.app_id, u.api_name, unlock_time(u), now_text) for u in silent],
        )
        conn.execute(
            "INSERT OR IGNORE INTO steam_achievement_games (steam_id, app_id, baseline_at)"
            " VALUES (?, ?, ?)",
            (steam_id, game.app_id, now_text),
        )
    stored = 0
    for unlock in fresh:
        unlocked_at = unlock_time(unlock)
        inserted = conn.execute(
            "INSERT OR IGNORE INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
            " noticed_at) VALUES (?, ?, ?, ?, ?)",
            (steam_id, game.app_id, unlock.api_name, unlocked_at, now_text),
        ).rowcount
        if not inserted:
            continue
        raw = {
            "type": "achievement", "steam_id": steam_id, "app_id": game.app_id,
            "game_name": game.name or game_name(conn, str(game.app_id)),
            "api_name": unlock.api_name, "info": schema.get(unlock.api_name) or {},
            "percent": percentages.get(unlock.api_name), "at": unlocked_at or now_text,
        }  # fmt: skip
        stored += _observe(conn, observer, raw, now_text)
    _checked(conn, steam_id, game.app_id)
    return stored


class SqliteSteam:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enrol(self, now: datetime, first_read: Callable[[str], datetime]) -> tuple[int, int]:
        return await self._db.write(lambda c: enrol(c, now, first_read))

    async def accounts(self) -> list[str]:
        """Every SteamID the sync knows (linked by some guild), in order."""
        rows = await self._db.fetchall("SELECT steam_id FROM steam_accounts ORDER BY steam_id")
        return [r[0] for r in rows]

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Accounts whose library read is due, the longest waiting first."""
        rows = await self._db.fetchall(
            "SELECT steam_id FROM steam_accounts WHERE next_sync_at <= ? ORDER BY next_sync_at"
            " LIMIT ?",
            (to_iso(now), limit),
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

        def op(conn: sqlite3.Connection) -> int:
            if _opted_out_everywhere(conn, steam_id):
                return 0  # the server gets its answer; nothing about the player is kept
            change = record_playtime(
                conn,
                scope=GLOBAL_SCOPE,
                source="steam",
                player_id=steam_id,
                game_id=str(app_id),
                seconds=seconds,
                source_time=now,
                now_text=to_iso(now),
                status=status,
            )
            if name:
                remember_game_name(conn, str(app_id), name, to_iso(now))
            # A lookup may see a Steam total grow before the sync does: the sync's own news
            # (the day's played line, milestones, an achievement check) must not be lost.
            if growth is None or not change.applied:
                return 0
            return announce_growth(conn, steam_id, app_id, name, change, now, growth)

        return await self._db.write(op)

    async def pending_checks(self, steam_id: str) -> list[int]:
        """Games whose playtime grew and whose achievements were not checked since."""
        rows = await self._db.fetchall(
            "SELECT app_id FROM steam_pending_checks WHERE steam_id = ? ORDER BY since",
            (steam_id,),
        )
        return [r[0] for r in rows]

    async def checked(self, steam_id: str, app_id: int) -> None:
        await self._db.write(lambda c: _checked(c, steam_id, app_id))

    async def unlocks(self, steam_id: str, app_id: int) -> tuple[set[str], str | None, str | None]:
        """(stored unlocks, the game's baseline time, the account's baseline time)."""

        def op(conn: sqlite3.Connection) -> tuple[set[str], str | None, str | None]:
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT api_name FROM steam_achievements WHERE steam_id = ? AND app_id = ?",
                    (steam_id, app_id),
                ).fetchall()
            }
            row = conn.execute(
                "SELECT baseline_at FROM steam_achievement_games WHERE steam_id = ? AND app_id = ?",
                (steam_id, app_id),
            ).fetchone()
            account = conn.execute(
                "SELECT baseline_at FROM steam_accounts WHERE steam_id = ?", (steam_id,)
            ).fetchone()
            return names, row[0] if row else None, account[0] if account else None

        return await self._db.read(op)

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
        row = await self._db.fetchone(
            "SELECT body, fetched_at FROM steam_game_cache WHERE app_id = ? AND kind = ?"
            " AND language = ?",
            (app_id, kind, language),
        )
        return (dict(json.loads(row[0])), from_iso(row[1])) if row else None

    async def cache(
        self, app_id: int, kind: str, language: str, body: dict[str, Any], now: datetime
    ) -> None:
        text, stamp = json.dumps(body, ensure_ascii=False), to_iso(now)
        await self._db.write(
            lambda c: c.execute(
                "INSERT INTO steam_game_cache (app_id, kind, language, body, fetched_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, kind, language) DO UPDATE SET"
                " body = excluded.body, fetched_at = excluded.fetched_at",
                (app_id, kind, language, text, stamp),
            )
        )

    async def counts(self, now: datetime) -> dict[str, int]:
        """accounts, private, due (a read is due), in_game, linked (distinct linked SteamIDs)."""

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            accounts, private, due, in_game = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'private'),"
                " count(*) FILTER (WHERE next_sync_at <= ?),"
                " count(*) FILTER (WHERE in_game_app IS NOT NULL) FROM steam_accounts",
                (to_iso(now),),
            ).fetchone()
            (linked,) = conn.execute(
                "SELECT count(DISTINCT external_id) FROM account_links WHERE source = 'steam'"
            ).fetchone()
            return {
                "accounts": accounts,
                "private": private,
                "due": due,
                "in_game": in_game,
                "linked": linked,
            }

        return await self._db.read(op)

    async def reserve_call(self, day: str, purpose: str, limit: int) -> bool:
        """Count one Steam Web API call on ``day`` for ``purpose`` ("sync" or "lookup");
        False when that purpose's ``limit`` for the day is spent."""

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "INSERT INTO steam_budget (day, purpose, calls) VALUES (?, ?, 1)"
                " ON CONFLICT (day, purpose) DO UPDATE SET calls = calls + 1 WHERE calls < ?"
                " RETURNING calls",
                (day, purpose, limit),
            ).fetchone()
            return row is not None and row[0] <= limit

        return await self._db.write(op)

    async def calls_on(self, day: str) -> dict[str, int]:
        """The calls made on ``day`` per purpose (a purpose without calls is absent)."""
        rows = await self._db.fetchall(
            "SELECT purpose, calls FROM steam_budget WHERE day = ?", (day,)
        )
        return {str(purpose): int(calls) for purpose, calls in rows}

    async def set_key_state(
        self, refused_since: datetime | None, next_probe: datetime | None, detail: str | None
    ) -> None:
        """The sync's view of the Web API key, for ``questlog status`` in another process:
        refused since when and probed again when, or (all None) accepted."""
        values = {
            "steam_key_refused_since": to_iso(refused_since) if refused_since else None,
            "steam_key_next_probe": to_iso(next_probe) if next_probe else None,
            "steam_key_problem": detail,
        }

        def op(conn: sqlite3.Connection) -> None:
            for key, value in values.items():
                if value is None:
                    conn.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )

        await self._db.write(op)

    async def key_state(self) -> dict[str, str]:
        """What ``set_key_state`` last stored (empty: the key was not refused)."""
        rows = await self._db.fetchall(
            "SELECT key, value FROM meta WHERE key IN"
            " ('steam_key_refused_since', 'steam_key_next_probe', 'steam_key_problem')"
        )
        return {str(k): str(v) for k, v in rows}

    async def reserve_lookups(self, day: str, endpoint_id: int, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` of the endpoint's ``limit`` lookups on ``day``; how many."""

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT calls FROM steam_lookups WHERE day = ? AND endpoint_id = ?",
                (day, endpoint_id),
            ).fetchone()
            used = int(row[0]) if row else 0
            granted = max(0, min(wanted, limit - used))
            if granted:
                conn.execute(
                    "INSERT INTO steam_lookups (day, endpoint_id, calls) VALUES (?, ?, ?)"
                    " ON CONFLICT (day, endpoint_id) DO UPDATE SET calls = calls + excluded.calls",
                    (day, endpoint_id, granted),
                )
            return granted

        return await self._db.write(op)
