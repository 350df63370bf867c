"""The CLI end to end: real subprocesses, a real server, a plain HTTP client."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import signal
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Config
from tests.conftest import load_json
from tests.process import cli, running, write_config

SID = "76561198000000001"


def bm_post(client: httpx.Client, url: str, secret: str, body: bytes) -> httpx.Response:
    t = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    s = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return client.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": f"t={t},s={s}"},
    )


def get_playtime(client: httpx.Client, url: str, secret: str, ids: list[str]) -> httpx.Response:
    body = json.dumps({"steam_ids": ids, "game_id": 393380, "is_need_update": False}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        url, content=body, headers={"Content-Type": "application/json", "X-SIGNATURE": signature}
    )


def wait_for_status(
    client: httpx.Client, make_request, expected: int, timeout: float = 1.0
) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = make_request().status_code
        if last == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"expected {expected} within {timeout} s, last status {last}")


def test_newcomer_flow_end_to_end(tmp_path: Path) -> None:
    config = write_config(tmp_path, web={"public_url": "https://questlog.example.org"})
    # --config after the sub-command's own options
    created = cli(
        "endpoint",
        "create",
        "--kind",
        "playtime",
        "--guild",
        "123456789012345678",
        "--json",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    endpoint = json.loads(created.stdout)
    assert set(endpoint) >= {"path", "secret", "urls"}
    assert endpoint["urls"] == [
        f"https://questlog.example.org/set-playtime/bm/{endpoint['path']}/",
        f"https://questlog.example.org/get-playtime/{endpoint['path']}/",
    ]
    assert len(endpoint["path"]) >= 22
    with running(config, "--web-only", cwd=tmp_path) as server, httpx.Client(timeout=10) as client:
        set_url = f"{server.base_url}/set-playtime/bm/{endpoint['path']}/"
        get_url = f"{server.base_url}/get-playtime/{endpoint['path']}/"
        body = json.dumps({"steam_id": SID, "playtime": "7200", "game_id": 393380}).encode()
        response = bm_post(client, set_url, endpoint["secret"], body)
        assert response.status_code == 200, response.text
        answer = get_playtime(client, get_url, endpoint["secret"], [SID])
        assert answer.status_code == 200
        [row] = answer.json()
        assert (row["steam_id"], row["bm_playtime"], row["steam_status"]) == (
            SID,
            7200,
            "not_configured",
        )
        assert client.get(f"{server.base_url}/healthz").json()["discord"] == "disabled"

        # Rotation from the CLI reaches the running server within a second; the old secret
        # keeps working during the grace period.
        rotated = json.loads(
            cli(
                "--config",
                str(config),
                "endpoint",
                "rotate",
                endpoint["path"],
                "--json",
                cwd=tmp_path,
            ).stdout
        )
        assert rotated["secret"] != endpoint["secret"]
        wait_for_status(
            client, lambda: get_playtime(client, get_url, rotated["secret"], [SID]), 200
        )
        assert get_playtime(client, get_url, endpoint["secret"], [SID]).status_code == 200

        # A new endpoint and a disabled one take effect within a second, without a restart.
        mc = json.loads(
            cli(
                "endpoint",
                "create",
                "--kind",
                "minecraft",
                "--guild",
                "1",
                "--json",
                "--config",
                str(config),
                cwd=tmp_path,
            ).stdout
        )
        mc_url = f"{server.base_url}/webhooks/minecraft/{mc['path']}"
        mc_body = json.dumps(
            {
                "type": "session.started",
                "player_uuid": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
                "at": "2025-03-01T12:00:00Z",
            }
        ).encode()
        mc_sig = "sha256=" + hmac.new(mc["secret"].encode(), mc_body, hashlib.sha256).hexdigest()

        def send_mc() -> httpx.Response:
            return client.post(
                mc_url,
                content=mc_body,
                headers={"X-Signature": mc_sig, "Content-Type": "application/json"},
            )

        wait_for_status(client, send_mc, 200)
        cli("endpoint", "disable", mc["path"], "--config", str(config), cwd=tmp_path)
        wait_for_status(client, send_mc, 404)

        listing = json.loads(
            cli("endpoint", "list", "--json", "--config", str(config), cwd=tmp_path).stdout
        )
        assert {e["path"]: e["disabled"] for e in listing} == {
            endpoint["path"]: False,
            mc["path"]: True,
        }
        assert all("secret" not in e for e in listing)

        backup = tmp_path / "backup.sqlite3"
        cli("backup", str(backup), "--config", str(config), cwd=tmp_path)
        with sqlite3.connect(backup) as conn:
            assert conn.execute("SELECT count(*) FROM playtime").fetchone()[0] == 1

        status = json.loads(cli("status", "--json", "--config", str(config), cwd=tmp_path).stdout)
        assert status["endpoints_active"] == 1 and status["endpoints_disabled"] == 1
        assert status["raw_events"] == 2

        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
    assert any("stopped" in line for line in server.log)
    assert not any("Traceback" in line for line in server.log)
    # Secrets never appear in the log.
    assert not any(endpoint["secret"] in line or rotated["secret"] in line for line in server.log)


def test_run_without_token_explains_and_serves(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, cwd=tmp_path) as server, httpx.Client(timeout=10) as client:
        assert client.get(f"{server.base_url}/healthz").status_code == 200
        assert server.stop(signal.SIGINT) == 0
    text = "\n".join(server.log)
    assert "discord.com/developers/applications" in text
    assert "--web-only" in text


@pytest.mark.parametrize("kind", ["battlemetrics", "sha256_prefixed", "plain_hex"])
def test_sign_matches_the_vectors(tmp_path: Path, kind: str) -> None:
    vectors = load_json("signatures.json")[kind]["valid"]
    for vector in vectors:
        body = tmp_path / "body.bin"
        body.write_bytes(bytes.fromhex(vector["body_hex"]))
        args = ["sign", "--secret", vector["secret"], str(body)]
        if kind == "battlemetrics":
            args += ["--scheme", "bm", "--timestamp", vector["timestamp"]]
        elif kind == "plain_hex":
            args += ["--scheme", "hex"]
        assert cli(*args, cwd=tmp_path).stdout.strip() == vector["header"]
    if kind == "plain_hex":  # the body can also come from standard input
        piped = cli(
            "sign",
            "--scheme",
            "hex",
            "--secret",
            vectors[0]["secret"],
            "-",
            cwd=tmp_path,
            stdin=bytes.fromhex(vectors[0]["body_hex"]),
        )
        assert piped.stdout.strip() == vectors[0]["header"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["endpoint", "rotate", "no-such-path"], "no database"),
        (["endpoint", "create", "--kind", "playtime", "--guild", "0"], "guild"),
        (["endpoint", "create", "--kind", "custom", "--guild", "1", "--game-id", "5"], "playtime"),
        (
            ["endpoint", "create", "--kind", "playtime", "--guild", "1", "--path", "bad path!"],
            "path",
        ),
        (["backup", "/nonexistent-dir/x.sqlite3"], "no database"),
    ],
)
def test_errors_are_one_line_and_non_zero(tmp_path: Path, args: list[str], needle: str) -> None:
    config = write_config(tmp_path)
    result = cli(*args, "--config", str(config), cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_migrating_a_playtime_service_path_warns_when_guessable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(
        "endpoint",
        "create",
        "--kind",
        "playtime",
        "--guild",
        "1",
        "--path",
        "squad",
        "--secret",
        "bm-secret",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert "warning" in result.stderr
    assert "/set-playtime/bm/squad/" in result.stdout
    duplicate = cli(
        "endpoint",
        "create",
        "--kind",
        "custom",
        "--guild",
        "1",
        "--path",
        "squad",
        "--config",
        str(config),
        cwd=tmp_path,
        check=False,
    )
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr


def test_console_script_is_installed() -> None:
    import shutil
    import sys

    script = Path(sys.executable).parent / "questlog"
    assert script.exists() or shutil.which("questlog")


def test_feed_set_and_status(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cli(
        "feed",
        "set",
        "--guild",
        "7",
        "--channel",
        "900",
        "--max-age",
        "3600",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    status = json.loads(
        cli(
            "feed", "status", "--guild", "7", "--json", "--config", str(config), cwd=tmp_path
        ).stdout
    )
    assert (status["channel_id"], status["channel_state"], status["pending"]) == (900, "ok", 0)
    bad = cli(
        "feed",
        "set",
        "--guild",
        "7",
        "--channel",
        "0",
        "--config",
        str(config),
        cwd=tmp_path,
        check=False,
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    english = cli("feed", "set", "--guild", "7", "--channel", "900", "--config", str(config),
                  cwd=tmp_path).stdout  # fmt: skip
    assert "feed posts are written in English" in english
    russian = cli("feed", "set", "--guild", "7", "--channel", "900", "--language", "ru",
                  "--config", str(config), cwd=tmp_path).stdout  # fmt: skip
    assert "feed posts are written in Russian" in russian
    kept = cli("feed", "set", "--guild", "7", "--channel", "900", "--config", str(config),
               cwd=tmp_path).stdout  # fmt: skip
    assert "written in Russian" in kept  # a later set without --language keeps it


def test_generated_paths_and_secrets_never_look_like_options() -> None:
    from bot.services.endpoint_admin import _token, new_secret

    assert not any(_token(24).startswith("-") or new_secret().startswith("-") for _ in range(3000))


def test_a_path_starting_with_a_dash_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(
        "endpoint",
        "create",
        "--kind",
        "custom",
        "--guild",
        "1",
        "--path=-abc",
        "--config",
        str(config),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1 and "not starting with '-'" in result.stderr


def test_status_shows_the_steam_plan_holding_for_10000_links(tmp_path: Path) -> None:
    config = write_config(tmp_path, steam={"api_key": "0" * 32})
    cli("feed", "set", "--guild", "1", "--channel", "2", "--config", str(config), cwd=tmp_path)
    now = "2025-03-01T12:00:00.000000Z"
    with sqlite3.connect(tmp_path / "data" / "q.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO account_links (guild_id, discord_user_id, source, external_id,"
            " created_at, updated_at) VALUES (?, ?, 'steam', ?, ?, ?)",
            [(1 + n % 3, n, f"7656119{8_000_000_000 + n:010d}", now, now) for n in range(10_000)],
        )
    status = json.loads(cli("status", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert status["steam_sync"] == "on" and status["steam_accounts"] == 10_000
    assert status["steam_summary_interval_seconds"] == 300  # 100 calls per pass fit
    assert status["steam_sweep_interval_seconds"] == 86_400  # every library once a day
    assert status["steam_projected_calls_per_day"] <= 80_000  # 80 % of the daily limit


def test_backup_copies_the_database_as_it_is(tmp_path: Path) -> None:
    """A backup before an upgrade must be of the old schema: it is not migrated on the way."""
    import sqlite3

    source = tmp_path / "data" / "q.sqlite3"
    source.parent.mkdir()
    old = sqlite3.connect(source)
    old.execute("CREATE TABLE kept (x)")
    old.execute("INSERT INTO kept VALUES (1)")
    old.commit()
    old.close()
    config = write_config(tmp_path, database={"path": str(source)})
    cli("backup", str(tmp_path / "copy.sqlite3"), "--config", str(config), cwd=tmp_path)
    for path in (source, tmp_path / "copy.sqlite3"):
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
            assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
        finally:
            conn.close()


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    config = write_config(tmp_path, database={"path": str(tmp_path / "adir")})
    done = cli("status", "--config", str(config), cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("questlog: database error: ")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_prune_shows_what_goes_and_vacuum_switches_an_old_file(tmp_path: Path) -> None:
    from bot.storage.engine import apply_migrations

    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "q.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        apply_migrations(conn, up_to=19)  # a file from before pruning: auto_vacuum off
    config = write_config(tmp_path)
    old = "2020-01-01T00:00:00.000000Z"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (1, 'custom', ?, ?, ?)",
            [(f"h{n}", "x" * 2000, old) for n in range(300)],
        )
        conn.execute(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (1, 'custom', 'today', '{}', '2999-01-01T00:00:00.000000Z')"
        )
    dry = json.loads(
        cli("prune", "--dry-run", "--json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert dry["dry_run"] and dry["raw_payloads_blanked"] == 300
    assert dry["raw_payload_bytes"] == 600_000 and dry["auto_vacuum"] == "none"
    with closing(sqlite3.connect(path)) as conn, conn:  # a dry run changes nothing
        assert (
            conn.execute("SELECT count(*) FROM raw_events WHERE payload != ''").fetchone()[0] == 301
        )
    text = cli("prune", "--config", str(config), cwd=tmp_path).stdout
    assert "raw payloads blanked" in text and "300" in text and "questlog vacuum" in text
    with closing(sqlite3.connect(path)) as conn, conn:
        assert (
            conn.execute("SELECT count(*) FROM raw_events WHERE payload != ''").fetchone()[0] == 1
        )
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 301  # dedupe kept
    with running(config, "--web-only", cwd=tmp_path):  # a running server: vacuum refuses
        refused = cli("vacuum", "--config", str(config), cwd=tmp_path, check=False)
        assert refused.returncode == 1 and "stop `questlog run` first" in refused.stderr
    size = path.stat().st_size
    done = cli("vacuum", "--config", str(config), cwd=tmp_path).stdout
    assert "auto_vacuum is now incremental" in done and path.stat().st_size < size
    again = json.loads(cli("prune", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert again["auto_vacuum"] == "incremental" and again["raw_payloads_blanked"] == 0


def test_endpoint_urls_use_the_running_servers_port_when_port_is_0(tmp_path: Path) -> None:
    config = write_config(tmp_path)  # [web] port = 0, no public_url
    with running(config, "--web-only", cwd=tmp_path) as server:
        made = cli(
            "endpoint", "create", "--kind", "playtime", "--guild", "1", "--json",
            "--config", str(config), cwd=tmp_path,
        )  # fmt: skip
        urls = json.loads(made.stdout)["urls"]
        assert urls and all(u.startswith(server.base_url + "/") for u in urls), urls
        assert ":0/" not in made.stdout and "public_url" not in made.stderr
        assert server.stop() == 0
    after = cli(
        "endpoint", "create", "--kind", "playtime", "--guild", "1", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert "no running server answers now" in after.stderr and "[web] public_url" in after.stderr


def test_a_relative_database_path_follows_the_config_file(tmp_path: Path) -> None:
    home = tmp_path / "questlog"
    home.mkdir()
    config = home / "config.toml"
    config.write_text('[database]\npath = "data/q.sqlite3"\n[web]\nport = 0\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    expected = home / "data" / "q.sqlite3"
    for command in (["status"], ["endpoint", "list"], ["feed", "status", "--guild", "1"],
                    ["prune", "--dry-run"]):  # fmt: skip
        refused = cli(*command, "--config", str(config), cwd=elsewhere, check=False)
        assert refused.returncode == 1, command
        [line] = refused.stderr.strip().splitlines()
        assert str(expected) in line and "--config" in line
    assert not expected.exists() and not (elsewhere / "data").exists()  # nothing created

    made = cli("endpoint", "create", "--kind", "playtime", "--guild", "1",
               "--config", str(config), cwd=elsewhere)  # fmt: skip
    assert f"created a new database at {expected}" in made.stderr
    assert expected.exists() and not (elsewhere / "data").exists()
    again = cli("endpoint", "create", "--kind", "playtime", "--guild", "1",
                "--config", str(config), cwd=elsewhere)  # fmt: skip
    assert "created a new database" not in again.stderr  # said once
    status = json.loads(cli("status", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert status["database"] == str(expected) and status["endpoints_active"] == 2


def test_run_refuses_an_empty_start_when_the_old_location_has_the_database(
    tmp_path: Path,
) -> None:
    """Earlier releases took a relative path from the current directory: an upgrade run from
    there must not silently start on a new, empty database beside the config file."""
    home = tmp_path / "etc"
    home.mkdir()
    config = home / "config.toml"
    config.write_text('[database]\npath = "data/q.sqlite3"\n[web]\nport = 0\n', encoding="utf-8")
    (tmp_path / "data").mkdir()
    with closing(sqlite3.connect(tmp_path / "data" / "q.sqlite3")) as conn:
        conn.execute("CREATE TABLE t (x)")
    refused = cli("run", "--web-only", "--config", str(config), cwd=tmp_path, check=False)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert str(tmp_path / "data" / "q.sqlite3") in line and "absolute path" in line
    assert not (home / "data" / "q.sqlite3").exists()


def test_every_option_has_help() -> None:
    from bot.cli.commands import build_parser

    def walk(parser: argparse.ArgumentParser, where: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{where} {name}")
            elif action.help is None and action.dest not in ("help", "version", "config"):
                missing.append(f"{where}: {action.option_strings or action.dest}")
        return missing

    assert walk(build_parser(), "questlog") == []


def test_weak_secrets_warn_and_a_disabled_endpoint_can_be_enabled(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    weak = cli("endpoint", "create", "--kind", "playtime", "--guild", "1", "--secret",
               "bmsharedsecret", "--json", "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert "warning: --secret looks weak (about 66 bits" in weak.stderr
    path = json.loads(weak.stdout)["path"]
    strong = cli("endpoint", "rotate", path, "--secret", "Zr8-" + "q1Xv9_Lp" * 5,
                 "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert "weak" not in strong.stderr
    rotated = cli("endpoint", "rotate", path, "--secret", "a" * 40,
                  "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert "looks weak (about 0 bits" in rotated.stderr
    assert "it now answers 404" in cli("endpoint", "disable", path, "--config", str(config),
                                       cwd=tmp_path).stdout  # fmt: skip
    listed = json.loads(
        cli("endpoint", "list", "--json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert listed[0]["disabled"] is True
    enabled = cli("endpoint", "enable", path, "--config", str(config), cwd=tmp_path)
    assert "answers again, with the same secrets" in enabled.stdout
    listed = json.loads(
        cli("endpoint", "list", "--json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert listed[0]["disabled"] is False


def linked_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(tmp_path / "data" / "q.sqlite3")) as conn:
        return conn.execute(
            "SELECT discord_user_id, source, external_id, linked_by FROM account_links"
            " ORDER BY discord_user_id, source"
        ).fetchall()


def test_link_and_unlink_from_the_command_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = lambda *a, check=True: cli(*a, "--config", str(config), cwd=tmp_path, check=check)  # noqa: E731
    sid, mc = "76561198000000042", "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    assert "linked steam account" in run("link", "--guild", "1", "--user", "111111111111111111",
                                         "--steam", sid).stdout  # fmt: skip
    run("link", "--guild", "1", "--user", "111111111111111111", "--minecraft", mc.upper())
    taken = run("link", "--guild", "1", "--user", "222222222222222222", "--steam", sid,
                check=False)  # fmt: skip
    assert taken.returncode == 1 and "--force moves it" in taken.stderr
    run("link", "--guild", "1", "--user", "222222222222222222", "--steam", sid, "--force")
    assert linked_rows(tmp_path) == [
        (111111111111111111, "minecraft", mc, "cli"),
        (222222222222222222, "steam", sid, "cli"),
    ]
    bad = run("link", "--guild", "1", "--user", "1", "--steam", "123", check=False)
    assert bad.returncode == 1 and "SteamID64" in bad.stderr
    assert (
        "removed 1 link of" in run("unlink", "--guild", "1", "--user", "111111111111111111").stdout
    )
    assert linked_rows(tmp_path) == [(222222222222222222, "steam", sid, "cli")]


def test_link_import_reads_the_three_formats_in_one_transaction(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    u1, u2, u3 = "111111111111111111", "222222222222222222", "333333333333333333"
    mc1, mc2 = "069a79f4-44e9-4726-a5be-fca90e38aaf5", "853c80ef-3c37-49fd-aa49-938b674adae6"
    aof = tmp_path / "accounts.aof"  # DiscordSRV: appended; the later line for u1 wins
    aof.write_text(f"{u1} {mc2}\n{u2} {mc2}\n{u1} {mc1}\ngarbage line\n", encoding="utf-8")
    report = json.loads(cli("link", "--guild", "1", "--import", str(aof), "--json",
                            "--config", str(config), cwd=tmp_path).stdout)  # fmt: skip
    assert report["linked"] == 2 and report["taken_by_another_member"] == []
    assert {s["where"] for s in report["skipped"]} == {"line 1", "line 4"}
    essentials = tmp_path / "accounts.json"  # EssentialsX DiscordLink: uuid -> discord id
    essentials.write_text(json.dumps({mc1: u3, "not-a-uuid": u3}), encoding="utf-8")
    report = json.loads(cli("link", "--guild", "1", "--import", str(essentials), "--json",
                            "--config", str(config), cwd=tmp_path).stdout)  # fmt: skip
    assert report["linked"] == 0 and report["taken_by_another_member"] == [mc1]
    assert report["skipped"] == [
        {"where": "not-a-uuid", "reason": "the key is not a Minecraft UUID"}
    ]
    rows = tmp_path / "links.csv"
    rows.write_text(f"user,source,id\n{u3},steam,76561198000000042\n{u3},minecraft,{mc1}\n"
                    f"{u3},battlenet,x\n", encoding="utf-8")  # fmt: skip
    text = cli("link", "--guild", "1", "--import", str(rows), "--config", str(config),
               cwd=tmp_path).stdout  # fmt: skip
    assert text.startswith("linked 1, already linked 0, held by another member 1")
    assert "line 4: source 'battlenet' is not steam or minecraft" in text
    assert linked_rows(tmp_path) == [
        (int(u1), "minecraft", mc1, "import"),
        (int(u2), "minecraft", mc2, "import"),
        (int(u3), "steam", "76561198000000042", "import"),
    ]


def test_importing_10000_links_takes_seconds(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    rows = tmp_path / "links.csv"
    rows.write_text("".join(f"{10**17 + n},steam,{76561198000000000 + n}\n" for n in range(10_000)),
                    encoding="utf-8")  # fmt: skip
    started = time.monotonic()
    report = json.loads(cli("link", "--guild", "1", "--import", str(rows), "--json",
                            "--config", str(config), cwd=tmp_path).stdout)  # fmt: skip
    assert report["linked"] == 10_000 and report["skipped"] == []
    assert time.monotonic() - started < 60  # one process, one transaction (about 2 s here)


def test_links_made_before_the_upgrade_are_the_members(tmp_path: Path) -> None:
    from bot.storage.engine import apply_migrations

    with closing(sqlite3.connect(tmp_path / "old.sqlite3", isolation_level=None)) as conn:
        apply_migrations(conn, up_to=20)
        conn.execute(
            "INSERT INTO account_links (guild_id, discord_user_id, source, external_id,"
            " created_at, updated_at) VALUES (1, 5, 'steam', '76561198000000042', 'x', 'x')"
        )
        apply_migrations(conn)
        assert conn.execute("SELECT linked_by FROM account_links").fetchall() == [("member",)]


def test_forget_from_the_command_line_asks_unless_yes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = lambda *a, check=True, stdin=None: cli(  # noqa: E731
        *a, "--config", str(config), cwd=tmp_path, check=check, stdin=stdin
    )
    user, sid = "111111111111111111", "76561198000000042"
    run("link", "--guild", "1", "--user", user, "--steam", sid)
    run("link", "--guild", "2", "--user", user, "--steam", "76561198000000043")
    refused = run("forget", "--guild", "1", "--user", user, check=False, stdin=b"")
    assert refused.returncode == 1 and "pass --yes" in refused.stderr  # not a terminal
    assert len(linked_rows(tmp_path)) == 2
    done = json.loads(run("forget", "--guild", "1", "--user", user, "--yes", "--json").stdout)
    assert done["rows_removed"] >= 1 and done["removed"]["account_links"] == 1
    assert done["discord_sign_in"] == "kept"  # the member has links in server 2
    assert linked_rows(tmp_path) == [(111111111111111111, "steam", "76561198000000043", "cli")]
    again = run("forget", "--guild", "1", "--user", user, "--yes").stdout
    assert "nothing stored about" in again


def test_a_second_server_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, "--web-only", cwd=tmp_path) as first:
        second = cli("run", "--web-only", "--config", str(config), cwd=tmp_path, check=False)
        assert second.returncode == 1
        message = second.stderr.strip().splitlines()[-1]
        assert message.startswith(
            f"questlog: database error: another `questlog run` (pid {first.process.pid})"
            f" is serving {tmp_path / 'data' / 'q.sqlite3'}: SQLite allows one server per"
        )
        assert "Traceback" not in second.stderr
        status = cli("status", "--config", str(config), cwd=tmp_path)  # the CLI still works
        assert status.returncode == 0
        first.stop(signal.SIGKILL)  # however it ends, the kernel frees the lock
    with running(config, "--web-only", cwd=tmp_path) as again:
        assert again.stop() == 0


async def test_the_server_lock_is_released_when_the_server_stops(config: Config) -> None:
    from bot.server import Server
    from bot.storage.instance import ServerRunning

    first = Server(config)
    await first.start()
    try:
        with pytest.raises(ServerRunning, match="one server per database file"):
            await Server(config).start()
    finally:
        await first.stop()
    again = Server(config)
    await again.start()  # stopped: the file is free again
    await again.stop()
