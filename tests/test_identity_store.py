"""Verified identities, the stored half: migration 0023, OAuth states, the instance key."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import ConfigError, parse_config
from bot.core import Core
from bot.storage.engine import apply_migrations
from bot.vault import KEY_FILE, Vault, new_key
from tests.conftest import GUILD

MEMBER = 111


def test_upgrading_says_how_each_existing_link_was_proven() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=22)
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    rows = [
        (1, "steam", "76561198000000001", 0, "member"),
        (2, "steam", "76561198000000002", 0, "admin:42"),
        (3, "minecraft", "069a79f4-44e9-4726-a5be-fca90e38aaf5", 1, "member"),
        (4, "minecraft", "853c80ef-3c37-49fd-aa49-938b674adae6", 0, "import"),
        (5, "steam", "76561198000000005", 0, "cli"),
    ]
    conn.executemany(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, verified,"
        " linked_by, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, 'x', 'x')",
        rows,
    )
    apply_migrations(conn)
    got = conn.execute(
        "SELECT discord_user_id, verified_by FROM account_links ORDER BY discord_user_id"
    ).fetchall()
    assert got == [(1, "none"), (2, "admin"), (3, "minecraft_code"), (4, "admin"), (5, "admin")]
    assert conn.execute("SELECT require_verified FROM guilds").fetchall() == [(0,)]


async def test_a_state_is_taken_once_and_only_before_it_expires(
    core: Core, clock: ManualClock
) -> None:
    states = core.store.oauth
    now = clock.now()
    state = await states.create(
        kind="discord", guild_id=GUILD, user_id=MEMBER, language="ru", now=now
    )
    assert len(state) >= 43  # 256 random bits
    # Only a hash is stored: the database cannot finish anyone's flow.
    stored = await core.store.engine.fetchall("SELECT * FROM oauth_states")  # type: ignore[attr-defined]
    assert state not in repr([tuple(r) for r in stored])
    assert (await states.consume(state, ("steam",), now))[0] == "unknown"  # another kind
    outcome, found = await states.consume(state, ("discord",), now + timedelta(minutes=9))
    assert outcome == "ok" and found is not None
    assert (found.guild_id, found.user_id, found.language) == (GUILD, MEMBER, "ru")
    assert (await states.consume(state, ("discord",), now))[0] == "used"
    assert (await states.consume("forged" + state[6:], ("discord",), now))[0] == "unknown"

    late = await states.create(kind="steam", guild_id=GUILD, user_id=MEMBER, language="en-US",
                               now=now)  # fmt: skip
    assert (await states.consume(late, ("steam",), now + timedelta(minutes=10)))[0] == "expired"
    # A peek (the start page) does not use the state up.
    fresh = await states.create(kind="steam", guild_id=GUILD, user_id=MEMBER, language="en-US",
                                now=now)  # fmt: skip
    assert (await states.peek(fresh, ("steam",), now))[0] == "ok"
    assert (await states.consume(fresh, ("steam",), now))[0] == "ok"
    assert (await states.peek(fresh, ("steam",), now))[0] == "used"


async def test_pruning_forgets_expired_states_a_day_later(core: Core, clock: ManualClock) -> None:
    await core.store.oauth.create(
        kind="discord", guild_id=GUILD, user_id=MEMBER, language="en-US", now=clock.now()
    )
    policy = core.pruner.policy
    assert (await core.store.retention.pending(clock.now(), policy))["oauth_states"] == 0
    later = clock.now() + timedelta(days=1, minutes=11)
    assert (await core.store.retention.pending(later, policy))["oauth_states"] == 1
    clock.advance(86400 + 660)
    report = await core.pruner.run_once()
    assert report.changed["oauth_states"] == 1


def test_the_vault_seals_and_a_lost_key_reads_as_not_connected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config({"database": {"path": str(tmp_path / "db" / "q.sqlite3")}}, env={})
    with caplog.at_level(logging.WARNING, "bot.vault"):
        vault = Vault.from_config(config)
    key_file = tmp_path / "db" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "back it up" in caplog.text
    sealed = vault.seal("access-token-123")
    assert "access-token-123" not in sealed
    assert Vault.from_config(config).open(sealed) == "access-token-123"  # the same file again

    key_file.unlink()  # lost: a new key is made, and the old tokens cannot be opened
    caplog.clear()
    other = Vault.from_config(config)
    with caplog.at_level(logging.ERROR, "bot.vault"):
        assert other.open(sealed) is None
        assert other.open(sealed) is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "not connected" in errors[0].getMessage()
    assert "access-token" not in caplog.text


def test_a_configured_key_wins_and_a_bad_one_is_refused_without_echo(tmp_path: Path) -> None:
    key = new_key()
    config = parse_config(
        {"database": {"path": str(tmp_path / "q.sqlite3")}}, env={"QUESTLOG_SECRET_KEY": key}
    )
    vault = Vault.from_config(config)
    assert vault.where == "[security] secret_key"
    assert not (tmp_path / KEY_FILE).exists()
    assert Vault(key, "x").open(vault.seal("t")) == "t"
    with pytest.raises(ConfigError) as caught:
        parse_config({"security": {"secret_key": "hunter2-not-a-key"}}, env={})
    assert "questlog key new" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_cli_prints_a_usable_key_and_says_where_the_key_is(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "q.sqlite3"}"\n')
    new = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "key", "new"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = new.stdout.strip()
    parse_config({"security": {"secret_key": key}}, env={})  # accepted
    where = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "key", "where"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(tmp_path / KEY_FILE) in where.stdout
