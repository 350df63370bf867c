"""/privacy off|on|delete and /admin forget through the real command tree, with Login with
Discord connected against the fake Discord: the role connection is cleared (DELETE, or an empty
PUT when Discord refuses the DELETE) and the grant revoked before the rows go."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from bot.gateway.client import Questlog
from cogs._views import ConfirmView
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    answer_text,
    answers,
    command_interaction,
    component_interaction,
    run_command,
    sent_view,
)
from tests.test_linked_roles import config_data, connect
from tests.test_stats import A_STEAM, ALICE, BOB, seed

__all__ = ["config_data"]  # the fixture (OAuth and Linked Roles against the fake), by name

HERE = 900000000000000031
GUILD_CHANNELS = {HERE: None}


async def command(
    bot: Questlog,
    fake: FakeDiscord,
    name: str,
    user: int,
    group: str = "privacy",
    locale: str = "en-US",
    **options: Any,
) -> tuple[Any, str]:
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group=group, command=name, user_id=user,
        options=[{"name": k, "type": 3, "value": v} for k, v in options.items()], locale=locale,
    )  # fmt: skip
    await run_command(bot, interaction)
    return interaction, answer_text(fake, interaction)


async def press(bot: Questlog, fake: FakeDiscord, user: int, button: str = "confirm") -> str:
    view = sent_view(bot, ConfirmView)
    click = component_interaction(bot, guild_id=GUILD, channel_id=HERE, custom_id="x", user_id=user)
    assert await view.interaction_check(click)
    await getattr(view, button).callback(click)
    return "\n".join(a["data"].get("content") or "" for a in answers(fake, click))


async def connected(core: Core, client: TestClient, clock: ManualClock) -> None:
    await seed(core, clock)
    assert core.roles is not None and await core.roles.register()
    await connect(client)  # Alice approves Linked Roles: tokens stored, values pushed
    assert await core.store.tokens.get(ALICE) is not None


async def test_privacy_delete_asks_first_then_ends_the_sign_in_and_forgets(
    core: Core, client: TestClient, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await connected(core, client, clock)
    assert ALICE in discord_api.oauth.role_connections
    asked, text = await command(bot, discord_api, "delete", ALICE)
    assert "cannot be undone" in text
    [answer] = answers(discord_api, asked)
    assert answer["data"]["flags"] & 64  # ephemeral
    assert (await core.store.privacy.summary(GUILD, ALICE)).links  # nothing gone yet
    other = component_interaction(bot, guild_id=GUILD, channel_id=HERE, custom_id="x", user_id=BOB)
    assert not await sent_view(bot, ConfirmView).interaction_check(other)  # only the asker

    said = await press(bot, discord_api, ALICE)
    assert "Deleted:" in said and "Linked Roles values cleared" in said
    names = [name for name, user, _ in discord_api.oauth.calls if user == ALICE]
    assert names[-1] == "role_connection.delete"
    assert ALICE not in discord_api.oauth.role_connections
    assert discord_api.oauth.revoked  # the grant was revoked with Discord
    assert await core.store.tokens.get(ALICE) is None
    assert (await core.store.privacy.summary(GUILD, ALICE)).links == []
    _, again = await command(bot, discord_api, "delete", ALICE)
    assert "stores nothing about you" in again


async def test_a_refused_delete_falls_back_to_an_empty_role_connection(
    core: Core, client: TestClient, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await connected(core, client, clock)
    discord_api.oauth.script("role_connection", 405)
    await command(bot, discord_api, "delete", ALICE)
    said = await press(bot, discord_api, ALICE)
    assert "Linked Roles values cleared" in said
    mine = [(name, body) for name, user, body in discord_api.oauth.calls if user == ALICE]
    assert [name for name, _ in mine[-2:]] == ["role_connection.delete", "role_connection.put"]
    assert mine[-1][1] == {"platform_name": "Questlog", "metadata": {}}
    assert discord_api.oauth.revoked


async def test_discord_down_still_deletes_and_says_how_to_remove_the_app(
    core: Core, client: TestClient, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await connected(core, client, clock)
    discord_api.oauth.script("role_connection", 503, 503)
    await command(bot, discord_api, "delete", ALICE)
    said = await press(bot, discord_api, ALICE)
    assert "Authorized Apps" in said
    assert await core.store.tokens.get(ALICE) is None
    assert (await core.store.privacy.summary(GUILD, ALICE)).links == []


async def test_cancel_deletes_nothing(
    core: Core, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    _, asked = await command(bot, discord_api, "delete", ALICE, locale="ru")
    assert "Это нельзя отменить" in asked
    said = await press(bot, discord_api, ALICE, "cancel")
    assert "Ничего не удалено" in said
    assert (await core.store.privacy.summary(GUILD, ALICE)).links


async def test_admin_forget_takes_a_user_id_and_confirms(
    core: Core, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from tests.fakes.interactions import ADMIN_ID

    await seed(core, clock)
    _, bad = await command(bot, discord_api, "forget", ADMIN_ID, group="admin", user_id="alice")
    assert "not a Discord user id" in bad
    _, nothing = await command(
        bot, discord_api, "forget", ADMIN_ID, group="admin", user_id="4000000000000000999"
    )
    assert "stores nothing about `4000000000000000999`" in nothing
    # The seed's ids are small; a real one has 17 to 20 digits, as the mention form too.
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE account_links SET discord_user_id = 4000000000000000011 WHERE discord_user_id = ?",
            (ALICE,),
        )
    )
    _, text = await command(
        bot, discord_api, "forget", ADMIN_ID, group="admin", user_id="<@4000000000000000011>"
    )
    assert "Forget <@4000000000000000011>" in text and "1 linked accounts" in text
    said = await press(bot, discord_api, ADMIN_ID)
    assert "Forgot `4000000000000000011`" in said
    assert (await core.store.privacy.summary(GUILD, 4000000000000000011)).links == []
    assert A_STEAM not in str(await core.store.engine.fetchall("SELECT * FROM account_links"))


async def test_presence_choices_and_the_guild_default(
    core: Core, bot: Questlog, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from tests.fakes.interactions import ADMIN_ID

    await seed(core, clock)
    _, shown = await command(bot, discord_api, "settings", ADMIN_ID, group="admin")
    assert "Presence playtime for members who did not choose: **off**" in shown
    assert "does not collect presence at all" in shown  # [presence] enabled is off here
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="admin", command="settings",
        user_id=ADMIN_ID, options=[{"name": "presence_default", "type": 5, "value": True}],
    )  # fmt: skip
    await run_command(bot, interaction)
    assert "Presence playtime is now on" in answer_text(discord_api, interaction)
    assert await core.privacy.presence_default(GUILD)
    _, mine = await command(bot, discord_api, "show", ALICE)
    assert "Discord presence (what you play): counted (this server's default)" in mine
    on = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="privacy", command="presence",
        user_id=ALICE, options=[{"name": "off", "type": 1, "options": []}], locale="ru",
    )  # fmt: skip
    await run_command(bot, on)
    assert "больше не учитывает" in answer_text(discord_api, on)
    assert (await core.store.privacy.choice(GUILD, ALICE)).presence is False
    _, mine = await command(bot, discord_api, "show", ALICE)
    assert "not counted (your choice)" in mine
    assert not await core.store.presence.consent(GUILD, ALICE)
