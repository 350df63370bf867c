"""``questlog db copy``: a community's SQLite file into a PostgreSQL database, with the server
stopped.

The target gets PostgreSQL's schema first (its migrations), then every table in batches with
COPY, each value converted to its PostgreSQL column's type (ISO-8601 text to timestamptz, a
``YYYY-MM-DD`` day to a date, 0/1 to a boolean; JSON is checked by PostgreSQL itself). Then
every table is read back from both sides in primary-key order: the row counts and a SHA-256 of
the rows, each value in one canonical form, must match, or the copy is reported as failed. A
target that already holds a community's data is refused unless ``force``, which empties it
first; the rows the schema seeds (meta, games, row_counts) are always replaced by the file's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bot.clock import from_iso
from bot.storage.engine import StorageError, latest_schema_version
from bot.storage.postgres.migrations import POSTGRES_ONLY, apply_migrations, postgres_migrations

#: Rows per COPY and per checksum read.
BATCH = 5000
#: Filled by the schema itself; replaced by the file's rows, never a reason to refuse.
SEEDED = ("meta", "games", "row_counts")

Progress = Callable[[str, int, int], None]  # table, rows done, rows in all


class CopyError(StorageError):
    """The copy cannot start or did not verify (the message says which table and why)."""


@dataclass
class TableCopy:
    name: str
    rows: int
    checksum: str


@dataclass
class CopyReport:
    tables: list[TableCopy] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # PostgreSQL's data_type


def _refuse(table: str, column: _Column, value: Any, why: str) -> CopyError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return CopyError(f"{table}.{column.name}: {shown} is not a valid {column.kind} ({why})")


def _to_postgres(column: _Column, value: Any, table: str) -> Any:
    """The value for PostgreSQL's column. Strict, so that the conversion loses nothing and
    the checksum of the converted rows stands for the file's: a flag must be 0 or 1, an
    integer an integer, text text without NUL characters (PostgreSQL refuses those)."""
    if value is None:
        return None
    kind = column.kind
    if kind in ("bigint", "integer", "boolean"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(table, column, value, "not an integer in the file")
        if kind == "boolean":
            if value not in (0, 1):
                raise _refuse(table, column, value, "a flag is 0 or 1")
            return bool(value)
        limit = 2**31 if kind == "integer" else 2**63
        if not -limit <= value < limit:
            raise _refuse(table, column, value, "out of range")
        return value
    if not isinstance(value, str):
        raise _refuse(table, column, value, f"a {type(value).__name__} in the file, not text")
    if "\x00" in value:
        raise _refuse(table, column, value, "contains a NUL character")
    try:
        if kind == "timestamp with time zone":
            return from_iso(value)
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "jsonb":
            if "\\u0000" in value:
                raise ValueError("PostgreSQL's jsonb refuses \\u0000")
            json.loads(value)  # checked here, to name the row
        return value
    except (TypeError, ValueError) as exc:
        raise _refuse(table, column, value, str(exc)) from None


def _json_canonical(value: Any) -> Any:
    """JSON compared by meaning: keys sorted, and numbers by value (jsonb writes 1e+20 as
    100000000000000000000 and -0.0 as 0.0)."""
    if isinstance(value, dict):
        return {k: _json_canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_json_canonical(v) for v in value]
    if isinstance(value, Decimal):
        return "0" if value == 0 else str(value.normalize())
    return value


def _canonical(column: _Column, value: Any) -> str:
    """One text form for a value read from either side, for the checksum."""
    if value is None:
        return "\x00"
    if column.kind == "jsonb":
        parsed = json.loads(value, parse_float=Decimal, parse_int=Decimal)
        return json.dumps(_json_canonical(parsed), sort_keys=True, separators=(",", ":"))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Sqlite:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise CopyError(f"no database at {path}")
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        (version,) = self.conn.execute("PRAGMA user_version").fetchone()
        if version < latest_schema_version():  # never changed here: the copy only reads it
            raise CopyError(
                f"{path} is at schema version {version}, this release's is"
                f" {latest_schema_version()}: start this release once on it (it migrates the"
                " file at start-up), stop it, then copy"
            )
        if version > latest_schema_version():
            raise CopyError(
                f"{path} is at schema version {version}, newer than this release's"
                f" {latest_schema_version()}: copy it with the release that wrote it"
            )

    def count(self, table: str) -> int:
        return int(self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])

    def rows(self, table: str, columns: list[_Column], order: list[str]) -> Iterator[tuple]:
        names = ", ".join(f'"{c.name}"' for c in columns)
        keys = ", ".join(f'"{k}"' for k in order)
        cursor = self.conn.execute(f'SELECT {names} FROM "{table}" ORDER BY {keys}')
        while batch := cursor.fetchmany(BATCH):
            yield from batch

    def close(self) -> None:
        self.conn.close()


async def _tables(conn: asyncpg.Connection) -> list[str]:
    """The tables in an order that satisfies every foreign key (referenced tables first)."""
    names = [
        r[0]
        for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE' AND table_name != 'schema_migrations'"
            " ORDER BY table_name"
        )
        if r[0] not in POSTGRES_ONLY
    ]
    needs: dict[str, set[str]] = {name: set() for name in names}
    for row in await conn.fetch(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f'"
    ):
        if row[0] in needs and row[1] != row[0]:
            needs[row[0]].add(row[1])
    ordered: list[str] = []
    while needs:
        ready = sorted(name for name, wanted in needs.items() if wanted <= set(ordered))
        if not ready:
            raise CopyError(f"the foreign keys of {sorted(needs)} form a cycle")
        ordered += ready
        for name in ready:
            del needs[name]
    # meta last: the version triggers of endpoints and games count the copied rows in it,
    # and what the file says must win.
    return [name for name in ordered if name != "meta"] + (["meta"] if "meta" in ordered else [])


async def _columns(conn: asyncpg.Connection, table: str) -> tuple[list[_Column], list[str]]:
    columns = [
        _Column(r[0], r[1])
        for r in await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
    ]
    key = await conn.fetchval(
        "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c"
        " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
        " WHERE c.conrelid = $1::regclass AND c.contype = 'p'",
        table,
    )
    return columns, list(key or [c.name for c in columns])


async def _holds_data(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    return [
        table
        for table in tables
        if table not in SEEDED and await conn.fetchval(f'SELECT EXISTS (SELECT FROM "{table}")')
    ]


async def copy_database(
    path: str | Path,
    url: str,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy the SQLite file at ``path`` into the PostgreSQL database at ``url`` and verify it."""
    source = _Sqlite(Path(path))
    try:
        try:
            conn = await asyncpg.connect(url)
        except ValueError:  # its message may quote the password
            raise CopyError("cannot connect to PostgreSQL: the URL is not valid") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise CopyError(f"cannot connect to PostgreSQL: {exc}") from None
        try:
            await apply_migrations(conn, postgres_migrations())
            tables = await _tables(conn)
            await _same_shape(source, conn, tables)
            holding = await _holds_data(conn, tables)
            if holding and not force:
                raise CopyError(
                    "the PostgreSQL database already holds data (in "
                    + ", ".join(holding[:5])
                    + (", ..." if len(holding) > 5 else "")
                    + "): copy into an empty database, or pass --force to replace it"
                )
            return await _copy(source, conn, tables, progress)
        finally:
            await conn.close()
    finally:
        source.close()


