"""Pruning on PostgreSQL: the walks of bot/storage/retention.py (what goes, what never does, and
why, is said there), step for step, with the same reports.

Each step is one write operation over at most ``limit`` rows found by walking a table's ids
from a cursor kept in ``meta``, so a step holds the writer for a few milliseconds whatever the
size of the backlog. A table's newest row stays, as on SQLite (PostgreSQL's identities never
hand an id out twice, but the counts a prune reports are the same on both backends).

Space: PostgreSQL's autovacuum makes the space of removed rows reusable and gives empty pages
at a table's end back to the file system; there are no free pages for Questlog to reclaim in
steps, so ``space`` reports none and ``reclaim`` vacuums the tables a prune changes."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bot.clock import from_iso
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import RetentionPolicy, StepResult
from bot.storage.retention import _FINAL_OUTBOX, Cutoffs

#: The tables a prune removes rows from or changes (``reclaim`` vacuums them).
_PRUNED = (
    "activity_events", "feed_outbox", "feed_batches", "raw_events", "playtime_samples",
    "steam_budget", "steam_lookups", "link_codes", "oauth_states", "openid_nonces",
    "link_notices", "action_outbox",
)  # fmt: skip
_NOT_NEWEST = "id < (SELECT max(id) FROM {table})"
# Finished actions (done, failed, unknown) kept as long as the feed's history; at most
# ``limit`` a step.
_OLD_ACTIONS = (
    "SELECT id FROM action_outbox WHERE status IN ('done', 'failed', 'unknown')"
    " AND finished_at < $1"
)


@dataclass(frozen=True)
class PgCutoffs:
    """bot/storage/retention.py's Cutoffs as moments and a day (the same values)."""

    raw: datetime
    feed: datetime
    samples: datetime
    future: datetime
    counters_day: date
    link_codes: datetime
    notices: datetime
    tz: ZoneInfo

    @classmethod
    def at(cls, now: datetime, policy: RetentionPolicy) -> PgCutoffs:
        cut = Cutoffs.at(now, policy)
        return cls(
            raw=from_iso(cut.raw),
            feed=from_iso(cut.feed),
            samples=from_iso(cut.samples),
            future=from_iso(cut.future),
            counters_day=date.fromisoformat(cut.counters_day),
            link_codes=from_iso(cut.link_codes),
            notices=from_iso(cut.notices),
            tz=cut.tz,
        )

    def sample_is_young(self, at: datetime) -> bool:
        return self.samples <= at <= self.future

    def local_day(self, at: datetime) -> str:
        return at.astimezone(self.tz).date().isoformat()


