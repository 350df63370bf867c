"""/rewards through real interactions: the checks before a reward is saved (Manage Roles, a
role the bot can give, a role the admin could give), the reply, /rewards list with a paused
reward, /rewards preview and /rewards remove, in English and Russian."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.core import Core
from bot.gateway.client import Questlog
from bot.gateway.role_actions import RoleActions
from tests.conftest import GUILD, provide_role_actions
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    ALL_TEXT,
    add_guild,
    answer_text,
    command_interaction,
    role_payload,
    run_command,
)
from tests.test_rewards import ALICE, ALICE_STEAM, BOB, BOB_STEAM, SQUAD, bm, link, run_actions

HERE = 900000000000000093
GUILD_CHANNELS = {HERE: None}
VETERAN, HIGH, BOOSTER = 1400000000000000021, 1400000000000000022, 1400000000000000023
ROLES = [
    role_payload(VETERAN, "Veteran", 2),
    role_payload(HIGH, "Moderators", 7),  # above the bot's role (5)
    role_payload(BOOSTER, "Server Booster", 3, managed=True),
]
MANAGER = discord.Permissions(manage_guild=True, manage_roles=True)
PLAYER = 4000000000000000499


def cache_guild(bot: Questlog, *, manage_roles: bool = True) -> None:
    permissions = discord.Permissions(ALL_TEXT.value)
    permissions.manage_roles = manage_roles
    add_guild(bot, GUILD, GUILD_CHANNELS, bot_permissions=permissions, roles=ROLES,
              bot_position=5)  # fmt: skip


@pytest.fixture
def roles(core: Core, bot: Questlog, discord_api: FakeDiscord) -> RoleActions:
    cache_guild(bot)
    discord_api.bot_top_role[GUILD] = 5
    return provide_role_actions(
        core, bot, discord_api, {VETERAN: 2, HIGH: 7, BOOSTER: 3}, {ALICE: "alice", BOB: "bob"}
    )


async def rewards(
    bot: Questlog,
    discord_api: FakeDiscord,
    command: str,
    *,
    role: int | None = None,
    user_id: int | None = None,
    locale: str = "en-US",
    **options: Any,
) -> str:
    kinds = {"hours": 4, "game": 3, "period": 3, "source": 3, "mode": 3, "reward": 4,
             "keep_roles": 5, "squad_group": 3, "squad_permissions": 3, "count": 3}  # fmt: skip
    opts = [{"name": k, "type": kinds[k], "value": v} for k, v in options.items()]
    resolved = None
    if role is not None:
        opts.append({"name": "role", "type": 8, "value": str(role)})
        data = next(r for r in ROLES if r["id"] == str(role))
        resolved = {"roles": {str(role): data}}
    extra: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="rewards", command=command, options=opts,
        resolved=resolved, member_permissions=MANAGER, locale=locale, **extra,
    )  # fmt: skip
    await run_command(bot, interaction)
    return answer_text(discord_api, interaction)


async def test_a_role_the_bot_cannot_give_is_refused_with_the_reason(
    core: Core, bot: Questlog, discord_api: FakeDiscord, roles: RoleActions
) -> None:
    cache_guild(bot, manage_roles=False)
    text = await rewards(bot, discord_api, "add", hours=100, role=VETERAN)
    assert "**Manage Roles**" in text
    cache_guild(bot)
    text = await rewards(bot, discord_api, "add", hours=100, role=HIGH)
    assert f"<@&{HIGH}> is at or above my highest role (<@&{GUILD + 1}>)" in text
    text = await rewards(bot, discord_api, "add", hours=100, role=BOOSTER)
    assert "managed by an integration" in text
    ru = await rewards(bot, discord_api, "add", hours=100, role=HIGH, locale="ru")
    assert "не ниже моей высшей роли" in ru
    text = await rewards(bot, discord_api, "add", hours=100, role=VETERAN, game="nosuchgame")
    assert "I know no game nosuchgame" in text
    assert await core.rewards.rewards(GUILD) == []  # nothing was saved


async def test_a_member_cannot_reward_a_role_above_their_own(
    core: Core, bot: Questlog, discord_api: FakeDiscord, roles: RoleActions
) -> None:
    text = await rewards(bot, discord_api, "add", hours=100, role=VETERAN, user_id=PLAYER)
    assert "at or above your highest role" in text
    assert await core.rewards.rewards(GUILD) == []


async def test_add_list_preview_and_remove(
    core: Core, bot: Questlog, discord_api: FakeDiscord, roles: RoleActions
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM)
    await bm(core, ALICE_STEAM, 150, "a")
    await bm(core, BOB_STEAM, 20, "b")
    preview = await rewards(bot, discord_api, "preview", hours=100, game=SQUAD)
    assert preview.strip().splitlines() == ["1 member would get it now:", f"<@{ALICE}> · 150 h"]
    text = await rewards(bot, discord_api, "add", hours=100, role=VETERAN, game=SQUAD)
    assert (
        text.strip().splitlines()[0].startswith(f"Reward #1 added: <@&{VETERAN}> for 100 hours in")
    )
    assert "1 member already qualifies" in text
    await core.rewards.settled()
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    listed = await rewards(bot, discord_api, "list")
    assert "**#1**" in listed and "held by 1 member" in listed
    ru = await rewards(bot, discord_api, "list", locale="ru")
    assert "получили: 1 участник" in ru and "· всё время ·" in ru
    del discord_api.guild_roles[GUILD][VETERAN]  # deleted in Discord
    await bm(core, BOB_STEAM, 101, "c")
    await run_actions(core)
    listed = await rewards(bot, discord_api, "list")
    assert "⏸️ paused" in listed and "Unknown Role \\(10011\\)" in listed
    status_interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="actions", command="status",
        member_permissions=MANAGER,
    )  # fmt: skip
    await run_command(bot, status_interaction)
    assert "reward:1" in answer_text(discord_api, status_interaction)
    removed = await rewards(bot, discord_api, "remove", reward=1)
    assert "Reward #1 removed" in removed and "2 members" in removed
    assert "no reward #1" in await rewards(bot, discord_api, "remove", reward=1)
    assert "no rewards yet" in await rewards(bot, discord_api, "list")


async def test_a_reward_may_count_the_total_time(
    core: Core, bot: Questlog, discord_api: FakeDiscord, roles: RoleActions
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await bm(core, ALICE_STEAM, 150, "a")
    preview = await rewards(bot, discord_api, "preview", hours=100, game=SQUAD, count="total")
    assert preview.strip().splitlines() == ["1 member would get it now:", f"<@{ALICE}> · 150 h"]
    text = await rewards(bot, discord_api, "add", hours=100, role=VETERAN, count="total")
    assert text.strip().splitlines()[0].endswith(" · stack · AFK and idle time included.")
    [reward] = await core.store.rewards.list(GUILD)
    assert reward.counting == "total"
    listed = await rewards(bot, discord_api, "list")
    assert "· AFK and idle time included" in listed
    assert "· с AFK и бездействием" in await rewards(bot, discord_api, "list", locale="ru")


async def test_a_reward_of_a_squad_group_needs_no_role(
    core: Core, bot: Questlog, discord_api: FakeDiscord, roles: RoleActions
) -> None:
    text = await rewards(bot, discord_api, "add", hours=100)
    assert "needs a role, a Squad group, or both" in text
    text = await rewards(
        bot, discord_api, "add", hours=100, squad_group="Regulars",
        squad_permissions="reserve,cameraman",
    )  # fmt: skip
    assert "Reward #1 added: Squad group `Regulars` (reserve,cameraman) for 100 hours" in text
    text = await rewards(
        bot, discord_api, "add", hours=50, role=VETERAN, squad_group="Veterans", locale="ru"
    )
    assert f"<@&{VETERAN}> + группа Squad `Veterans` (reserve)" in text
    text = await rewards(
        bot, discord_api, "add", hours=10, squad_group="Bad", squad_permissions="god"
    )
    assert "god is not a Squad permission" in text
    assert len(await core.rewards.rewards(GUILD)) == 2
