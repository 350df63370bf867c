"""The action outbox and its worker (issue 17, first half): payloads validated by their
models with the field named; retries with backoff and Retry-After; refusals an admin can fix
pause their key and are probed; restarts neither lose an idempotent action nor send another
twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from bot.actions import ActionWorker
from bot.clock import ManualClock
from bot.core import Core
from connectors.base import (
    Action,
    ActionDone,
    ActionPaused,
    ActionRetry,
    ActionSpec,
    Connector,
    SchemaError,
)
from connectors.registry import Registry
from tests.conftest import GUILD, database_at


class Grant(BaseModel):
    user_id: int
    role_id: int = Field(gt=0)


class Say(BaseModel):
    line: str = Field(min_length=1, max_length=100)


class EchoConnector(Connector):
    """A target that does what the test scripts: each call pops the next outcome."""

    key = "echo"
    name = "Echo"
    actions = (
        ActionSpec("grant", "Give a member a role", Grant, "do_grant"),
        ActionSpec("say", "Say a line on a console", Say, "say_line", idempotent=False),
    )

    def __init__(self, secrets: Any = None) -> None:
        super().__init__(secrets)
        self.script: list[BaseException | None] = []
        self.done: list[tuple[str, BaseModel]] = []

    async def _outcome(self, name: str, payload: BaseModel) -> None:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.done.append((name, payload))

    async def do_grant(self, payload: Grant) -> None:
        await self._outcome("grant", payload)


@pytest.fixture
def echo() -> EchoConnector:
    return EchoConnector()


@pytest.fixture
def worker(core: Core, clock: ManualClock, echo: EchoConnector) -> ActionWorker:
    registry = Registry()
    registry.register(EchoConnector)
    registry._instances = {"echo": echo}  # type: ignore[attr-defined]

    async def say_line(payload: Say) -> None:  # a handler the core provides
        await echo._outcome("say", payload)

    echo.provide("say_line", say_line)
    return ActionWorker(
        core.store, registry, clock, backoff_base=10, probe_every=timedelta(minutes=10)
    )


async def queue(core: Core, action: str, payload: dict[str, Any], key: str = "reward:1",
                user: int | None = 42) -> int:  # fmt: skip
    """Queued as the store keeps it (validated when queued through ``queue``; ``enqueue``
    takes it as given, which lets a test store a payload its model refuses)."""
    spec = EchoConnector.actions[0] if action == "grant" else EchoConnector.actions[1]
    return await core.store.actions.enqueue(
        guild_id=GUILD, connector="echo", action=action, payload=payload,
        idempotent=spec.idempotent, pause_key=key, now=core.clock.now(), user_id=user,
    )  # fmt: skip


async def statuses(core: Core) -> dict[int, tuple[str, int, str | None]]:
    rows = await core.store.engine.fetchall(
        "SELECT id, status, attempts, last_error FROM action_outbox ORDER BY id"
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_a_payload_that_does_not_fit_names_the_field(echo: EchoConnector) -> None:
    with pytest.raises(SchemaError) as bad:
        echo.validate_action(Action("grant", {"user_id": 1, "role_id": 0}))
    assert bad.value.field == "role_id" and "greater than 0" in bad.value.message
    with pytest.raises(SchemaError) as missing:
        echo.validate_action(Action("say", {}))
    assert missing.value.field == "line"
    with pytest.raises(SchemaError) as unknown:
        echo.validate_action(Action("explode", {}))
    assert unknown.value.field == "type"
    assert echo.validate_action(Action("grant", {"user_id": "7", "role_id": 9})) == Grant(
        user_id=7, role_id=9
    )


async def test_outages_back_off_and_retry_after_is_honoured_until_done(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    first = await queue(core, "grant", {"user_id": 1, "role_id": 5})
    echo.script = [ActionRetry("Discord answered 503"), ActionRetry("429", retry_after=30)]
    assert await worker.run_once() == 1
    assert (await statuses(core))[first] == ("pending", 1, "Discord answered 503")
    assert 8 <= (await worker.seconds_until_due() or 0) <= 12  # backoff_base, with jitter
    clock.advance(5)
    assert await worker.run_once() == 0  # not due yet
    clock.advance(10)
    assert await worker.run_once() == 1
    assert await worker.seconds_until_due() == 30  # what the 429 asked for
    clock.advance(30)
    assert await worker.run_once() == 1
    assert (await statuses(core))[first] == ("done", 3, None)
    assert echo.done == [("grant", Grant(user_id=1, role_id=5))]  # once, in the end


async def test_a_refusal_pauses_its_key_only_and_a_probe_resumes_it(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    a = await queue(core, "grant", {"user_id": 1, "role_id": 5}, key="reward:1")
    b = await queue(core, "grant", {"user_id": 2, "role_id": 5}, key="reward:1")
    other = await queue(core, "grant", {"user_id": 3, "role_id": 6}, key="reward:2")
    echo.script = [ActionPaused("Missing Permissions (50013): the bot cannot manage that role")]
    await worker.run_once()
    found = await statuses(core)
    assert found[a][0] == found[b][0] == "paused" and found[other][0] == "done"
    status = await core.store.actions.status(GUILD, clock.now())
    assert [p[1] for p in status.pauses] == ["reward:1"] and "50013" in status.pauses[0][2]
    late = await queue(core, "grant", {"user_id": 4, "role_id": 5}, key="reward:1")
    assert (await statuses(core))[late][0] == "paused"  # queued behind the pause
    clock.advance(600)
    echo.script = [ActionPaused("still refused")]
    assert await worker.run_once() == 1  # one probe, not the whole key
    clock.advance(600)
    assert await worker.run_once() == 0  # the next probe waits twice as long
    clock.advance(600)
    assert await worker.run_once() == 1  # fixed: the probe succeeds, the rest follow
    assert await worker.run_once() == 2
    assert {v[0] for v in (await statuses(core)).values()} == {"done"}
    assert (await core.store.actions.status(GUILD, clock.now())).pauses == []


async def test_a_restart_retries_idempotent_actions_and_never_resends_others(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    grant = await queue(core, "grant", {"user_id": 1, "role_id": 5})
    say = await queue(core, "say", {"line": "Notch reached 100 h"}, key="server:1")
    claimed = await core.store.actions.claim_due(clock.now(), 10)
    assert {c.id for c in claimed} == {grant, say}
    for action in claimed:  # both attempts begin, then the process dies
        assert await core.store.actions.begin(action, clock.now())
    assert await core.store.actions.recover(clock.now()) == (1, 1)  # what start() does first
    found = await statuses(core)
    assert found[grant][0] == "pending" and found[say][0] == "unknown"
    assert "not sent again" in (found[say][2] or "")
    await worker.start()  # the loop carries out what is due
    try:
        for _ in range(100):
            if echo.done:
                break
            await asyncio.sleep(0.02)
        assert echo.done == [("grant", Grant(user_id=1, role_id=5))]  # the line: never twice
    finally:
        await worker.stop()


async def test_a_non_idempotent_action_is_retried_only_when_nothing_was_sent(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    before = await queue(core, "say", {"line": "one"}, key="server:1")
    during = await queue(core, "say", {"line": "two"}, key="server:1")
    echo.script = [ActionRetry("connection refused", sent=False), ActionRetry("timed out")]
    await worker.run_once()
    found = await statuses(core)
    assert found[before][0] == "pending" and found[during][0] == "unknown"
    clock.advance(30)
    await worker.run_once()
    assert echo.done == [("say", Say(line="one"))]


async def test_nothing_to_do_counts_as_done_and_a_bad_payload_fails(
    core: Core, worker: ActionWorker, echo: EchoConnector
) -> None:
    left = await queue(core, "grant", {"user_id": 1, "role_id": 5})
    bad = await queue(core, "grant", {"user_id": 1, "role_id": -3})
    echo.script = [ActionDone("Unknown Member (10007): they left the server")]
    await worker.run_once()
    found = await statuses(core)
    assert found[left] == ("done", 1, "Unknown Member (10007): they left the server")
    assert found[bad][0] == "failed" and "role_id" in (found[bad][2] or "")


async def test_privacy_export_and_delete_include_the_members_actions(
    core: Core, worker: ActionWorker
) -> None:
    await queue(core, "grant", {"user_id": 42, "role_id": 5}, user=42)
    await queue(core, "grant", {"user_id": 43, "role_id": 5}, user=43)
    exported = await core.privacy.export(GUILD, 42)
    import gzip
    import json

    data = json.loads(gzip.decompress(exported[0]))
    assert [a["action"] for a in data["actions"]] == ["grant"]
    done = await core.privacy.forget(GUILD, 42, by_member=False)
    assert done.report.removed["action_outbox"] == 1
    left = await core.store.engine.fetchall("SELECT discord_user_id FROM action_outbox")
    assert [r[0] for r in left] == [43]


HERE = 900000000000000071
GUILD_CHANNELS = {HERE: None}


async def test_actions_status_shows_counts_pauses_and_errors(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector,
    bot: Any, discord_api: Any,
) -> None:  # fmt: skip
    from tests.fakes.interactions import answer_text, command_interaction, run_command

    ask = command_interaction(bot, guild_id=GUILD, channel_id=HERE, group="actions",
                              command="status")  # fmt: skip
    await run_command(bot, ask)
    assert "Nothing has been queued yet" in answer_text(discord_api, ask)
    await queue(
        core, "grant", {"user_id": 1, "role_id": 5}, key="reward:1", user=4000000000000000042
    )
    await queue(core, "grant", {"user_id": 2, "role_id": -1}, key="reward:2")
    echo.script = [ActionPaused("Missing Permissions (50013) *for* role")]
    await worker.run_once()
    ask = command_interaction(bot, guild_id=GUILD, channel_id=HERE, group="actions",
                              command="status", locale="ru")  # fmt: skip
    await run_command(bot, ask)
    text = answer_text(discord_api, ask)
    assert "Ожидают: 0 · отправляются: 0 · приостановлены: 1 · не удались: 1" in text
    assert "`reward:1` приостановлено" in text and r"\*for\*" in text  # Discord's words, escaped
    assert "для <@4000000000000000042>" in text and r"role\_id" in text
    assert "`grant` #1" in text  # in code: no escapes shown


def test_questlog_actions_status_from_the_command_line(tmp_path: Any) -> None:
    import json

    from tests.process import cli, write_config

    config = write_config(tmp_path)
    cli(
        "link",
        "--guild",
        "1",
        "--user",
        "111111111111111111",
        "--steam",
        "76561198000000042",
        "--config",
        str(config),
        cwd=tmp_path,
    )  # fmt: skip (creates the database)
    empty = cli("actions", "status", "--config", str(config), cwd=tmp_path).stdout
    assert "no actions queued yet" in empty
    data = json.loads(
        cli("actions", "status", "--json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert data == {"counts": {}, "paused": [], "actions": []}


async def test_finished_actions_are_pruned_with_the_feed_history(
    core: Core, clock: ManualClock, worker: ActionWorker
) -> None:
    old = await queue(core, "grant", {"user_id": 1, "role_id": 5})
    await worker.run_once()
    waiting = await queue(core, "grant", {"user_id": 2, "role_id": 5}, key="reward:9")
    await core.store.engine.write(  # keep the second waiting, far in the future
        lambda c: c.execute(
            "UPDATE action_outbox SET next_attempt_at = '2999-01-01T00:00:00.000000Z' WHERE id = ?",
            (waiting,),
        )
    )
    clock.advance(91 * 86400)
    changed = (await core.pruner.run_once()).changed
    assert changed.get("actions") == 1
    left = await core.store.engine.fetchall("SELECT id FROM action_outbox")
    assert [r[0] for r in left] == [waiting] and old != waiting


async def test_queueing_validates_and_takes_idempotence_from_the_spec(
    core: Core, echo: EchoConnector
) -> None:
    with pytest.raises(SchemaError) as bad:
        await core.store.actions.queue(
            echo, Action("say", {"line": ""}), guild_id=GUILD, pause_key="s", now=core.clock.now()
        )
    assert bad.value.field == "line"
    said = await core.store.actions.queue(
        echo, Action("say", {"line": "hi"}), guild_id=GUILD, pause_key="s", now=core.clock.now()
    )
    granted = await core.store.actions.queue(
        echo, Action("grant", {"user_id": "7", "role_id": 9}), guild_id=GUILD, pause_key="r",
        now=core.clock.now(),
    )  # fmt: skip
    rows = await core.store.engine.fetchall(
        "SELECT id, idempotent, payload FROM action_outbox ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (said, 0, '{"line": "hi"}'), (granted, 1, '{"role_id": 9, "user_id": 7}'),
    ]  # fmt: skip


async def test_a_claimed_action_never_begun_is_not_lost(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    say = await queue(core, "say", {"line": "one"}, key="server:1")
    await core.store.actions.claim_due(clock.now(), 10)  # claimed, then the process stops
    assert await core.store.actions.recover(clock.now()) == (0, 0)
    await worker.run_once()
    assert (await statuses(core))[say][0] == "done" and echo.done == [("say", Say(line="one"))]


def test_upgrading_adds_an_empty_action_outbox() -> None:
    from bot.storage.engine import apply_migrations

    conn = database_at(26)
    conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, '2025-01-01', '2025-01-01')"
    )
    assert apply_migrations(conn, up_to=27) == [27]
    assert conn.execute("SELECT count(*) FROM action_outbox").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM action_pauses").fetchone() == (0,)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(action_outbox)")}
    assert {"action_outbox_due", "action_outbox_paused", "action_outbox_member"} <= indexes


async def test_a_probe_with_nothing_to_do_proves_nothing_and_the_next_is_probed(
    core: Core, clock: ManualClock, worker: ActionWorker, echo: EchoConnector
) -> None:
    a = await queue(core, "grant", {"user_id": 1, "role_id": 5})
    b = await queue(core, "grant", {"user_id": 2, "role_id": 5})
    c = await queue(core, "grant", {"user_id": 3, "role_id": 5})
    echo.script = [ActionPaused("Missing Permissions (50013)")]
    await worker.run_once()
    clock.advance(600)
    echo.script = [ActionDone("Unknown Member (10007): they left the server")]
    assert await worker.run_once() == 1  # the probe: a member who left
    found = await statuses(core)
    assert found[a][0] == "done" and found[b][0] == found[c][0] == "paused"  # still paused
    echo.script = [ActionPaused("still refused")]
    assert await worker.run_once() == 1  # the next one is probed at once, and refused
    assert {found[0] for found in (await statuses(core)).values()} == {"done", "paused"}
    assert [p[1] for p in (await core.store.actions.status(GUILD, clock.now())).pauses] == [
        "reward:1"
    ]
