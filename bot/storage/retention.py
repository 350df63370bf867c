"""Pruning in SQLite: what a busy community's database may forget, in small steps.

Each step is one write operation (one short transaction inside a group commit) over at most
``limit`` rows, found by walking a table's ids from a cursor kept in ``meta``. Ids follow time
(rows are inserted as things happen), so a walk stops at the first row that is too young and
the next day's walk starts where this one stopped: no index on time is needed and no step
scans what was already pruned. The feed and batch walks start from the first id at each prune
(``begin``): what they had to keep (an event still waiting for its channel, a batch an edit
still points at) is looked at again, and everything they removed is no longer there to scan.

What goes, and what never does:

* ``raw``: after ``raw_payload_days`` a raw event's payload is blanked and its dedupe key kept,
  so a late retry stays a duplicate. A delivery that its sender retries with the original
  signature and time (BattleMetrics: ``timestamped``) is refused as stale by then, so its row
  goes instead, once no activity event refers to it.
* ``feed``: after ``feed_history_days``, the sent (or expired, superseded) outbox rows of an
  activity event, then the event itself unless an outbox row is still pending or failed, then
  its timestamped raw event. Today's played lines are days younger than the shortest history
  (2 days), so what can still be edited is never touched.
* ``batches``: feed batches of that age that are no longer pending and no outbox row names.
* ``samples``: playtime samples older than ``sample_days`` (a year) are rolled up into one row per
  player, game and day in the summary time zone (the day's deltas summed on its last sample),
  so playtime_daily rebuilt from them is unchanged. A sample dated more than a day ahead (a
  sender's clock) is garbage and does not hold the walk up.
* ``counters``: the Steam budget's and lookups' per-day counts older than a week, link codes
  that expired a day ago, and finished actions (done, failed, unknown) older than
  ``feed_history_days``.

Never pruned: playtime totals, playtime_daily and playtime_periods, member_playtime, sessions,
milestones and the Steam sync's state (charts, leaderboards and announce-once depend on them);
rewards and reward_grants, which are current state (Questlog takes away only a role it has a
grant for): a reward's grants go when it is removed, a member's when they are forgotten.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import to_iso
from bot.storage.engine import Database
from bot.storage.records import RetentionPolicy, StepResult

COUNTER_DAYS = 7
_FINAL_OUTBOX = "('sent', 'expired', 'superseded')"
# A table's newest row always stays: SQLite gives a new row the largest id plus one, so
# removing the largest would hand its id out again, behind the walk's cursor (and a feed
# batch's id is part of its Discord nonce).
_NOT_NEWEST = "id < (SELECT max(id) FROM {table})"


@dataclass(frozen=True)
class Cutoffs:
    raw: str
    feed: str
    samples: str
    future: str  # samples dated after this are a sender's clock gone wrong
    counters_day: str
    link_codes: str
    notices: str  # link notices are shown in /links for 30 days
    tz: ZoneInfo

    @classmethod
    def at(cls, now: datetime, policy: RetentionPolicy) -> Cutoffs:
        tz = ZoneInfo(policy.timezone)
        # At a local midnight, so each day's prune rolls up whole days.
        year_ago = (now - timedelta(days=policy.sample_days)).astimezone(tz)
        midnight = year_ago.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(
            raw=to_iso(now - timedelta(days=policy.raw_payload_days)),
            feed=to_iso(now - timedelta(days=policy.feed_history_days)),
            samples=to_iso(midnight.astimezone(UTC)),
            future=to_iso(now + timedelta(days=1)),
            counters_day=(now - timedelta(days=COUNTER_DAYS)).strftime("%Y-%m-%d"),
            link_codes=to_iso(now - timedelta(days=1)),
            notices=to_iso(now - timedelta(days=30)),
            tz=tz,
        )

    def sample_is_young(self, at: str) -> bool:
        return self.samples <= at <= self.future

    def local_day(self, at: str) -> str:
        return datetime.fromisoformat(at).astimezone(self.tz).date().isoformat()


def _cursor(conn: sqlite3.Connection, kind: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"prune_cursor:{kind}",)).fetchone()
    return int(row[0]) if row else 0


def _advance(conn: sqlite3.Connection, kind: str, last_id: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (f"prune_cursor:{kind}", str(last_id)),
    )


def _old_prefix(rows: list[sqlite3.Row] | list[tuple], cutoff: str, column: int = 1) -> list:
    """The leading rows older than ``cutoff`` (the walk stops at the first younger one)."""
    prefix = []
    for row in rows:
        if row[column] is None or row[column] >= cutoff:
            break
        prefix.append(row)
    return prefix


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


def _step_feed(conn: sqlite3.Connection, cut: Cutoffs, limit: int) -> StepResult:
    rows = conn.execute(
        "SELECT id, created_at, raw_event_id FROM activity_events WHERE id > ? ORDER BY id LIMIT ?",
        (_cursor(conn, "feed"), limit),
    ).fetchall()
    old = _old_prefix(rows, cut.feed)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    marks = _marks(ids)
    outbox = conn.execute(
        # "+status": without it SQLite walks every sent row of the status index (measured 10 ms
        # for 25 events on a 90 MB file) instead of looking the 25 events up (0.2 ms).
        f"DELETE FROM feed_outbox WHERE event_id IN ({marks}) AND +status IN {_FINAL_OUTBOX}",
        ids,
    ).rowcount
    events = conn.execute(
        f"DELETE FROM activity_events WHERE id IN ({marks}) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.event_id = activity_events.id)"
        f" AND {_NOT_NEWEST.format(table='activity_events')}",
        ids,
    ).rowcount
    raw_ids = sorted({r[2] for r in old if r[2] is not None})
    raw = blanked = 0
    if raw_ids:
        raw = conn.execute(
            f"DELETE FROM raw_events WHERE id IN ({_marks(raw_ids)}) AND timestamped = 1"
            " AND received_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = raw_events.id)"
            f" AND {_NOT_NEWEST.format(table='raw_events')}",
            [*raw_ids, cut.raw],
        ).rowcount
        old_raw = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM raw_events WHERE id IN ({_marks(raw_ids)}) AND received_at < ?",
                [*raw_ids, cut.raw],
            )
        ]
        if old_raw:  # blanked in place by the raw walk (or now): packed tight
            blanked = _compact(conn, old_raw)
    _advance(conn, "feed", ids[-1])
    return StepResult(
        len(old),
        {
            "outbox_rows": outbox,
            "activity_events": events,
            "raw_events": raw,
            "raw_payloads_blanked": blanked,
        },
    )


def _step_batches(conn: sqlite3.Connection, cut: Cutoffs, limit: int) -> StepResult:
    rows = conn.execute(
        "SELECT id, created_at FROM feed_batches WHERE id > ? ORDER BY id LIMIT ?",
        (_cursor(conn, "batches"), limit),
    ).fetchall()
    old = _old_prefix(rows, cut.feed)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    removed = conn.execute(
        f"DELETE FROM feed_batches WHERE id IN ({_marks(ids)}) AND status != 'pending'"
        " AND NOT EXISTS (SELECT 1 FROM feed_outbox o WHERE o.batch_id = feed_batches.id)"
        f" AND {_NOT_NEWEST.format(table='feed_batches')}",
        ids,
    ).rowcount
    _advance(conn, "batches", ids[-1])
    return StepResult(len(old), {"feed_batches": removed})


def _compact(conn: sqlite3.Connection, ids: list[int]) -> int:
    """Blank the payloads of the raw events ``ids`` that nothing refers to by taking each row
    out and putting it back without its payload; the number of payloads blanked.

    An UPDATE that shrinks a row never merges the page it leaves nearly empty; a DELETE does,
    and the rows put back fill pages again. A row an activity event still refers to cannot
    leave for a moment (the foreign key): the raw walk blanks it in place, and the feed walk
    compacts it here once its event is gone."""
    keep = conn.execute(
        "SELECT id, guild_id, source, endpoint_id, dedupe_hash, received_at, timestamped"
        f" FROM raw_events r WHERE id IN ({_marks(ids)}) AND NOT EXISTS"
        " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = r.id)",
        ids,
    ).fetchall()
    if not keep:
        return 0
    moved = [r[0] for r in keep]
    blanked = conn.execute(
        f"SELECT count(*) FROM raw_events WHERE id IN ({_marks(moved)}) AND payload != ''", moved
    ).fetchone()[0]
    conn.execute(f"DELETE FROM raw_events WHERE id IN ({_marks(moved)})", moved)
    conn.executemany(
        "INSERT INTO raw_events (id, guild_id, source, endpoint_id, dedupe_hash, payload,"
        " received_at, timestamped) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
        [tuple(r) for r in keep],
    )
    return int(blanked)


def _step_raw(conn: sqlite3.Connection, cut: Cutoffs, limit: int) -> StepResult:
    rows = conn.execute(
        "SELECT id, received_at FROM raw_events WHERE id > ? ORDER BY id LIMIT ?",
        (_cursor(conn, "raw"), limit),
    ).fetchall()
    old = _old_prefix(rows, cut.raw)
    if not old:
        return StepResult(0, {})
    ids = [r[0] for r in old]
    marks = _marks(ids)
    removed = conn.execute(
        f"DELETE FROM raw_events WHERE id IN ({marks}) AND timestamped = 1 AND NOT EXISTS"
        " (SELECT 1 FROM activity_events a WHERE a.raw_event_id = raw_events.id)"
        f" AND {_NOT_NEWEST.format(table='raw_events')}",
        ids,
    ).rowcount
    blanked = (
        _compact(conn, ids)
        + conn.execute(
            f"UPDATE raw_events SET payload = '' WHERE id IN ({marks}) AND payload != ''", ids
        ).rowcount
    )
    _advance(conn, "raw", ids[-1])
    return StepResult(len(old), {"raw_events": removed, "raw_payloads_blanked": blanked})


def _sample_prefix(rows: list[sqlite3.Row], cut: Cutoffs) -> list[sqlite3.Row]:
    prefix = []
    for row in rows:
        if cut.sample_is_young(row[1]):
            break
        prefix.append(row)
    return prefix


def _step_samples(
    conn: sqlite3.Connection, cut: Cutoffs, limit: int, tail: dict[tuple[Any, ...], int]
) -> StepResult:
    """``tail``: the id of the row each group of the last step's days was rolled into, so a
    day that spans two steps still ends as one row. The row kept is always the group's last
    (its newest id, time and total), so the table's newest id is never removed."""
    rows = conn.execute(
        "SELECT id, at, scope_guild_id, source, player_id, game_id, delta_seconds, away_seconds"
        " FROM playtime_samples WHERE id > ? ORDER BY id LIMIT ?",
        (_cursor(conn, "samples"), limit),
    ).fetchall()
    old = _sample_prefix(rows, cut)
    if not old:
        return StepResult(0, {})
    days: dict[tuple[Any, ...], list[sqlite3.Row]] = defaultdict(list)
    for row in old:
        days[(row[2], row[3], row[4], row[5], cut.local_day(row[1]))].append(row)
    last_day = max(key[4] for key in days)
    for key in [k for k in tail if k[4] < last_day and k not in days]:
        del tail[key]  # a day the walk has left
    merged = 0
    for key, group in days.items():
        last = group[-1]  # ids follow time: the day's last sample so far
        prior_id = tail.get(key)
        prior = (
            conn.execute(
                "SELECT delta_seconds, away_seconds FROM playtime_samples WHERE id = ?",
                (prior_id,),
            ).fetchone()
            if prior_id is not None
            else None
        )
        tail[key] = last[0]
        if prior is None and len(group) == 1:
            continue
        delta = sum(r[6] for r in group) + (prior[0] if prior is not None else 0)
        away = sum(r[7] for r in group) + (prior[1] if prior is not None else 0)
        conn.execute(
            "UPDATE playtime_samples SET delta_seconds = ?, away_seconds = ? WHERE id = ?",
            (delta, away, last[0]),
        )
        gone = [r[0] for r in group[:-1]] + ([prior_id] if prior is not None else [])
        merged += conn.execute(
            f"DELETE FROM playtime_samples WHERE id IN ({_marks(gone)})", gone
        ).rowcount
    _advance(conn, "samples", old[-1][0])
    return StepResult(len(old), {"samples_rolled_up": merged})


