"""`questlog db copy`: a community's SQLite file into PostgreSQL (issue 19, part 2), against a
throwaway cluster: every table's rows arrive converted to PostgreSQL's types and verified, a
second copy is refused without --force, a bad value names its table and column and leaves
nothing half-copied, and the command refuses while a server runs on the file."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.core import Core
from bot.storage.postgres.copy import CopyError, copy_database
from tests.conftest import GUILD, MakeEndpoint
from tests.process import cli, running, write_config
from tests.test_afk import STEVE, event
from tests.test_ingest import bm_raw, set_feed

ALICE = 4000000000000000901


async def community(core: Core, make_endpoint: MakeEndpoint) -> None:
    """A small community with a bit of everything: links, reports, sessions with AFK time, a
    reward, the feed."""
    await set_feed(core, GUILD, 900000000000000901)
    await make_endpoint("playtime")
    await core.store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=STEVE,
        now=core.clock.now(), display_name="Steve",
    )  # fmt: skip
    await core.rewards.add(guild_id=GUILD, role_id=1400000000000000901, hours=1, counting="total")
    for n, hours in enumerate((5, 6, 7)):
        core.clock.advance(60)  # type: ignore[attr-defined]
        await core.pipeline.ingest(
            "battlemetrics", GUILD, bm_raw(core, hours * 3600, sig=str(n) * 64)
        )
    t = core.clock.now() - timedelta(hours=3)
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(minutes=30))
    await event(core, "afk.ended", t + timedelta(minutes=50))
    await event(core, "session.ended", t + timedelta(hours=2))
    await core.rewards.settled()


async def counts(url: str, tables: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
    finally:
        await conn.close()


async def test_every_table_arrives_typed_and_verified(
    core: Core, make_endpoint: MakeEndpoint, postgres_url: str
) -> None:
    await community(core, make_endpoint)
    seen: list[tuple[str, int, int]] = []
    report = await copy_database(
        core.config.database.path, postgres_url, progress=lambda *a: seen.append(a)
    )
    copied = {t.name: t.rows for t in report.tables}
    assert len(copied) == 39 and report.rows == sum(copied.values())
    for table in ("raw_events", "activity_events", "feed_outbox", "playtime", "sessions",
                  "account_links", "rewards", "endpoints", "playtime_daily", "action_outbox"):  # fmt: skip
        assert copied[table] > 0, table
    assert await counts(postgres_url, list(copied)) == copied
    assert {table for table, done, total in seen if done == total} == set(copied)
    conn = await asyncpg.connect(postgres_url)
    try:
        session = await conn.fetchrow(
            "SELECT started_at, duration_seconds, idle_seconds FROM sessions WHERE player_id = $1",
            STEVE,
        )
        assert isinstance(session["started_at"], datetime)
        assert session["started_at"].tzinfo is not None
        assert (session["duration_seconds"], session["idle_seconds"]) == (7200, 1200)
        away = await conn.fetchval("SELECT away_seconds FROM playtime WHERE player_id = $1", STEVE)
        assert away == 1200
        day = await conn.fetchval("SELECT day FROM playtime_daily LIMIT 1")
        assert isinstance(day, date)
        role = await conn.fetchval(
            "SELECT (payload->>'role_id')::bigint FROM action_outbox LIMIT 1"
        )  # jsonb, queryable
        assert role == 1400000000000000901
        verified = await conn.fetchval("SELECT verified FROM account_links LIMIT 1")
        assert verified is False
        top = await conn.fetchval("SELECT max(id) FROM raw_events")
        fresh = await conn.fetchval(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (1, 'x', 'new', '', now()) RETURNING id"
        )
        assert fresh == top + 1  # the identity goes on after the copied ids
    finally:
        await conn.close()


async def test_a_second_copy_is_refused_without_force(
    core: Core, make_endpoint: MakeEndpoint, postgres_url: str
) -> None:
    await community(core, make_endpoint)
    first = await copy_database(core.config.database.path, postgres_url)
    with pytest.raises(CopyError, match=r"already holds data .*pass --force"):
        await copy_database(core.config.database.path, postgres_url)
    again = await copy_database(core.config.database.path, postgres_url, force=True)
    assert [(t.name, t.rows, t.checksum) for t in again.tables] == [
        (t.name, t.rows, t.checksum) for t in first.tables
    ]  # replaced, not added to


async def test_a_bad_value_names_its_column_and_copies_nothing(
    core: Core, make_endpoint: MakeEndpoint, postgres_url: str
) -> None:
    await community(core, make_endpoint)
    await core.store.engine.write(
        lambda c: c.execute("UPDATE sessions SET last_seen_at = 'yesterday'")
    )
    with pytest.raises(CopyError, match=r"sessions\.last_seen_at: 'yesterday' is not a valid"):
        await copy_database(core.config.database.path, postgres_url)
    found = await counts(postgres_url, ["raw_events", "sessions", "account_links"])
    assert found == {"raw_events": 0, "sessions": 0, "account_links": 0}  # all or nothing


async def test_values_are_checked_strictly_and_json_compared_by_meaning(
    core: Core, make_endpoint: MakeEndpoint, postgres_url: str
) -> None:
    await community(core, make_endpoint)
    await core.store.engine.write(
        lambda c: c.execute('UPDATE guilds SET settings = \'{"x": 1e+20, "y": -0.0}\'')
    )
    await copy_database(core.config.database.path, postgres_url)  # jsonb rewrites both numbers
    for bad, said in (
        (
            "UPDATE account_links SET verified = 2",
            r"account_links\.verified: 2 is not a valid boolean \(a flag is 0 or 1\)",
        ),
        ("UPDATE account_links SET display_name = 'a' || char(0) || 'b'", "NUL character"),
        (
            "UPDATE playtime SET seconds = 1.5",
            r"playtime\.seconds: 1\.5 is not a valid bigint \(not an integer",
        ),
    ):
        await core.store.engine.write(lambda c, bad=bad: c.execute(bad))
        with pytest.raises(CopyError, match=said):
            await copy_database(core.config.database.path, postgres_url, force=True)
        await core.store.engine.write(
            lambda c: (
                c.execute("UPDATE account_links SET verified = 0, display_name = 'Steve'"),
                c.execute("UPDATE playtime SET seconds = 60 WHERE typeof(seconds) = 'real'"),
            )
        )


def test_an_older_file_is_refused_unchanged(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from bot.storage.engine import apply_migrations

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, up_to=30)
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CopyError, match=r"schema version 30, this release's is \d+: start this"):
        asyncio.run(copy_database(path, "postgresql://questlog@127.0.0.1:9/none"))
    assert path.read_bytes() == before  # the copy never migrates the file


def test_the_command_refuses_while_a_server_runs_and_copies_once_it_stopped(
    tmp_path: Path, postgres_cluster: object
) -> None:
    import asyncio

    async def make_database() -> str:
        conn = await asyncpg.connect(postgres_cluster.url)  # type: ignore[attr-defined]
        try:
            await conn.execute('CREATE DATABASE "cli_copy"')
        finally:
            await conn.close()
        return postgres_cluster.database_url("cli_copy")  # type: ignore[attr-defined]

    url = asyncio.run(make_database())
    secret = url.replace("questlog@", "questlog:hunter2@")  # trust auth: any password works
    config = write_config(tmp_path)
    with running(config, "--web-only", cwd=tmp_path):
        refused = cli("db", "copy", "--to", secret, "--config", str(config), cwd=tmp_path,
                      check=False)  # fmt: skip
        assert refused.returncode == 1 and "is serving" in refused.stderr
    done = cli("db", "copy", "--to", secret, "--config", str(config), cwd=tmp_path)
    assert "verified: every table's row count and the SHA-256 of its rows match" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr  # the password is never shown
    assert f"into postgresql://127.0.0.1:{postgres_cluster.port}/cli_copy;" in done.stdout  # type: ignore[attr-defined]
    assert re.search(r"^  meta: \d+ rows$", done.stderr, re.M)  # a line per table, no terminal


def test_the_command_explains_a_missing_or_wrong_url_without_showing_a_password(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    import sqlite3

    from bot.storage.engine import apply_migrations

    (tmp_path / "data").mkdir()
    conn = sqlite3.connect(tmp_path / "data" / "q.sqlite3", isolation_level=None)
    apply_migrations(conn)  # a database to copy
    conn.close()
    for args, said in (
        ((), "say where to copy: --to URL, or QUESTLOG_DATABASE_URL"),
        (("--to", "mysql://u:pw@host/db"), "the target must be a postgresql:// URL"),
        (("--to", "postgresql://u:s3c/ret@127.0.0.1:9/db"), "cannot connect to PostgreSQL"),
    ):
        result = cli("db", "copy", *args, "--config", str(config), cwd=tmp_path, check=False)
        assert result.returncode == 1, result.stderr
        assert said in result.stderr
        assert "Traceback" not in result.stderr
        assert "s3c" not in result.stdout + result.stderr and "pw" not in result.stderr
