"""Raw events stored under hour-led identities (migration 0017): the same duplicates as before,
also across the upgrade, with a batch of new events writing a few pages of the dedupe index."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import ManualClock, to_iso
from bot.config import Config
from bot.core import Core
from bot.ingest.policy import IngestPolicy
from bot.storage.engine import apply_migrations, connect_sync
from bot.storage.events import compact_json, dedupe_hash, ingest
from bot.storage.records import Delivery
from connectors.base import WebhookContext, sha256_hex
from connectors.registry import Registry
from tests.conftest import GUILD
from tests.test_ingest import bm_raw, mc_raw

HOUR_LED = re.compile(r"\d{4}-\d\d-\d\dT\d\d~[0-9a-f]{64}")
BARE = re.compile(r"[0-9a-f]{64}")


async def test_sources_whose_keys_hold_a_time_are_stored_hour_first(core: Core) -> None:
    registry = core.registry
    bm = bm_raw(core, 3600)
    mc = mc_raw(
        core, type="session.started", player_uuid=str(uuid.uuid4()), at=to_iso(core.clock.now())
    )
    identity = dedupe_hash(registry.get("battlemetrics"), bm)
    assert HOUR_LED.fullmatch(identity) and identity[:13] == bm["signed_at"][:13]
    assert identity[14:] == sha256_hex(registry.get("battlemetrics").dedupe_key(bm))
    assert HOUR_LED.fullmatch(dedupe_hash(registry.get("minecraft"), mc))
    steam = registry.get("steam")
    started = {"type": "session.started", "steam_id": "76561198000000001", "app_id": 440,
               "started": "2026-11-30T21:04:05.000000Z"}  # fmt: skip
    assert dedupe_hash(steam, started).startswith("2026-11-30T21~")
    played = {"type": "played", "steam_id": "76561198000000001", "app_id": 440, "total": 60}
    assert BARE.fullmatch(dedupe_hash(steam, played))  # a total has no time of its own
    custom = registry.get("custom").parse_webhook(
        {"event_type": "raid.won", "title": "Raid won", "id": "raid-1"}, WebhookContext()
    )
    assert BARE.fullmatch(dedupe_hash(registry.get("custom"), custom))
    # A retry is the same delivery, so the same identity, and stops at the index.
    assert (await core.pipeline.ingest("battlemetrics", GUILD, bm)).status == "accepted"
    assert (await core.pipeline.ingest("battlemetrics", GUILD, dict(bm))).status == "duplicate"


async def store_bare(core: Core, source: str, raw: dict[str, Any]) -> None:
    """As a release before migration 0017 stored it: under the key's bare hash."""
    bare = sha256_hex(core.registry.get(source).dedupe_key(raw))
    now = to_iso(core.clock.now())
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (GUILD, source, bare, compact_json(raw), now),
        )
    )


async def set_upgrade_hour(core: Core, hour: datetime) -> None:
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('dedupe_hour_order_from', ?)",
            (hour.strftime("%Y-%m-%dT%H"),),
        )
    )


async def test_a_late_retry_of_a_delivery_stored_before_the_upgrade_is_a_duplicate(
    config: Config, clock: ManualClock
) -> None:
    core = await Core.start(config, clock)
    try:
        # A new database has nothing stored under a bare hash, so no upgrade hour.
        row = await core.store.engine.fetchone(
            "SELECT value FROM meta WHERE key = 'dedupe_hour_order_from'"
        )
        assert row is None
        bm = bm_raw(core, 7200)
        await store_bare(core, "battlemetrics", bm)
        await set_upgrade_hour(core, clock.now())  # upgraded in the hour the delivery was made
        clock.advance(5400)  # the sender retries 90 minutes later
        assert await core.pipeline.already_ingested("battlemetrics", GUILD, bm)
        assert (await core.pipeline.ingest("battlemetrics", GUILD, bm)).status == "duplicate"
        rows = await core.store.engine.fetchone("SELECT count(*) FROM raw_events")
        assert rows[0] == 1
        # What happened after the upgrade hour was only ever stored hour-led: no second lookup,
        # and a bare row (which no release writes for it) does not count.
        later = mc_raw(core, type="session.started", player_uuid=str(uuid.uuid4()),
                       at=to_iso(clock.now() + timedelta(hours=2)))  # fmt: skip
        await store_bare(core, "minecraft", later)
        assert (await core.pipeline.ingest("minecraft", GUILD, later)).status == "accepted"
        assert (await core.pipeline.ingest("minecraft", GUILD, later)).status == "duplicate"
    finally:
        await core.stop()


def wal_frames(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return (wal.stat().st_size - 32) // (24 + 4096) if wal.exists() and wal.stat().st_size else 0


def test_a_batch_of_new_events_writes_a_few_pages_of_a_large_dedupe_index(tmp_path: Path) -> None:
    path = tmp_path / "large.sqlite3"
    conn = connect_sync(str(path))
    apply_migrations(conn)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    # A year of deliveries stored before: 40,000 identities spread over the whole index.
    with conn:
        conn.executemany(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (?, 'minecraft', ?, '{}', '2026-01-01T00:00:00.000000Z')",
            ((GUILD, sha256_hex(f"old:{i}")) for i in range(40_000)),
        )
    registry = Registry().discover()
    registry.configure({})
    minecraft = registry.get("minecraft")
    policy = IngestPolicy.from_registry(registry)
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)

    def batch(first: int, hour_led: bool) -> int:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for k in range(first, first + 400):
            body = {"type": "session.started", "player_uuid": str(uuid.UUID(int=k + 1)),
                    "at": to_iso(start + timedelta(seconds=k))}  # fmt: skip
            raw = minecraft.parse_webhook(body, WebhookContext())
            identity = dedupe_hash(minecraft, raw)
            identity = identity if hour_led else sha256_hex(minecraft.dedupe_key(raw))
            delivery = Delivery(GUILD, "minecraft", None, identity, compact_json(raw), body["at"])
            assert ingest(
                conn, delivery, minecraft, raw, minecraft.effects(raw), policy
            ).status == ("accepted")
        conn.execute("COMMIT")
        return wal_frames(path)

    bare, led = batch(0, hour_led=False), batch(1000, hour_led=True)
    conn.close()
    # Measured: 521 WAL pages with bare hashes (about one index leaf per event), 124 hour-led;
    # 526 and 132 since sessions grew a column (migration 0025): still a quarter.
    assert led * 3.5 < bare, (led, bare)


def test_migration_0017_records_a_day_past_the_upgrade_where_bare_hashes_are_stored(
    tmp_path: Path,
) -> None:
    from tests.test_playtime_summaries import _schema_at

    conn = _schema_at(tmp_path / "q.sqlite3", 16)
    conn.execute(
        "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
        " VALUES (1, 'minecraft', ?, '{}', '2026-01-01T00:00:00.000000Z')",
        (sha256_hex("stored before"),),
    )
    before = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H")
    apply_migrations(conn)
    after = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H")
    (hour,) = conn.execute("SELECT value FROM meta WHERE key = 'dedupe_hour_order_from'").fetchone()
    assert before <= hour <= after
    conn.close()