def _step_counters(conn: sqlite3.Connection, cut: Cutoffs, limit: int) -> StepResult:
    budget = conn.execute("DELETE FROM steam_budget WHERE day < ?", (cut.counters_day,)).rowcount
    lookups = conn.execute("DELETE FROM steam_lookups WHERE day < ?", (cut.counters_day,)).rowcount
    codes = conn.execute("DELETE FROM link_codes WHERE expires_at < ?", (cut.link_codes,)).rowcount
    states = conn.execute("DELETE FROM oauth_states WHERE expires_at < ?", (cut.link_codes,))
    nonces = conn.execute("DELETE FROM openid_nonces WHERE expires_at < ?", (cut.link_codes,))
    notices = conn.execute("DELETE FROM link_notices WHERE created_at < ?", (cut.notices,))
    actions = conn.execute(_OLD_ACTIONS.format(verb="DELETE"), (cut.feed, limit)).rowcount
    return StepResult(
        actions if actions >= limit else 0,  # a full page of actions: another step follows
        {
            "steam_day_counters": budget + lookups,
            "link_codes": codes,
            "oauth_states": states.rowcount + nonces.rowcount,
            "link_notices": notices.rowcount,
            "actions": actions,
        },
    )


# Finished actions (done, failed, unknown) kept as long as the feed's history; at most
# ``limit`` a step (a busy reward system finishes many).
_OLD_ACTIONS = (
    "{verb} FROM action_outbox WHERE id IN (SELECT id FROM action_outbox"
    " WHERE status IN ('done', 'failed', 'unknown') AND finished_at < ? LIMIT ?)"
)


