"""Real discord.Interaction objects for cog tests.

A guild payload is added to the bot's cache (as a GUILD_CREATE would), so channel permissions
are computed by discord.py itself; an interaction payload is built the way Discord sends it and
dispatched through the bot's real CommandTree, so checks, option transformers and the error
handler all run. Answers go to the fake Discord API (its ``interactions`` record)."""

from __future__ import annotations

import itertools
from typing import Any

import discord

from tests.fakes.discord import BOT_USER_ID

_ids = itertools.count(1500000000000000000)
ADMIN_ID = 4000000000000000001
PLAYER_ID = 4000000000000000002

MANAGER = discord.Permissions(manage_guild=True)
ALL_TEXT = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, read_message_history=True
)


def user_payload(user_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
    }


def role_payload(
    role_id: int, name: str, position: int, *, managed: bool = False
) -> dict[str, Any]:
    """A role as Discord sends it (the bot's own role is at position 1)."""
    return {
        "id": str(role_id), "name": name, "permissions": "0", "position": position, "color": 0,
        "hoist": False, "managed": managed, "mentionable": False, "flags": 0,
    }  # fmt: skip


def add_guild(
    bot: discord.Client,
    guild_id: int,
    channels: dict[int, discord.Permissions | None],
    *,
    bot_permissions: discord.Permissions = ALL_TEXT,
    roles: list[dict[str, Any]] | None = None,
    bot_position: int = 1,
) -> discord.Guild:
    """Cache a guild with text channels (and more roles, the bot's at ``bot_position``), as a
    GUILD_CREATE would."""
    data = guild_payload(guild_id, channels, bot_permissions=bot_permissions)
    data["roles"][1]["position"] = bot_position
    data["roles"] += roles or []
    return bot._connection._add_guild_from_data(data)


