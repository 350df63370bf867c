"""/webhook: create, list, rotate and disable the server's webhook endpoints (admins only)."""

from __future__ import annotations

from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.markdown import code, escape
from bot.services.endpoint_admin import EndpointError, UnknownEndpoint
from cogs import _strings as strings


def _refused(exc: EndpointError) -> UserError:
    """The service's refusal in the member's language (``endpoint.<code>``)."""
    return UserError(f"endpoint.{exc.code}", **{k: escape(v) for k, v in exc.fields.items()})


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Webhooks(commands.GroupCog, group_name="webhook", group_description=strings.WEBHOOK_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    def _base_url(self) -> str:
        url = self.core.config.web.public_url
        if not url:
            raise UserError(strings.WEBHOOK_NO_PUBLIC_URL)
        return url

    @staticmethod
    def _guild(interaction: discord.Interaction) -> int:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        return interaction.guild_id

    @app_commands.command(name="create", description=strings.WEBHOOK_CREATE)
    @app_commands.describe(
        kind=strings.WEBHOOK_CREATE_KIND,
        secret=strings.WEBHOOK_CREATE_SECRET,
        game_id=strings.WEBHOOK_CREATE_GAME,
    )
    async def create(
        self,
        interaction: discord.Interaction,
        kind: str,
        secret: str | None = None,
        game_id: app_commands.Range[int, 1, 2**32 - 1] | None = None,
    ) -> None:
        guild_id = self._guild(interaction)
        base = self._base_url()
        try:
            endpoint = await self.core.endpoint_admin.create(
                kind=kind, guild_id=guild_id, secret=secret, game_id=game_id
            )
        except EndpointError as exc:
            raise _refused(exc) from None
        await self.core.endpoints.refresh()
        t = texts_for(interaction)
        urls = "\n".join(
            f"**{label or t(strings.WEBHOOK_URL_DEFAULT, kind=endpoint.kind)}:** <{url}>"
            for label, url in self.core.endpoint_admin.urls(endpoint, base)
        )
        await reply(
            interaction,
            t(strings.WEBHOOK_CREATED, kind=endpoint.kind, urls=urls, secret=code(endpoint.secret)),
        )

    @app_commands.command(name="list", description=strings.WEBHOOK_LIST)
    async def list(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild(interaction)
        endpoints = await self.core.endpoint_admin.list(guild_id)
        t = texts_for(interaction)
        if not endpoints:
            await reply(interaction, t(strings.WEBHOOK_NONE))
            return
        lines = [
            t(
                strings.WEBHOOK_LIST_LINE,
                path=code(e.path),
                kind=e.kind,
                game=t(strings.WEBHOOK_LIST_GAME, game_id=e.game_id)
                if e.game_id is not None
                else "",
                state=t(strings.WEBHOOK_DISABLED_STATE if e.disabled else strings.WEBHOOK_ACTIVE),
                used=discord.utils.format_dt(e.last_used_at, "R")
                if e.last_used_at
                else t(strings.WEBHOOK_NEVER_USED),
            )
            for e in endpoints
        ]
        await reply(interaction, "\n".join(lines)[:1900])

    @app_commands.command(name="rotate", description=strings.WEBHOOK_ROTATE)
    @app_commands.describe(path=strings.WEBHOOK_PATH_ARG)
    async def rotate(self, interaction: discord.Interaction, path: str) -> None:
        guild_id = self._guild(interaction)
        grace = timedelta(hours=self.core.config.webhooks.rotate_grace_hours)
        try:
            endpoint = await self.core.endpoint_admin.rotate(path, grace=grace, guild_id=guild_id)
        except UnknownEndpoint:  # another server's endpoint reads as unknown too
            raise UserError(strings.WEBHOOK_UNKNOWN) from None
        except EndpointError as exc:
            raise _refused(exc) from None
        await self.core.endpoints.refresh()
        until = endpoint.previous_secret_expires_at or self.core.clock.now()
        await reply(
            interaction,
            texts_for(interaction)(
                strings.WEBHOOK_ROTATED,
                path=code(path),
                secret=code(endpoint.secret),
                until=discord.utils.format_dt(until),
            ),
        )

    @app_commands.command(name="disable", description=strings.WEBHOOK_DISABLE)
    @app_commands.describe(path=strings.WEBHOOK_PATH_ARG)
    async def disable(self, interaction: discord.Interaction, path: str) -> None:
        guild_id = self._guild(interaction)
        try:
            await self.core.endpoint_admin.disable(path, guild_id=guild_id)
        except UnknownEndpoint:
            raise UserError(strings.WEBHOOK_UNKNOWN) from None
        await self.core.endpoints.refresh()
        await reply(interaction, texts_for(interaction)(strings.WEBHOOK_DISABLED, path=code(path)))

    @create.autocomplete("kind")
    async def _kinds(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The kinds the connectors declare (a new source adds its own)."""
        return [
            app_commands.Choice(name=f"{name} ({description})"[:100], value=name)
            for name, description in self.core.endpoint_admin.kind_choices()
            if current.lower() in name
        ][:25]

    @rotate.autocomplete("path")
    @disable.autocomplete("path")
    async def _paths(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        guild_id = interaction.guild_id
        endpoints = await self.core.endpoint_admin.list(guild_id)
        return [
            app_commands.Choice(name=f"{e.kind} · {e.path[:12]}…", value=e.path)
            for e in endpoints
            if not e.disabled and current.lower() in e.path.lower()
        ][:25]


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Webhooks(bot))
