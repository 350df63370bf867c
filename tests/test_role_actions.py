"""The Discord connector's role actions through the action worker and the bot's own discord.py
HTTP client, against the fake Discord REST API: a grant and a removal, Discord's refusals
(Missing Permissions, a deleted role) paused, a member who left done, a 5xx and a 429 retried."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.gateway.client import Questlog
from bot.gateway.role_actions import RoleActions
from connectors.base import Action, SchemaError
from tests.conftest import GUILD, provide_role_actions
from tests.fakes.discord import FakeDiscord

HERE = 900000000000000081
GUILD_CHANNELS = {HERE: None}
ALICE = 4000000000000000301
VETERAN, ABOVE = 1400000000000000001, 1400000000000000002


@pytest.fixture
def roles(core: Core, bot: Questlog, discord_api: FakeDiscord) -> RoleActions:
    discord_api.bot_top_role[GUILD] = 5
    return provide_role_actions(core, bot, discord_api, {VETERAN: 1, ABOVE: 9}, {ALICE: "alice"})


async def queue(core: Core, action: str, role: int, user: int = ALICE) -> int:
    payload = {"guild_id": GUILD, "user_id": user, "role_id": role, "reason": "100 h of Squad"}
    return await core.store.actions.enqueue(
        guild_id=GUILD, connector="discord", action=action, payload=payload, idempotent=True,
        pause_key=f"role:{role}", now=core.clock.now(), user_id=user,
    )  # fmt: skip


async def state(core: Core, action_id: int) -> tuple[str, str | None]:
    row = await core.store.engine.fetchone(
        "SELECT status, last_error FROM action_outbox WHERE id = ?", (action_id,)
    )
    return row[0], row[1]


async def test_a_role_is_granted_and_removed(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    granted = await queue(core, "grant_role", VETERAN)
    assert await core.actions.run_once() == 1
    assert await state(core, granted) == ("done", None)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    removed = await queue(core, "remove_role", VETERAN)
    await core.actions.run_once()
    assert await state(core, removed) == ("done", None)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()


async def test_refusals_pause_a_member_who_left_is_done_and_outages_retry(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    above = await queue(core, "grant_role", ABOVE)  # at or above the bot's top role
    deleted = await queue(core, "grant_role", 1400000000000000099)
    left = await queue(core, "grant_role", VETERAN, user=4000000000000000399)
    await core.actions.run_once()
    assert (await state(core, above))[0] == "paused"
    assert "Manage Roles" in ((await state(core, above))[1] or "")
    assert await state(core, deleted) == ("paused", "Unknown Role (10011): the role was deleted")
    assert await state(core, left) == ("done", "Unknown Member (10007): they left the server")
    discord_api.role_failures.append(503)  # discord.py does not retry a 503 by itself
    down = await queue(core, "grant_role", VETERAN)
    await core.actions.run_once()
    assert (await state(core, down))[0] == "pending"
    clock.advance(60)
    await core.actions.run_once()
    assert await state(core, down) == ("done", None)


async def test_not_connected_waits_and_a_bad_payload_names_the_field(
    core: Core, roles: RoleActions
) -> None:
    roles.http = None  # the bot is not logged in (yet)
    waiting = await queue(core, "grant_role", VETERAN)
    await core.actions.run_once()
    assert await state(core, waiting) == ("pending", "not connected to Discord yet")
    with pytest.raises(SchemaError) as bad:
        core.registry.get("discord").validate_action(
            Action("grant_role", {"guild_id": GUILD, "user_id": ALICE, "role_id": 0})
        )
    assert bad.value.field == "role_id"
    with pytest.raises(SchemaError) as extra:
        core.registry.get("discord").validate_action(
            Action("grant_role", {"guild_id": GUILD, "user_id": ALICE, "role_id": 1, "x": 1})
        )
    assert extra.value.field == "x"