async def _same_shape(source: _Sqlite, conn: asyncpg.Connection, tables: list[str]) -> None:
    """Every table and column on both sides, or nothing is copied."""
    theirs = set(_sqlite_tables(source))
    if theirs != set(tables):
        raise CopyError(
            "the two schemas differ: tables only in the file: "
            f"{sorted(theirs - set(tables)) or 'none'}, only in PostgreSQL:"
            f" {sorted(set(tables) - theirs) or 'none'}"
        )
    for table in tables:
        columns, _ = await _columns(conn, table)
        file_columns = {r[1] for r in source.conn.execute(f'PRAGMA table_info("{table}")')}
        if file_columns != {c.name for c in columns}:
            raise CopyError(
                f"{table}: the columns differ (only in the file:"
                f" {sorted(file_columns - {c.name for c in columns}) or 'none'}, only in"
                f" PostgreSQL: {sorted({c.name for c in columns} - file_columns) or 'none'})"
            )


def _sqlite_tables(source: _Sqlite) -> list[str]:
    return [
        r[0]
        for r in source.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]


async def _copy(
    source: _Sqlite, conn: asyncpg.Connection, tables: list[str], progress: Progress | None
) -> CopyReport:
    report = CopyReport()
    async with conn.transaction():  # all or nothing
        await conn.execute(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )
        for table in tables:
            columns, key = await _columns(conn, table)
            total = source.count(table)
            done = 0
            batch: list[tuple] = []
            for row in source.rows(table, columns, key):
                batch.append(
                    tuple(_to_postgres(c, v, table) for c, v in zip(columns, row, strict=True))
                )
                if len(batch) >= BATCH:
                    await _put(conn, table, columns, batch)
                    done += len(batch)
                    batch = []
                    if progress is not None:
                        progress(table, done, total)
            if batch:
                await _put(conn, table, columns, batch)
                done += len(batch)
            if progress is not None:
                progress(table, done, total)
            await _advance_identity(conn, table, columns)
        for table in tables:
            report.tables.append(await _verify(source, conn, table))
    return report