_STEPS = {
    "feed": _step_feed,
    "batches": _step_batches,
    "raw": _step_raw,
    "counters": _step_counters,
}


def _pending(conn: sqlite3.Connection, cut: Cutoffs) -> dict[str, int]:
    """What a prune would remove or change now (``questlog prune --dry-run``), counted with the
    walks' own rules: the feed walks from the first id, the raw and sample walks from their
    cursors, a table's newest row kept."""

    def one(sql: str, *params: Any) -> int:
        return int(conn.execute(sql, params).fetchone()[0] or 0)

    raw_from = _cursor(conn, "raw")
    # Events the feed walk removes: old, every outbox row final, not the newest.
    gone = (
        "SELECT id, raw_event_id AS raw FROM activity_events e WHERE created_at < :feed"
        " AND id < (SELECT max(id) FROM activity_events) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.event_id = e.id"
        f" AND +o.status NOT IN {_FINAL_OUTBOX})"
    )
    old_events = "SELECT id FROM activity_events WHERE created_at < :feed"
    # Raw events that go: retried with their original time, old, not the newest, no event
    # left pointing at them, and reached by the raw walk or by the removal of their event.
    removable = (
        f"WITH gone AS ({gone}) SELECT id FROM raw_events r WHERE timestamped = 1"
        " AND received_at < :raw AND id < (SELECT max(id) FROM raw_events)"
        " AND NOT EXISTS (SELECT 1 FROM activity_events a WHERE a.raw_event_id = r.id"
        " AND a.id NOT IN (SELECT id FROM gone))"
        " AND (id > :raw_from OR id IN (SELECT raw FROM gone))"
    )
    names = {"feed": cut.feed, "raw": cut.raw, "raw_from": raw_from}

    def count(sql: str) -> int:
        return int(conn.execute(sql, names).fetchone()[0] or 0)

    outbox = count(
        f"SELECT count(*) FROM feed_outbox WHERE +status IN {_FINAL_OUTBOX}"
        f" AND event_id IN ({old_events})"
    )
    events = count(f"WITH gone AS ({gone}) SELECT count(*) FROM gone")
    # A batch goes when old, done, not the newest and no outbox row outlives the prune.
    batches = count(
        "SELECT count(*) FROM feed_batches b WHERE created_at < :feed AND status != 'pending'"
        " AND id < (SELECT max(id) FROM feed_batches) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.batch_id = b.id"
        f" AND (+o.status NOT IN {_FINAL_OUTBOX} OR o.event_id NOT IN ({old_events})))"
    )
    raw_removed = count(f"SELECT count(*) FROM ({removable})")
    blanked = count(
        "SELECT count(*) FROM raw_events WHERE id > :raw_from AND received_at < :raw"
        f" AND payload != '' AND id NOT IN ({removable})"
    )
    payload_bytes = count(
        "SELECT sum(length(payload)) FROM raw_events WHERE id > :raw_from AND received_at < :raw"
    )
    # Samples: walked like the prune does (the rows up to the first young one).
    rows = groups = 0
    seen: set[tuple[Any, ...]] = set()
    for row in conn.execute(
        "SELECT at, scope_guild_id, source, player_id, game_id FROM playtime_samples"
        " WHERE id > ? ORDER BY id",
        (_cursor(conn, "samples"),),
    ):
        if cut.sample_is_young(row[0]):
            break
        rows += 1
        key = (row[1], row[2], row[3], row[4], cut.local_day(row[0]))
        if key not in seen:
            seen.add(key)
            groups += 1
    counters = one(
        "SELECT (SELECT count(*) FROM steam_budget WHERE day < ?)"
        " + (SELECT count(*) FROM steam_lookups WHERE day < ?)",
        cut.counters_day, cut.counters_day,
    )  # fmt: skip
    codes = one("SELECT count(*) FROM link_codes WHERE expires_at < ?", cut.link_codes)
    states = one(
        "SELECT (SELECT count(*) FROM oauth_states WHERE expires_at < ?)"
        " + (SELECT count(*) FROM openid_nonces WHERE expires_at < ?)",
        cut.link_codes, cut.link_codes,
    )  # fmt: skip
    notices = one("SELECT count(*) FROM link_notices WHERE created_at < ?", cut.notices)
    actions = one(_OLD_ACTIONS.format(verb="SELECT count(*)"), cut.feed, -1)
    return {
        "outbox_rows": outbox,
        "activity_events": events,
        "feed_batches": batches,
        "raw_events": raw_removed,
        "raw_payloads_blanked": blanked,
        "raw_payload_bytes": payload_bytes,
        "samples_rolled_up": rows - groups,
        "steam_day_counters": counters,
        "link_codes": codes,
        "oauth_states": states,
        "link_notices": notices,
        "actions": actions,
    }


