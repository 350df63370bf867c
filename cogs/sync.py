"""/sync: read linked Steam libraries now, and show the sync's plan (admins only)."""

from __future__ import annotations

from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.i18n import Texts
from bot.markdown import escape
from bot.steam_sync.sync import SyncStatus
from cogs import _strings as strings


def _when(t: Texts, moment: datetime | None) -> str:
    """A time every member sees in their own zone (Discord's timestamp markup)."""
    return (
        discord.utils.format_dt(moment, "f") if moment is not None else t(strings.SYNC_WHEN_UNKNOWN)
    )


def _not_running(t: Texts, status: SyncStatus) -> UserError:
    return UserError(
        strings.SYNC_NOT_RUNNING[status.state],
        detail=escape(status.detail or ""),
        probe=_when(t, status.next_probe_at),
    )


def _every(t: Texts, seconds: int) -> str:
    if seconds % 60 == 0 or seconds > 3600:
        return t.duration(seconds)
    return t("duration.seconds", seconds=seconds)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Sync(commands.GroupCog, group_name="sync", group_description=strings.SYNC_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    @app_commands.command(name="now", description=strings.SYNC_NOW)
    @app_commands.describe(member=strings.SYNC_NOW_MEMBER_ARG)
    async def now(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        t = texts_for(interaction)
        sync = self.core.steam_sync
        status = await sync.status()
        if status.state != "running":
            raise _not_running(t, status)
        accounts = await sync.linked_accounts(
            interaction.guild_id, member.id if member is not None else None
        )
        if not accounts:
            if member is not None:
                raise UserError(strings.SYNC_NO_ACCOUNTS_MEMBER, member=member.mention)
            raise UserError(strings.SYNC_NO_ACCOUNTS)
        again = sync.claim_sync_now(interaction.guild_id)
        if again is not None:
            raise UserError(strings.SYNC_COOLDOWN, when=discord.utils.format_dt(again, "R"))
        await interaction.response.defer(ephemeral=True, thinking=True)  # Steam may be slow
        sync.links_changed()
        report = await sync.sync_report(accounts)
        if report["invalid_key"]:
            raise _not_running(t, await sync.status())
        text = t(strings.SYNC_DONE, ok=t.number(report["ok"]), total=t.number(len(accounts)))
        if report["private"]:
            text += t(strings.SYNC_DONE_PRIVATE, count=t.number(report["private"]))
        if report["deferred"] or report["busy"]:
            count = t.number(report["deferred"] + report["busy"])
            text += t(strings.SYNC_DONE_DEFERRED, count=count)
        await reply(interaction, text)

    @app_commands.command(name="status", description=strings.SYNC_STATUS)
    async def status(self, interaction: discord.Interaction) -> None:
        t = texts_for(interaction)
        status = await self.core.steam_sync.status()
        plan = status.plan
        template = strings.SYNC_STATES.get(status.state)
        state = (
            t(
                template,
                since=_when(t, status.key_refused_since),
                probe=_when(t, status.next_probe_at),
            )
            if template
            else status.state
        )
        text = t(
            strings.SYNC_STATUS_LINES,
            state=state,
            accounts=t.number(status.accounts),
            in_game=t.number(status.in_game),
            private=t.number(status.private),
            summary=_every(t, plan.summary_interval),
            active=_every(t, plan.active_interval),
            sweep=_every(t, plan.sweep_interval),
            calls=t.number(status.calls_today),
            limit=t.number(status.daily_limit),
            projected=t.number(plan.projected_calls),
            lookups=t.number(status.lookup_calls_today),
            lookup_limit=t.number(status.lookup_limit),
        )
        await reply(interaction, text)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Sync(bot))