def _changed(status: str) -> int:
    """Rows a statement changed, from its status ("DELETE 3", "UPDATE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _cursor(conn: asyncpg.Connection, kind: str) -> int:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", f"prune_cursor:{kind}")
    return int(value) if value is not None else 0


async def _advance(conn: asyncpg.Connection, kind: str, last_id: int) -> None:
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        f"prune_cursor:{kind}",
        str(last_id),
    )


def _old_prefix(rows: list[asyncpg.Record], cutoff: datetime, column: int = 1) -> list:
    """The leading rows older than ``cutoff`` (the walk stops at the first younger one)."""
    prefix = []
    for row in rows:
        if row[column] is None or row[column] >= cutoff:
            break
        prefix.append(row)
    return prefix


async def _step_feed(conn: asyncpg.Connection, cut: PgCutoffs, limit: int) -> StepResult:
    rows = await conn.fetch(
        "SELECT id, created_at, raw_event_id FROM activity_events WHERE id > $1"
        " ORDER BY id LIMIT $2",
        await _cursor(conn, "feed"),
        limit,
    )
    old = _old_prefix(rows, cut.feed)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    outbox = _changed(
        await conn.execute(
            "DELETE FROM feed_outbox WHERE event_id = ANY($1::bigint[])"
            f" AND status IN {_FINAL_OUTBOX}",
            ids,
        )
    )
    events = _changed(
        await conn.execute(
            "DELETE FROM activity_events WHERE id = ANY($1::bigint[]) AND NOT EXISTS"
            " (SELECT 1 FROM feed_outbox o WHERE o.event_id = activity_events.id)"
            f" AND {_NOT_NEWEST.format(table='activity_events')}",
            ids,
        )
    )
    raw_ids = sorted({r[2] for r in old if r[2] is not None})
    raw = blanked = 0
    if raw_ids:
        raw = _changed(
            await conn.execute(
                "DELETE FROM raw_events WHERE id = ANY($1::bigint[]) AND timestamped"
                " AND received_at < $2 AND NOT EXISTS"
                " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = raw_events.id)"
                f" AND {_NOT_NEWEST.format(table='raw_events')}",
                raw_ids,
                cut.raw,
            )
        )
        # Old raw events that no event refers to any more lose their payload here (the raw
        # walk blanked those it could reach; one an event still referred to waited for it).
        blanked = _changed(
            await conn.execute(
                "UPDATE raw_events r SET payload = '' WHERE id = ANY($1::bigint[])"
                " AND received_at < $2 AND payload <> '' AND NOT EXISTS"
                " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = r.id)",
                raw_ids,
                cut.raw,
            )
        )
    await _advance(conn, "feed", ids[-1])
    return StepResult(
        len(old),
        {
            "outbox_rows": outbox,
            "activity_events": events,
            "raw_events": raw,
            "raw_payloads_blanked": blanked,
        },
    )


async def _step_batches(conn: asyncpg.Connection, cut: PgCutoffs, limit: int) -> StepResult:
    rows = await conn.fetch(
        "SELECT id, created_at FROM feed_batches WHERE id > $1 ORDER BY id LIMIT $2",
        await _cursor(conn, "batches"),
        limit,
    )
    old = _old_prefix(rows, cut.feed)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    removed = _changed(
        await conn.execute(
            "DELETE FROM feed_batches WHERE id = ANY($1::bigint[]) AND status <> 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM feed_outbox o WHERE o.batch_id = feed_batches.id)"
            f" AND {_NOT_NEWEST.format(table='feed_batches')}",
            ids,
        )
    )
    await _advance(conn, "batches", ids[-1])
    return StepResult(len(old), {"feed_batches": removed})


async def _step_raw(conn: asyncpg.Connection, cut: PgCutoffs, limit: int) -> StepResult:
    rows = await conn.fetch(
        "SELECT id, received_at FROM raw_events WHERE id > $1 ORDER BY id LIMIT $2",
        await _cursor(conn, "raw"),
        limit,
    )
    old = _old_prefix(rows, cut.raw)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    removed = _changed(
        await conn.execute(
            "DELETE FROM raw_events WHERE id = ANY($1::bigint[]) AND timestamped AND NOT EXISTS"
            " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = raw_events.id)"
            f" AND {_NOT_NEWEST.format(table='raw_events')}",
            ids,
        )
    )
    blanked = _changed(
        await conn.execute(
            "UPDATE raw_events SET payload = '' WHERE id = ANY($1::bigint[]) AND payload <> ''",
            ids,
        )
    )
    await _advance(conn, "raw", ids[-1])
    return StepResult(len(old), {"raw_events": removed, "raw_payloads_blanked": blanked})


def _sample_prefix(rows: list[asyncpg.Record], cut: PgCutoffs) -> list[asyncpg.Record]:
    prefix = []
    for row in rows:
        if cut.sample_is_young(row[1]):
            break
        prefix.append(row)
    return prefix


async def _step_samples(
    conn: asyncpg.Connection, cut: PgCutoffs, limit: int, tail: dict[tuple[Any, ...], int]
) -> StepResult:
    """``tail``: the id of the row each group of the last step's days was rolled into, so a
    day that spans two steps still ends as one row. The row kept is always the group's last
    (its newest id, time and total), so the table's newest id is never removed."""
    rows = await conn.fetch(
        "SELECT id, at, scope_guild_id, source, player_id, game_id, delta_seconds, away_seconds"
        " FROM playtime_samples WHERE id > $1 ORDER BY id LIMIT $2",
        await _cursor(conn, "samples"),
        limit,
    )
    old = _sample_prefix(rows, cut)
    if not old:
        return StepResult(0, {})
    days: dict[tuple[Any, ...], list[asyncpg.Record]] = defaultdict(list)
    for row in old:
        days[(row[2], row[3], row[4], row[5], cut.local_day(row[1]))].append(row)
    last_day = max(key[4] for key in days)
    for key in [k for k in tail if k[4] < last_day and k not in days]:
        del tail[key]  # a day the walk has left
    wanted = [tail[key] for key in days if key in tail]
    priors = {
        r[0]: (r[1], r[2])
        for r in await conn.fetch(
            "SELECT id, delta_seconds, away_seconds FROM playtime_samples"
            " WHERE id = ANY($1::bigint[])",
            wanted,
        )
    } if wanted else {}  # fmt: skip
    updates: list[tuple[int, int, int]] = []
    gone: list[int] = []
    for key, group in days.items():
        last = group[-1]  # ids follow time: the day's last sample so far
        prior_id = tail.get(key)
        prior = priors.get(prior_id) if prior_id is not None else None
        tail[key] = last[0]
        if prior is None and len(group) == 1:
            continue
        delta = sum(r[6] for r in group) + (prior[0] if prior is not None else 0)
        away = sum(r[7] for r in group) + (prior[1] if prior is not None else 0)
        updates.append((last[0], delta, away))
        gone += [r[0] for r in group[:-1]] + ([prior_id] if prior is not None else [])
    merged = 0
    if updates:
        await conn.execute(
            "UPDATE playtime_samples s SET delta_seconds = u.delta, away_seconds = u.away"
            " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u (id, delta, away)"
            " WHERE s.id = u.id",
            [u[0] for u in updates], [u[1] for u in updates], [u[2] for u in updates],
        )  # fmt: skip
        merged = _changed(
            await conn.execute("DELETE FROM playtime_samples WHERE id = ANY($1::bigint[])", gone)
        )
    await _advance(conn, "samples", old[-1][0])
    return StepResult(len(old), {"samples_rolled_up": merged})


