"""/webhook: create, list, rotate and disable the server's webhook endpoints (admins only)."""

from __future__ import annotations

from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import Core
from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.i18n import Texts
from bot.markdown import code, escape
from bot.services.console_admin import MAX_PASSWORD
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
        if endpoint.secret is None:  # a kind nobody signs for (Squad's admin list)
            said = t(strings.WEBHOOK_CREATED_UNSIGNED, kind=endpoint.kind, urls=urls)
        else:
            said = t(
                strings.WEBHOOK_CREATED, kind=endpoint.kind, urls=urls, secret=code(endpoint.secret)
            )
        await reply(interaction, said)

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

    @app_commands.command(name="rcon", description=strings.WEBHOOK_RCON)
    @app_commands.describe(
        path=strings.WEBHOOK_PATH_ARG,
        game=strings.WEBHOOK_RCON_GAME,
        host=strings.WEBHOOK_RCON_HOST,
        port=strings.WEBHOOK_RCON_PORT,
        announce=strings.WEBHOOK_RCON_ANNOUNCE,
    )
    @app_commands.choices(
        game=[
            strings.choice("choice.minecraft", "minecraft"),
            strings.choice("choice.squad", "squad"),
        ]
    )
    async def rcon(
        self,
        interaction: discord.Interaction,
        path: str,
        game: str,
        host: app_commands.Range[str, 1, 253],
        port: app_commands.Range[int, 1, 65535],
        announce: bool = True,
    ) -> None:
        """The password is typed into a modal: a slash command's options show in the
        client's history and reach Discord's logs as plain text."""
        guild_id = self._guild(interaction)
        try:
            await self.core.endpoint_admin.find(path, guild_id=guild_id)
        except UnknownEndpoint:
            raise UserError(strings.WEBHOOK_UNKNOWN) from None
        modal = ConsolePassword(
            self.core, texts_for(interaction), path=path, game=game, host=host, port=port,
            announce=announce, guild_id=guild_id,
        )  # fmt: skip
        await interaction.response.send_modal(modal)

    @app_commands.command(name="rcon-remove", description=strings.WEBHOOK_RCON_REMOVE)
    @app_commands.describe(path=strings.WEBHOOK_PATH_ARG)
    async def rcon_remove(self, interaction: discord.Interaction, path: str) -> None:
        guild_id = self._guild(interaction)
        try:
            removed = await self.core.consoles.remove(path, guild_id=guild_id)
        except UnknownEndpoint:
            raise UserError(strings.WEBHOOK_UNKNOWN) from None
        t = texts_for(interaction)
        message = strings.WEBHOOK_RCON_REMOVED if removed else strings.WEBHOOK_RCON_NONE
        await reply(interaction, t(message, path=code(path)))

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
    @rcon.autocomplete("path")
    @rcon_remove.autocomplete("path")
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


class ConsolePassword(discord.ui.Modal):
    """The RCON password, typed where Discord does not keep it; saved sealed, then a log-in
    is tried so the admin learns at once whether the settings work."""

    def __init__(
        self,
        core: Core,
        t: Texts,
        *,
        path: str,
        game: str,
        host: str,
        port: int,
        announce: bool,
        guild_id: int,
    ) -> None:
        super().__init__(title=t(strings.WEBHOOK_RCON_MODAL_TITLE)[:45], timeout=600)
        self.core, self.t = core, t
        self.settings = {"path": path, "game": game, "host": host, "port": port,
                         "announce": announce, "guild_id": guild_id}  # fmt: skip
        self.password: discord.ui.TextInput[ConsolePassword] = discord.ui.TextInput(
            label=t(strings.WEBHOOK_RCON_MODAL_PASSWORD)[:45],
            style=discord.TextStyle.short,
            required=True,
            max_length=MAX_PASSWORD,
        )
        self.add_item(self.password)

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        t = self.t
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            settings = await self.core.consoles.set(password=self.password.value, **self.settings)  # type: ignore[arg-type]
        except UnknownEndpoint:
            await reply(interaction, t(strings.WEBHOOK_UNKNOWN))
            return
        except EndpointError as exc:
            refused = _refused(exc)
            await reply(interaction, t(refused.msgid, **refused.fields))
            return
        problem = await self.core.consoles.check(settings.endpoint_id)
        where = code(f"{settings.host}:{settings.port}")
        said = t(
            strings.WEBHOOK_RCON_SAVED if settings.announce else strings.WEBHOOK_RCON_SAVED_QUIET,
            where=where,
            game=t(f"game.{settings.game}"),
        )
        if problem is None:
            said += "\n" + t(strings.WEBHOOK_RCON_WORKS)
        else:
            said += "\n" + t(strings.WEBHOOK_RCON_FAILED, problem=escape(problem))
        await reply(interaction, said)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Webhooks(bot))
