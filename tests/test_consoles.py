"""Game server consoles (issue 18): RCON settings on an endpoint, milestones and reward grants
announced in game through the action outbox and the fake RCON server (Minecraft ``tellraw``,
Squad ``AdminBroadcast``), at most once even when a crash or a dropped connection leaves the
outcome unknown, a refused password pausing the console, and hostile names kept inside their
argument."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.core import Core
from bot.services.endpoint_admin import EndpointError
from connectors.base import Action, SchemaError
from connectors.minecraft.connector import MinecraftConnector, RunCommand, command_line
from connectors.squad.connector import Broadcast
from tests.conftest import GUILD, MakeEndpoint
from tests.fakes.rcon import FakeRcon
from tests.process import write_config
from tests.test_ingest import bm_raw, mc_raw

PASSWORD = "rcon-password-of-the-test"
NOTCH = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
ALICE, ALICE_STEAM = 4000000000000000501, "76561198000000501"
H = 3600
HOSTILE = 'Evil"}]\n§4say @a op me\\ | AdminKick'


@pytest.fixture
async def minecraft() -> AsyncIterator[FakeRcon]:
    async with FakeRcon(PASSWORD, dialect="minecraft") as server:
        yield server


@pytest.fixture
async def squad() -> AsyncIterator[FakeRcon]:
    async with FakeRcon(PASSWORD, dialect="squad") as server:
        yield server


async def minecraft_console(
    core: Core, make_endpoint: MakeEndpoint, server: FakeRcon, **options: Any
) -> int:
    endpoint = await make_endpoint(kind="minecraft")
    settings = await core.consoles.set(
        endpoint.path, game="minecraft", host="127.0.0.1", port=server.port, password=PASSWORD,
        **options,
    )  # fmt: skip
    return settings.endpoint_id


async def play(core: Core, hours: float, name: str = "Notch", server: str = "survival") -> Any:
    """A Minecraft session of ``hours`` that ends now."""
    start = core.clock.now()
    core.clock.advance(hours * H)  # type: ignore[attr-defined]
    await core.pipeline.ingest(
        "minecraft", GUILD,
        mc_raw(core, type="session.started", player_uuid=NOTCH, player_name=name,
               server_id=server, at=start.isoformat()),
    )  # fmt: skip
    return await core.pipeline.ingest(
        "minecraft", GUILD,
        mc_raw(core, type="session.ended", player_uuid=NOTCH, player_name=name,
               server_id=server, at=core.clock.now().isoformat()),
    )  # fmt: skip


async def link_notch(core: Core, name: str = "Notch") -> None:
    await core.store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=NOTCH,
        now=core.clock.now(), display_name=name,
    )  # fmt: skip


async def outbox(core: Core) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = await core.store.engine.fetchall(
        "SELECT action, status, pause_key, payload FROM action_outbox ORDER BY id"
    )
    return [(a, s, k, json.loads(p)) for a, s, k, p in rows]


# --------------------------------------------------------------------------- settings


async def test_the_password_is_sealed_at_rest_and_never_shown(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    endpoint_id = await minecraft_console(core, make_endpoint, minecraft)
    stored = await core.store.engine.fetchone(
        "SELECT password FROM endpoint_consoles WHERE endpoint_id = ?", (endpoint_id,)
    )
    assert stored is not None and PASSWORD not in stored[0]
    settings = await core.store.consoles.get(endpoint_id)
    assert settings is not None and PASSWORD not in repr(settings)
    target = await core.consoles.target(endpoint_id)
    assert target is not None and target.password == PASSWORD and PASSWORD not in repr(target)
    assert await core.consoles.check(endpoint_id) is None  # logs in with it
    assert minecraft.logins == 1


@pytest.mark.parametrize(
    ("kind", "options", "game", "code"),
    [
        ("custom", {}, "minecraft", "console_minecraft"),
        ("minecraft", {}, "squad", "console_squad"),
        ("playtime", {"game_id": 221100}, "squad", "console_squad"),
        ("playtime", {}, "squad", "console_squad"),
    ],
)
async def test_a_console_belongs_on_its_game_s_endpoint(
    core: Core, make_endpoint: MakeEndpoint, kind: str, options: dict[str, Any], game: str,
    code: str,
) -> None:  # fmt: skip
    endpoint = await make_endpoint(kind=kind, **options)
    with pytest.raises(EndpointError) as refused:
        await core.consoles.set(
            endpoint.path, game=game, host="127.0.0.1", port=25575, password=PASSWORD
        )
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("host", "port", "password", "code"),
    [
        ("mc.example.org; rm", 25575, PASSWORD, "console_host"),
        ("127.0.0.1", 0, PASSWORD, "console_port"),
        ("127.0.0.1", 70000, PASSWORD, "console_port"),
        ("127.0.0.1", 25575, "", "console_password"),
        ("127.0.0.1", 25575, "two\nlines", "console_password_form"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field(
    core: Core, make_endpoint: MakeEndpoint, host: str, port: int, password: str, code: str
) -> None:
    endpoint = await make_endpoint(kind="minecraft")
    with pytest.raises(EndpointError) as refused:
        await core.consoles.set(
            endpoint.path, game="minecraft", host=host, port=port, password=password
        )
    assert refused.value.code == code and PASSWORD not in str(refused.value)
    assert await core.store.consoles.list(GUILD) == []


# --------------------------------------------------------------------------- announcements


async def test_a_milestone_is_said_in_game_once_with_tellraw(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    result = await play(core, 10.5)
    assert result.actions == 1
    assert await core.actions.run_once() == 1
    assert minecraft.commands == [
        'tellraw @a {"text": "Notch reached 10 hours in Minecraft", "color": "gold"}'
    ]
    assert [(a, s) for a, s, _, _ in await outbox(core)] == [("run_command", "done")]
    await play(core, 1)  # 11.5 h: no new milestone, nothing said
    assert await core.actions.run_once() == 0 and len(minecraft.commands) == 1


async def test_only_linked_members_are_announced_and_no_announce_keeps_quiet(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    quiet = await make_endpoint(kind="minecraft")
    await core.consoles.set(
        quiet.path, game="minecraft", host="127.0.0.1", port=minecraft.port, password=PASSWORD,
        announce=False,
    )  # fmt: skip
    await minecraft_console(core, make_endpoint, minecraft)
    result = await play(core, 10.5)  # Notch is not linked in the guild
    assert result.actions == 0 and await outbox(core) == []
    await link_notch(core)
    result = await play(core, 40)  # 50 h, now linked: said on the announcing console only
    assert result.actions == 1
    assert [k for _, _, k, _ in await outbox(core)] != [f"console:{quiet.id}"]


async def test_the_line_is_written_in_the_feed_language(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await core.store.feed.set_language(GUILD, "ru", core.clock.now().isoformat())
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    await play(core, 10.5)
    await core.actions.run_once()
    (command,) = minecraft.commands
    assert json.loads(command.removeprefix("tellraw @a "))["text"] == "Notch: 10 часов в Minecraft"


async def test_a_squad_milestone_is_broadcast(
    core: Core, make_endpoint: MakeEndpoint, squad: FakeRcon
) -> None:
    endpoint = await make_endpoint(kind="playtime", game_id=393380)
    await core.consoles.set(
        endpoint.path, game="squad", host="127.0.0.1", port=squad.port, password=PASSWORD
    )
    await core.store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="steam", external_id=ALICE_STEAM,
        now=core.clock.now(), display_name="Alice",
    )  # fmt: skip
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 9 * H, steam_id=ALICE_STEAM))
    core.clock.advance(60)  # type: ignore[attr-defined]
    result = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 11 * H, sig="b" * 64, steam_id=ALICE_STEAM)
    )
    assert result.actions == 1
    squad.chat_before_answer = True  # Squad streams chat on the same connection
    await core.actions.run_once()
    assert squad.commands == ["AdminBroadcast Alice reached 10 hours"]
    assert [s for _, s, _, _ in await outbox(core)] == ["done"]


async def test_a_command_that_may_have_arrived_is_never_sent_twice(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    minecraft.drop_after_receive = 1  # received, then the connection breaks: outcome unknown
    await play(core, 10.5)
    await core.actions.run_once()
    core.clock.advance(3 * H)  # type: ignore[attr-defined]
    await core.actions.run_once()
    assert len(minecraft.commands) == 1
    ((_, status, _, _),) = await outbox(core)
    assert status == "unknown"


async def test_a_crash_mid_send_leaves_the_announcement_unknown(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    await play(core, 10.5)
    (queued,) = await core.store.actions.claim_due(core.clock.now(), 10)
    assert await core.store.actions.begin(queued, core.clock.now())  # then the process dies
    again, unknown = await core.store.actions.recover(core.clock.now())
    assert (again, unknown) == (0, 1)
    assert await core.actions.run_once() == 0 and minecraft.commands == []


async def test_a_server_that_is_down_is_tried_again_because_nothing_was_sent(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    minecraft.silent = True  # accepts, never answers the log-in
    core.consoles.timeout = 0.2
    for connector in ("minecraft", "squad"):
        pool = core.registry.get(connector).rcon  # type: ignore[attr-defined]
        pool.connect_timeout = pool.command_timeout = 0.2
    await play(core, 10.5)
    await core.actions.run_once()
    ((_, status, _, _),) = await outbox(core)
    assert status == "pending" and minecraft.commands == []
    minecraft.silent = False
    core.clock.advance(H)  # type: ignore[attr-defined]
    await core.actions.run_once()
    assert len(minecraft.commands) == 1
    assert [s for _, s, _, _ in await outbox(core)] == ["done"]


async def test_a_refused_password_pauses_the_console_until_it_is_set_again(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    endpoint_id = await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    minecraft.password = "changed on the server"
    await play(core, 10.5)
    await core.actions.run_once()
    ((_, status, key, _),) = await outbox(core)
    assert (status, key) == ("paused", f"console:{endpoint_id}")
    status_now = await core.store.actions.status(GUILD, core.clock.now())
    assert PASSWORD not in repr(status_now)
    path = (await core.endpoint_admin.list(GUILD))[0].path
    await core.consoles.set(
        path, game="minecraft", host="127.0.0.1", port=minecraft.port,
        password="changed on the server",
    )  # fmt: skip
    await core.actions.run_once()  # probed at once, not in ten minutes
    assert len(minecraft.commands) == 1
    assert [s for _, s, _, _ in await outbox(core)] == ["done"]


async def test_a_removed_console_fails_what_waits_for_it(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core)
    await play(core, 10.5)
    path = (await core.endpoint_admin.list(GUILD))[0].path
    assert await core.consoles.remove(path)
    await core.actions.run_once()
    assert [s for _, s, _, _ in await outbox(core)] == ["failed"] and minecraft.commands == []


async def test_a_hostile_name_stays_inside_its_argument_in_game(
    core: Core, make_endpoint: MakeEndpoint, minecraft: FakeRcon
) -> None:
    await minecraft_console(core, make_endpoint, minecraft)
    await link_notch(core, name=HOSTILE)
    core.clock.advance(11 * H)  # type: ignore[attr-defined]
    await core.pipeline.ingest(  # no player_name: the member's own name is said
        "minecraft", GUILD,
        mc_raw(core, type="session.ended", player_uuid=NOTCH, server_id="survival",
               at=core.clock.now().isoformat(), duration_seconds=11 * H),
    )  # fmt: skip
    await core.actions.run_once()
    (command,) = minecraft.commands
    assert "\n" not in command and "§" not in command
    component = json.loads(command.removeprefix("tellraw @a "))
    assert component == {"text": 'Evil"}] say @a op me\\ | AdminKick reached 10 hours in Minecraft',
                         "color": "gold"}  # fmt: skip


# --------------------------------------------------------------------------- escaping


def test_tellraw_keeps_any_text_inside_its_json_string() -> None:
    line = command_line(RunCommand(endpoint_id=1, template="tellraw", text=HOSTILE))
    assert line.startswith("tellraw @a {") and "\n" not in line
    component = json.loads(line.removeprefix("tellraw @a "))
    assert component["text"] == 'Evil"}] say @a op me\\ | AdminKick'
    assert component["color"] == "gold"


def test_say_is_one_line_without_colour_codes_or_selectors() -> None:
    line = command_line(RunCommand(endpoint_id=1, template="say", text=HOSTILE))
    assert line == 'say Evil"}] say ＠a op me\\ | AdminKick'


def test_whitelist_add_takes_only_a_minecraft_name() -> None:
    assert (
        command_line(RunCommand(endpoint_id=1, template="whitelist add", player="Notch_2"))
        == "whitelist add Notch_2"
    )
    connector = MinecraftConnector()
    for bad in ({"player": "Notch; op me"}, {"player": "Notch", "text": "hi"}, {}):
        with pytest.raises(SchemaError):
            connector.validate_action(
                Action("run_command", {"endpoint_id": 1, "template": "whitelist add", **bad})
            )
    with pytest.raises(SchemaError) as refused:
        connector.validate_action(Action("run_command", {"endpoint_id": 1, "template": "op"}))
    assert refused.value.field == "template"
    with pytest.raises(SchemaError):  # nothing left once cleaned
        connector.validate_action(
            Action("run_command", {"endpoint_id": 1, "template": "say", "text": "§4\n"})
        )


def test_a_squad_message_is_one_line_and_cannot_chain_commands() -> None:
    message = Broadcast(endpoint_id=1, message=HOSTILE).message
    assert message == 'Evil"}] say @a op me\\ ¦ AdminKick'
    assert "\n" not in message and "|" not in message


# --------------------------------------------------------------------------- the CLI


async def questlog(*args: str, cwd: Path, stdin: str | None = None) -> tuple[int, str, str]:
    """The CLI as a subprocess, awaited so the fake console in this loop can answer it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else b""), 60
    )
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_cli_saves_a_console_and_logs_in_with_it(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    code, out, err = await questlog(
        "endpoint", "create", "--kind", "minecraft", "--guild", str(GUILD), "--json",
        "--config", config, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    path = json.loads(out)["path"]
    async with FakeRcon(PASSWORD) as server:
        rcon = ("endpoint", "rcon", path, "--game", "minecraft", "--host", "127.0.0.1",
                "--port", str(server.port), "--config", config)  # fmt: skip
        code, out, err = await questlog(*rcon, cwd=tmp_path)
        assert code != 0 and "--password-stdin" in err
        code, out, err = await questlog(*rcon, "--password-stdin", cwd=tmp_path, stdin="wrong\n")
        assert code == 0 and "refused the RCON password" in err and "wrong" not in out + err
        code, out, err = await questlog(
            *rcon, "--password-stdin", "--no-announce", cwd=tmp_path, stdin=PASSWORD + "\n"
        )
        assert code == 0, err
        assert "logged in" in out and "does not announce" in out and PASSWORD not in out + err
        code, out, err = await questlog(
            "endpoint", "rcon", path, "--game", "squad", "--host", "127.0.0.1", "--port", "1",
            "--password-stdin", "--config", config, cwd=tmp_path, stdin=PASSWORD,
        )  # fmt: skip
        assert code != 0 and "393380" in err
    assert server.logins == 1 and server.failed_logins == 1
    with closing(sqlite3.connect(tmp_path / "data" / "q.sqlite3")) as db:
        rows = db.execute("SELECT game, host, announce, password FROM endpoint_consoles").fetchall()
    ((game, host, announce, sealed),) = rows
    assert (game, host, announce) == ("minecraft", "127.0.0.1", 0) and PASSWORD not in sealed
    code, out, err = await questlog("endpoint", "rcon", path, "--remove", "--config", config,
                                    cwd=tmp_path)  # fmt: skip
    assert code == 0 and "removed" in out