async def _put(conn: asyncpg.Connection, table: str, columns: list[_Column], rows: list) -> None:
    try:
        await conn.copy_records_to_table(table, records=rows, columns=[c.name for c in columns])
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError, TypeError) as exc:
        raise CopyError(f"{table}: PostgreSQL refused a row ({exc})") from None


async def _advance_identity(conn: asyncpg.Connection, table: str, columns: list[_Column]) -> None:
    """Identity columns continue after the copied ids (COPY does not move their sequence)."""
    for column in columns:
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, column.name)
        if sequence is not None:
            await conn.execute(
                f'SELECT setval($1, coalesce((SELECT max("{column.name}") FROM "{table}"), 0) + 1,'
                " false)",
                sequence,
            )


async def _verify(source: _Sqlite, conn: asyncpg.Connection, table: str) -> TableCopy:
    columns, key = await _columns(conn, table)
    names = ", ".join(f'"{c.name}"' for c in columns)
    kinds = {c.name: c.kind for c in columns}
    # Text keys in byte order, as SQLite sorts them (the database's own collation may not).
    order = ", ".join(f'"{k}"' + (' COLLATE "C"' if kinds[k] == "text" else "") for k in key)
    want, got = hashlib.sha256(), hashlib.sha256()
    copied = 0
    for row in source.rows(table, columns, key):
        values = (_to_postgres(c, v, table) for c, v in zip(columns, row, strict=True))
        want.update(_line(columns, values))
        copied += 1
    stored = 0
    async for record in conn.cursor(f'SELECT {names} FROM "{table}" ORDER BY {order}'):
        got.update(_line(columns, record.values()))
        stored += 1
    if stored != copied:
        raise CopyError(f"{table}: {copied} rows in the file, {stored} in PostgreSQL")
    if want.digest() != got.digest():
        raise CopyError(f"{table}: the rows differ after the copy (checksums do not match)")
    return TableCopy(table, copied, got.hexdigest())


def _line(columns: list[_Column], values: Any) -> bytes:
    return (
        "\x1f".join(_canonical(c, v) for c, v in zip(columns, values, strict=True)) + "\x1e"
    ).encode()