def _space(conn: sqlite3.Connection) -> dict[str, int]:
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    return {
        "page_size": int(page_size),
        "pages": int(pages),
        "free_pages": int(free),
        "auto_vacuum": int(mode),  # 0 none, 1 full, 2 incremental
    }


class SqliteRetention:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._sample_tail: dict[tuple[Any, ...], int] = {}

    async def prune_step(
        self, kind: str, now: datetime, policy: RetentionPolicy, limit: int = 500
    ) -> StepResult:
        """One step of one walk (``KINDS``), in one short write."""
        cut = Cutoffs.at(now, policy)
        tail_before = self._sample_tail

        def op(conn: sqlite3.Connection) -> tuple[StepResult, dict[tuple[Any, ...], int]]:
            # A copy: should the group commit roll this op back and run it again, it starts
            # from the same tail.
            tail = dict(tail_before)
            started = time.perf_counter()
            if kind == "samples":
                result = _step_samples(conn, cut, limit, tail)
            else:
                result = _STEPS[kind](conn, cut, limit)
            result.seconds = time.perf_counter() - started
            return result, tail

        result, self._sample_tail = await self._db.write(op)
        return result

    async def begin(self) -> None:
        """Start a prune: the feed and batch walks go back to the first id (see above)."""
        await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM meta WHERE key IN ('prune_cursor:feed', 'prune_cursor:batches')"
            )
        )
        self._sample_tail = {}

    async def pending(self, now: datetime, policy: RetentionPolicy) -> dict[str, int]:
        cut = Cutoffs.at(now, policy)
        return await self._db.read(lambda conn: _pending(conn, cut))

    async def space(self) -> dict[str, int]:
        """Pages in the file, free pages in it, and the auto_vacuum mode."""
        return await self._db.read(_space)

    async def reclaim(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system (auto_vacuum INCREMENTAL
        only); the number of free pages left. Runs between group commits."""

        def op(conn: sqlite3.Connection) -> int:
            # A script, so SQLite steps the pragma to its end (one execute() frees one page).
            with contextlib.suppress(sqlite3.OperationalError):  # another process writing
                conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            return int(conn.execute("PRAGMA freelist_count").fetchone()[0])

        return await self._db.run(op)