async def _step_counters(conn: asyncpg.Connection, cut: PgCutoffs, limit: int) -> StepResult:
    async def gone(sql: str, *params: Any) -> int:
        return _changed(await conn.execute(sql, *params))

    budget = await gone("DELETE FROM steam_budget WHERE day < $1", cut.counters_day)
    lookups = await gone("DELETE FROM steam_lookups WHERE day < $1", cut.counters_day)
    codes = await gone("DELETE FROM link_codes WHERE expires_at < $1", cut.link_codes)
    states = await gone("DELETE FROM oauth_states WHERE expires_at < $1", cut.link_codes)
    nonces = await gone("DELETE FROM openid_nonces WHERE expires_at < $1", cut.link_codes)
    notices = await gone("DELETE FROM link_notices WHERE created_at < $1", cut.notices)
    actions = await gone(
        f"DELETE FROM action_outbox WHERE id IN ({_OLD_ACTIONS} LIMIT $2)", cut.feed, limit
    )
    return StepResult(
        actions if actions >= limit else 0,  # a full page of actions: another step follows
        {
            "steam_day_counters": budget + lookups,
            "link_codes": codes,
            "oauth_states": states + nonces,
            "link_notices": notices,
            "actions": actions,
        },
    )


_STEPS = {
    "feed": _step_feed,
    "batches": _step_batches,
    "raw": _step_raw,
    "counters": _step_counters,
}


async def _pending(conn: asyncpg.Connection, cut: PgCutoffs) -> dict[str, int]:
    """What a prune would remove or change now (``questlog prune --dry-run``), counted with the
    walks' own rules (as bot/storage/retention.py's _pending counts them)."""

    async def count(sql: str, *params: Any) -> int:
        return int(await conn.fetchval(sql, *params) or 0)

    raw_from = await _cursor(conn, "raw")
    # Events the feed walk removes: old, every outbox row final, not the newest ($1: feed).
    gone = (
        "SELECT id, raw_event_id AS raw FROM activity_events e WHERE created_at < $1"
        " AND id < (SELECT max(id) FROM activity_events) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.event_id = e.id"
        f" AND o.status NOT IN {_FINAL_OUTBOX})"
    )
    old_events = "SELECT id FROM activity_events WHERE created_at < $1"
    # Raw events that go ($2: raw, $3: the raw walk's cursor).
    removable = (
        f"WITH gone AS ({gone}) SELECT id FROM raw_events r WHERE timestamped"
        " AND received_at < $2 AND id < (SELECT max(id) FROM raw_events)"
        " AND NOT EXISTS (SELECT 1 FROM activity_events a WHERE a.raw_event_id = r.id"
        " AND a.id NOT IN (SELECT id FROM gone))"
        " AND (id > $3 OR id IN (SELECT raw FROM gone))"
    )
    outbox = await count(
        f"SELECT count(*) FROM feed_outbox WHERE status IN {_FINAL_OUTBOX}"
        f" AND event_id IN ({old_events})",
        cut.feed,
    )
    events = await count(f"WITH gone AS ({gone}) SELECT count(*) FROM gone", cut.feed)
    batches = await count(
        "SELECT count(*) FROM feed_batches b WHERE created_at < $1 AND status <> 'pending'"
        " AND id < (SELECT max(id) FROM feed_batches) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.batch_id = b.id"
        f" AND (o.status NOT IN {_FINAL_OUTBOX} OR o.event_id NOT IN ({old_events})))",
        cut.feed,
    )
    raw_removed = await count(
        f"SELECT count(*) FROM ({removable}) AS removable", cut.feed, cut.raw, raw_from
    )
    blanked = await count(
        "SELECT count(*) FROM raw_events WHERE id > $3 AND received_at < $2"
        f" AND payload <> '' AND id NOT IN ({removable})",
        cut.feed, cut.raw, raw_from,
    )  # fmt: skip
    payload_bytes = await count(
        "SELECT sum(length(payload)) FROM raw_events WHERE id > $1 AND received_at < $2",
        raw_from,
        cut.raw,
    )
    # Samples: walked like the prune does (the rows up to the first young one), grouped per
    # player, game and local day.
    sampled = await conn.fetchrow(
        "WITH young AS (SELECT min(id) AS id FROM playtime_samples"
        " WHERE id > $1 AND at >= $2 AND at <= $3)"
        " SELECT count(*), count(DISTINCT (s.scope_guild_id, s.source, s.player_id, s.game_id,"
        " (s.at AT TIME ZONE $4)::date)) FROM playtime_samples s, young"
        " WHERE s.id > $1 AND (young.id IS NULL OR s.id < young.id)",
        await _cursor(conn, "samples"), cut.samples, cut.future, cut.tz.key,
    )  # fmt: skip
    counters = await count(
        "SELECT (SELECT count(*) FROM steam_budget WHERE day < $1)"
        " + (SELECT count(*) FROM steam_lookups WHERE day < $1)",
        cut.counters_day,
    )
    codes = await count("SELECT count(*) FROM link_codes WHERE expires_at < $1", cut.link_codes)
    states = await count(
        "SELECT (SELECT count(*) FROM oauth_states WHERE expires_at < $1)"
        " + (SELECT count(*) FROM openid_nonces WHERE expires_at < $1)",
        cut.link_codes,
    )
    notices = await count("SELECT count(*) FROM link_notices WHERE created_at < $1", cut.notices)
    actions = await count(
        f"SELECT count(*) FROM action_outbox WHERE id IN ({_OLD_ACTIONS})", cut.feed
    )
    return {
        "outbox_rows": outbox,
        "activity_events": events,
        "feed_batches": batches,
        "raw_events": raw_removed,
        "raw_payloads_blanked": blanked,
        "raw_payload_bytes": payload_bytes,
        "samples_rolled_up": int(sampled[0]) - int(sampled[1]),
        "steam_day_counters": counters,
        "link_codes": codes,
        "oauth_states": states,
        "link_notices": notices,
        "actions": actions,
    }


