"""PostgreSQL's schema (bot/storage/migrations_pg/) against SQLite's at the same version: the
same tables and columns, each column's NULL rule and a type of the same kind, the same primary
keys, unique constraints, indexes and triggers, and the same rows seeded. A SQLite migration
without its PostgreSQL twin fails here."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from bot.storage.engine import apply_migrations as apply_sqlite
from bot.storage.engine import latest_schema_version
from bot.storage.postgres.migrations import (
    BASELINE,
    POSTGRES_ONLY,
    apply_migrations,
    postgres_migrations,
    schema_version,
)

# SQLite's declared type -> the PostgreSQL types that may stand for it.
KINDS = {
    "INTEGER": {"bigint", "integer", "boolean"},
    "TEXT": {"text", "timestamp with time zone", "date", "jsonb"},
}
# SQLite's row counters are left out on PostgreSQL (see 0033_schema.sql).
NOT_CARRIED = {
    "raw_events_count_insert", "raw_events_count_delete", "activity_events_count_insert",
    "activity_events_count_delete", "feed_outbox_count_insert", "feed_outbox_count_update",
    "feed_outbox_count_delete",
}  # fmt: skip


def sqlite_schema() -> dict[str, Any]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn)
    tables: dict[str, Any] = {}
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in names:
        columns = {}
        primary: list[tuple[int, str]] = []
        for _, name, kind, notnull, _default, pk in conn.execute(f'PRAGMA table_info("{table}")'):
            columns[name] = (kind.upper(), bool(notnull) or pk > 0)  # a key is never NULL
            if pk:
                primary.append((pk, name))
        uniques, indexes = set(), set()
        for _, index, _unique, origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
            cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{index}")'))
            if origin == "u":
                uniques.add(cols)
            elif origin == "c":
                indexes.add(index)
        tables[table] = {
            "columns": columns,
            "primary": tuple(name for _, name in sorted(primary)),
            "uniques": uniques,
            "indexes": indexes,
        }
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    seeded = {
        "meta": {r[0] for r in conn.execute("SELECT key FROM meta")},
        "games": conn.execute("SELECT game_id, name FROM games").fetchall(),
        "row_counts": conn.execute("SELECT name, rows FROM row_counts ORDER BY name").fetchall(),
    }
    conn.close()
    return {"tables": tables, "triggers": triggers, "seeded": seeded}


async def postgres_schema(conn: asyncpg.Connection) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    for (table,) in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        " AND table_type = 'BASE TABLE' AND table_name != 'schema_migrations'"
        " AND NOT table_name = ANY($1::text[])",
        list(POSTGRES_ONLY),
    ):
        columns = {
            r["column_name"]: (r["data_type"], r["is_nullable"] == "NO")
            for r in await conn.fetch(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = $1",
                table,
            )
        }
        keys: dict[str, list[tuple[str, tuple[str, ...]]]] = {"p": [], "u": []}
        for row in await conn.fetch(
            "SELECT c.contype, array_agg(a.attname ORDER BY k.ord) AS cols"
            " FROM pg_constraint c"
            " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
            " WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u')"
            " GROUP BY c.oid, c.contype",
            table,
        ):
            keys[
                row["contype"].decode() if isinstance(row["contype"], bytes) else row["contype"]
            ].append(tuple(row["cols"]))
        indexes = {
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint"
                " WHERE conrelid = $1::regclass)",
                table,
            )
        }
        tables[table] = {
            "columns": columns,
            "primary": keys["p"][0] if keys["p"] else (),
            "uniques": set(keys["u"]),
            "indexes": indexes,
        }
    triggers = {
        r[0] for r in await conn.fetch("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    }
    seeded = {
        "meta": {r[0] for r in await conn.fetch("SELECT key FROM meta")},
        "games": [tuple(r) for r in await conn.fetch("SELECT game_id, name FROM games")],
        "row_counts": [
            tuple(r) for r in await conn.fetch("SELECT name, rows FROM row_counts ORDER BY name")
        ],
    }
    return {"tables": tables, "triggers": triggers, "seeded": seeded}


def test_postgres_migrations_reach_sqlites_schema_version() -> None:
    numbers = [number for number, _, _ in postgres_migrations()]
    assert numbers[0] == BASELINE
    assert numbers[-1] == latest_schema_version()  # each later SQLite migration has a twin


async def test_the_postgres_schema_matches_sqlites(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await apply_migrations(conn, postgres_migrations()) == list(
            range(BASELINE, latest_schema_version() + 1)
        )
        assert await schema_version(conn) == latest_schema_version()
        got = await postgres_schema(conn)
    finally:
        await conn.close()
    want = sqlite_schema()
    assert sorted(got["tables"]) == sorted(want["tables"])
    for table, expected in want["tables"].items():
        found = got["tables"][table]
        assert sorted(found["columns"]) == sorted(expected["columns"]), table
        for column, (kind, not_null) in expected["columns"].items():
            pg_kind, pg_not_null = found["columns"][column]
            assert pg_kind in KINDS[kind], (table, column, kind, pg_kind)
            assert pg_not_null == not_null, (table, column, "NOT NULL differs")
            if column.endswith(("_at", "_since")) or column in ("since", "source_time", "at"):
                assert pg_kind == "timestamp with time zone", (table, column)  # a moment
            if column == "day":
                assert pg_kind == "date", (table, column)
        assert found["primary"] == expected["primary"], table
        assert found["uniques"] == expected["uniques"], table
        assert found["indexes"] == expected["indexes"], table
    assert got["triggers"] == want["triggers"] - NOT_CARRIED
    assert got["seeded"]["meta"] == want["seeded"]["meta"]
    assert got["seeded"]["games"] == want["seeded"]["games"]
    assert got["seeded"]["row_counts"] == want["seeded"]["row_counts"]


async def test_a_change_of_endpoints_or_games_is_counted_and_notified(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    listener = await asyncpg.connect(postgres_url)
    heard: list[str] = []
    try:
        await apply_migrations(conn, postgres_migrations())
        await listener.add_listener("questlog_games_version", lambda *a: heard.append(a[2]))
        await conn.execute("INSERT INTO games (game_id, name, updated_at) VALUES ('1', 'a', now())")
        await conn.execute("UPDATE games SET updated_at = now() WHERE game_id = '1'")  # not name
        version = await conn.fetchval("SELECT value FROM meta WHERE key = 'games_version'")
        assert version == "1"
        for _ in range(50):
            if heard:
                break
            await listener.execute("SELECT 1")  # let the notification arrive
        assert heard == ["questlog_games_version"]
    finally:
        await listener.close()
        await conn.close()