def guild_payload(
    guild_id: int,
    channels: dict[int, discord.Permissions | None],
    *,
    bot_permissions: discord.Permissions = ALL_TEXT,
) -> dict[str, Any]:
    """A GUILD_CREATE payload with text channels. A channel mapped to Permissions gets an
    overwrite that sets exactly those for the bot's role; None keeps the guild-wide ones."""
    bot_role = guild_id + 1
    channel_payloads = []
    for position, (channel_id, allowed) in enumerate(channels.items()):
        overwrites = []
        if allowed is not None:
            denied = discord.Permissions(~allowed.value & discord.Permissions.all().value)
            overwrites.append(
                {
                    "id": str(bot_role),
                    "type": 0,
                    "allow": str(allowed.value),
                    "deny": str(denied.value),
                }
            )
        channel_payloads.append(
            {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": f"channel-{position}",
                "position": position,
                "permission_overwrites": overwrites,
                "nsfw": False,
                "parent_id": None,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
            }
        )
    return {
        "id": str(guild_id),
        "name": "Test server",
        "owner_id": str(ADMIN_ID),
        "icon": None,
        "features": [],
        "emojis": [],
        "stickers": [],
        "roles": [
            {
                "id": str(guild_id),
                "name": "@everyone",
                "permissions": "0",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
            {
                "id": str(bot_role),
                "name": "Questlog",
                "permissions": str(bot_permissions.value),
                "position": 1,
                "color": 0,
                "hoist": False,
                "managed": True,
                "mentionable": False,
                "flags": 0,
            },
        ],
        "channels": channel_payloads,
        "members": [
            {
                "user": {**user_payload(BOT_USER_ID, "Questlog"), "bot": True},
                "roles": [str(bot_role)],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        ],
        "member_count": 2,
        "large": False,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "system_channel_flags": 0,
    }


def _member(user_id: int, permissions: discord.Permissions) -> dict[str, Any]:
    """The interaction's member, as Discord sends it (with their permissions in the channel)."""
    return {
        "user": user_payload(user_id, "admin" if user_id == ADMIN_ID else "player"),
        "roles": [],
        "permissions": str(permissions.value),
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def _payload(
    kind: int,
    *,
    guild_id: int,
    channel_id: int,
    member: dict[str, Any],
    data: dict[str, Any],
    locale: str,
    guild_locale: str = "en-US",
    **extra: Any,
) -> dict[str, Any]:
    """An interaction as Discord sends it (type 2 command, 3 component, 5 modal submit)."""
    interaction_id = next(_ids)
    return {
        "id": str(interaction_id),
        "application_id": str(BOT_USER_ID),
        "type": kind,
        "token": f"token-{interaction_id}",
        "version": 1,
        "guild_id": str(guild_id),
        "channel_id": str(channel_id),
        "channel": {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "here"},
        "member": member,
        "data": data,
        **extra,
        "app_permissions": str(ALL_TEXT.value),
        "attachment_size_limit": 10 * 1024 * 1024,
        "locale": locale,
        "guild_locale": guild_locale,
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild_id)},
        "context": 0,
    }


def command_interaction(
    bot: discord.Client,
    *,
    guild_id: int,
    channel_id: int,
    group: str | None,
    command: str,
    options: list[dict[str, Any]] | None = None,
    resolved: dict[str, Any] | None = None,
    user_id: int = ADMIN_ID,
    member_permissions: discord.Permissions = MANAGER,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> discord.Interaction:
    payload = _payload(
        2,
        guild_id=guild_id,
        channel_id=channel_id,
        member=_member(user_id, member_permissions),
        data={
            "id": "1",
            "name": group or command,
            "type": 1,
            "options": [{"name": command, "type": 1, "options": options or []}]
            if group
            else options or [],
            **({"resolved": resolved} if resolved else {}),
        },
        locale=locale,
        guild_locale=guild_locale,
    )
    return discord.Interaction(data=payload, state=bot._connection)


async def run_command(bot: discord.Client, interaction: discord.Interaction) -> None:
    """Dispatch through the real CommandTree (checks, transformers, error handler)."""
    await bot.tree._call(interaction)


def member_option(name: str, user_id: int, guild_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """An option naming a member, with the "resolved" data Discord sends along."""
    option = {"name": name, "type": 6, "value": str(user_id)}
    resolved = {
        "users": {str(user_id): user_payload(user_id, f"member-{str(user_id)[-3:]}")},
        "members": {
            str(user_id): {
                "roles": [],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "flags": 0,
                "permissions": "0",
                "deaf": False,
                "mute": False,
            }
        },
    }
    return option, resolved


def answers(fake: Any, interaction: discord.Interaction) -> list[dict[str, Any]]:
    return fake.interactions.get(interaction.token, [])


def answer_text(fake: Any, interaction: discord.Interaction) -> str:
    return "\n".join(a["data"].get("content") or "" for a in answers(fake, interaction))


def component_interaction(
    bot: discord.Client,
    *,
    guild_id: int,
    channel_id: int,
    custom_id: str,
    user_id: int,
    locale: str = "en-US",
) -> discord.Interaction:
    """A button press (type 3) on an ephemeral message the bot sent, as Discord sends it."""
    message = {
        "id": str(next(_ids)),
        "channel_id": str(channel_id),
        "author": user_payload(BOT_USER_ID, "questlog"),
        "content": "",
        "timestamp": "2025-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 64,
        "components": [],
    }
    payload = _payload(
        3,
        guild_id=guild_id,
        channel_id=channel_id,
        member=_member(user_id, discord.Permissions.none()),
        data={"custom_id": custom_id, "component_type": 2},
        locale=locale,
        message=message,
    )
    return discord.Interaction(data=payload, state=bot._connection)


def sent_modal(fake: Any, interaction: discord.Interaction) -> dict[str, Any]:
    """The form the bot answered an interaction with (callback type 9)."""
    (answer,) = answers(fake, interaction)
    assert answer["type"] == 9, f"answered with type {answer['type']}, not a modal"
    return answer["data"]


async def submit_modal(
    bot: discord.Client,
    form: dict[str, Any],
    values: list[str],
    *,
    guild_id: int,
    channel_id: int,
    user_id: int = ADMIN_ID,
    locale: str = "en-US",
) -> discord.Interaction:
    """A member filling in a form the bot sent and pressing Submit (interaction type 5, with
    the text inputs' values in its rows, as Discord sends it), dispatched to the modal that
    discord.py keeps for it, and awaited."""
    inputs = [inner for row in form["components"] for inner in row["components"]]
    components = [
        {"type": 1, "components": [{"type": 4, "custom_id": item["custom_id"], "value": value}]}
        for item, value in zip(inputs, values, strict=True)
    ]
    payload = _payload(
        5,
        guild_id=guild_id,
        channel_id=channel_id,
        member=_member(user_id, MANAGER),
        data={"custom_id": form["custom_id"], "components": components},
        locale=locale,
    )
    interaction = discord.Interaction(data=payload, state=bot._connection)
    store = bot._connection._view_store  # type: ignore[attr-defined]
    modal = store._modals[form["custom_id"]]
    await modal._dispatch_submit(interaction, components, {})
    return interaction


def sent_view(bot: discord.Client, kind: type[discord.ui.View]) -> Any:
    """The newest live view of this class the bot sent (discord.py's own view store)."""
    found = [
        item.view
        for items in bot._connection._view_store._views.values()  # type: ignore[attr-defined]
        for item in items.values()
        if isinstance(item.view, kind)
    ]
    assert found, f"no {kind.__name__} was sent"
    return found[-1]