async def _space(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT current_setting('block_size')::bigint, pg_database_size(current_database()),"
        " current_setting('autovacuum') = 'on'"
    )
    page_size, size, autovacuum = int(row[0]), int(row[1]), bool(row[2])
    return {
        "page_size": page_size,
        "pages": -(-size // page_size),
        "free_pages": 0,  # the server's vacuum reuses freed space; none waits for Questlog
        "auto_vacuum": 2 if autovacuum else 0,  # 0 none, 1 full, 2 incremental
    }


class PgRetention:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self._sample_tail: dict[tuple[Any, ...], int] = {}

    async def prune_step(
        self, kind: str, now: datetime, policy: RetentionPolicy, limit: int = 500
    ) -> StepResult:
        """One step of one walk (``PRUNE_KINDS``), in one short write."""
        cut = PgCutoffs.at(now, policy)
        tail_before = self._sample_tail

        async def op(conn: asyncpg.Connection) -> tuple[StepResult, dict[tuple[Any, ...], int]]:
            # A copy: should the group commit roll this op back and run it again, it starts
            # from the same tail.
            tail = dict(tail_before)
            started = time.perf_counter()
            if kind == "samples":
                result = await _step_samples(conn, cut, limit, tail)
            else:
                result = await _STEPS[kind](conn, cut, limit)
            result.seconds = time.perf_counter() - started
            return result, tail

        result, self._sample_tail = await self._db.write(op)
        return result

    async def begin(self) -> None:
        """Start a prune: the feed and batch walks go back to the first id."""

        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "DELETE FROM meta WHERE key IN ('prune_cursor:feed', 'prune_cursor:batches')"
            )

        await self._db.write(op)
        self._sample_tail = {}

    async def pending(self, now: datetime, policy: RetentionPolicy) -> dict[str, int]:
        cut = PgCutoffs.at(now, policy)

        async def fn(conn: asyncpg.Connection) -> dict[str, int]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _pending(conn, cut)

        return await self._db.read(fn)

    async def space(self) -> dict[str, int]:
        """The database's size in pages, no free pages (see above), and whether the server's
        autovacuum runs (2) or not (0)."""
        return await self._db.read(_space)

    async def reclaim(self, pages: int) -> int:
        """VACUUM the tables a prune changes (outside any transaction; it does not block
        reads or writes), so their freed space is reused and empty pages at their ends go back
        to the file system; the free pages left for Questlog to reclaim: none."""

        async def fn(conn: asyncpg.Connection) -> int:
            if pages > 0:
                with contextlib.suppress(asyncpg.PostgresError):  # e.g. not the tables' owner
                    await conn.execute("VACUUM " + ", ".join(_PRUNED))
            return 0

        return await self._db.read(fn)
