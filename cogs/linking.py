"""/link, /unlink, /links for players; /admin link and /admin unlink for admins."""

from __future__ import annotations

import uuid

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply
from bot.markdown import escape
from bot.services.accounts import (
    LinkConflict,
    LinkError,
    create_link_code,
    link_account,
    links_of,
    parse_steam_input,
    unlink_accounts,
)
from cogs import _strings as strings
from connectors.steam import NotConfigured, SteamError, VanityNotFound

SOURCES = [
    app_commands.Choice(name="Steam", value="steam"),
    app_commands.Choice(name="Minecraft", value="minecraft"),
]
LABELS = {"steam": "Steam", "minecraft": "Minecraft"}


def _guild(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserError("This command works only in a server.")
    return interaction.guild_id


class Linking(commands.Cog):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    async def _steam_account(self, text: str) -> tuple[str, str | None, str | None, bool]:
        """(steam id, persona name, status, checked) for what the member typed."""
        try:
            given = parse_steam_input(text)
        except LinkError as exc:
            raise UserError(str(exc)) from None
        steam = self.core.steam
        steam_id = given.steam_id
        if steam_id is None:
            assert given.vanity is not None
            try:
                steam_id = await steam.resolve_vanity(given.vanity)
            except VanityNotFound:
                raise UserError(strings.STEAM_VANITY_UNKNOWN.format(name=given.vanity)) from None
            except NotConfigured:
                raise UserError(strings.STEAM_NEEDS_ID) from None
            except SteamError:
                raise UserError(strings.STEAM_BUSY) from None
            if not steam_id.startswith("7656119"):
                raise UserError(strings.STEAM_NOT_A_PROFILE)
        try:
            summary = (await steam.get_player_summaries([steam_id])).get(steam_id)
        except SteamError:  # not configured, busy, bad key: link without the check
            return steam_id, None, None, False
        if summary is None:
            raise UserError(strings.STEAM_NO_PROFILE.format(steam_id=steam_id))
        return steam_id, summary.persona_name, None if summary.public else "private_profile", True

    link = app_commands.Group(name="link", description=strings.LINK_GROUP, guild_only=True)

    @link.command(name="steam", description=strings.LINK_STEAM)
    @app_commands.describe(profile=strings.LINK_STEAM_ARG)
    async def link_steam(self, interaction: discord.Interaction, profile: str) -> None:
        guild_id = _guild(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)  # Steam may be slow
        steam_id, name, status, checked = await self._steam_account(profile)
        now = self.core.clock.now()
        try:
            await self.core.db.write(
                lambda c: link_account(
                    c,
                    guild_id=guild_id,
                    discord_user_id=interaction.user.id,
                    source="steam",
                    external_id=steam_id,
                    now=now,
                    display_name=name,
                    status=status,
                )
            )
            self.core.scheduler.links_changed("steam")
        except LinkConflict:
            raise UserError(strings.LINK_TAKEN) from None
        text = strings.STEAM_LINKED.format(name=escape(name or steam_id), steam_id=steam_id)
        if status == "private_profile":
            text += strings.STEAM_LINKED_PRIVATE
        elif not checked:
            text += strings.STEAM_LINKED_UNCHECKED
        await reply(interaction, text)

    @link.command(name="minecraft", description=strings.LINK_MINECRAFT)
    async def link_minecraft(self, interaction: discord.Interaction) -> None:
        guild_id = _guild(interaction)
        now = self.core.clock.now()
        code, _ = await self.core.db.write(
            lambda c: create_link_code(
                c,
                guild_id=guild_id,
                discord_user_id=interaction.user.id,
                source="minecraft",
                now=now,
            )
        )
        await reply(interaction, strings.MINECRAFT_CODE.format(code=code))

    @app_commands.command(name="unlink", description=strings.UNLINK)
    @app_commands.describe(source=strings.SOURCE_ARG)
    @app_commands.choices(source=SOURCES)
    @app_commands.guild_only()
    async def unlink(
        self, interaction: discord.Interaction, source: app_commands.Choice[str]
    ) -> None:
        guild_id = _guild(interaction)
        removed = await self.core.db.write(
            lambda c: unlink_accounts(
                c, guild_id=guild_id, discord_user_id=interaction.user.id, source=source.value
            )
        )
        self.core.scheduler.links_changed(source.value)
        template = strings.UNLINKED if removed else strings.NOTHING_TO_UNLINK
        await reply(interaction, template.format(source=LABELS[source.value]))

    @app_commands.command(name="links", description=strings.LINKS)
    @app_commands.describe(member=strings.LINKS_MEMBER_ARG)
    @app_commands.guild_only()
    async def links(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        guild_id = _guild(interaction)
        target = member or interaction.user
        found = await self.core.db.read(
            lambda c: links_of(c, guild_id=guild_id, discord_user_id=target.id)
        )
        if not found:
            who = "You have" if target.id == interaction.user.id else f"{target.mention} has"
            await reply(interaction, strings.NO_LINKS.format(who=who))
            return
        lines = []
        for item in found:
            flags = " ✅ verified" if item.verified else ""
            if item.status == "private_profile":
                flags += " · private profile"
            name = f"{escape(item.display_name)} " if item.display_name else ""
            lines.append(
                strings.LINK_LINE.format(
                    source=LABELS.get(item.source, item.source),
                    name=name,
                    external_id=item.external_id,
                    flags=flags,
                )
            )
        if any(item.source == "steam" and item.status == "private_profile" for item in found):
            lines.append(strings.STEAM_PRIVATE_HINT)
        await reply(interaction, "\n".join(lines))

    admin = app_commands.Group(
        name="admin",
        description=strings.ADMIN_GROUP,
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @admin.command(name="link", description=strings.ADMIN_LINK)
    @app_commands.describe(account=strings.ADMIN_ACCOUNT_ARG, source=strings.SOURCE_ARG)
    @app_commands.choices(source=SOURCES)
    async def admin_link(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        source: app_commands.Choice[str],
        account: str,
    ) -> None:
        guild_id = _guild(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = status = None
        if source.value == "steam":
            external_id, name, status, _checked = await self._steam_account(account)
        else:
            try:
                external_id = str(uuid.UUID(account.strip()))
            except ValueError:
                raise UserError(strings.BAD_MINECRAFT_UUID) from None
        now = self.core.clock.now()
        await self.core.db.write(
            lambda c: link_account(
                c,
                guild_id=guild_id,
                discord_user_id=member.id,
                source=source.value,
                external_id=external_id,
                now=now,
                display_name=name,
                status=status,
                reassign=True,
            )
        )
        self.core.scheduler.links_changed(source.value)
        await reply(
            interaction,
            strings.ADMIN_LINKED.format(
                source=LABELS[source.value], external_id=external_id, member=member.mention
            ),
        )

    @admin.command(name="unlink", description=strings.ADMIN_UNLINK)
    @app_commands.describe(source=strings.SOURCE_ARG)
    @app_commands.choices(source=SOURCES)
    async def admin_unlink(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        source: app_commands.Choice[str],
    ) -> None:
        guild_id = _guild(interaction)
        removed = await self.core.db.write(
            lambda c: unlink_accounts(
                c, guild_id=guild_id, discord_user_id=member.id, source=source.value
            )
        )
        self.core.scheduler.links_changed(source.value)
        label = LABELS[source.value]
        if removed:
            await reply(
                interaction, strings.UNLINKED_MEMBER.format(member=member.mention, source=label)
            )
        else:
            await reply(interaction, strings.NOTHING_TO_UNLINK.format(source=label))


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Linking(bot))
