"""/sync: read linked Steam libraries now, and show the sync's plan (admins only)."""

from __future__ import annotations

from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply
from bot.steam_sync.sync import SyncStatus
from cogs import _strings as strings
from connectors.base import human_duration


def _when(moment: datetime | None) -> str:
    """A time every member sees in their own zone (Discord's timestamp markup)."""
    return discord.utils.format_dt(moment, "f") if moment is not None else "unknown"


def _not_running(status: SyncStatus) -> str:
    return strings.SYNC_NOT_RUNNING[status.state].format(
        detail=status.detail, probe=_when(status.next_probe_at)
    )


def _every(seconds: int) -> str:
    return human_duration(seconds) if seconds % 60 == 0 or seconds > 3600 else f"{seconds} s"


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
            raise UserError("This command works only in a server.")
        sync = self.core.steam_sync
        status = await sync.status()
        if status.state != "running":
            raise UserError(_not_running(status))
        accounts = await sync.linked_accounts(
            interaction.guild_id, member.id if member is not None else None
        )
        if not accounts:
            who = f" for {member.mention}" if member is not None else ""
            raise UserError(strings.SYNC_NO_ACCOUNTS.format(who=who))
        again = sync.claim_sync_now(interaction.guild_id)
        if again is not None:
            raise UserError(strings.SYNC_COOLDOWN.format(when=discord.utils.format_dt(again, "R")))
        await interaction.response.defer(ephemeral=True, thinking=True)  # Steam may be slow
        sync.links_changed()
        report = await sync.sync_report(accounts)
        if report["invalid_key"]:
            raise UserError(_not_running(await sync.status()))
        text = strings.SYNC_DONE.format(ok=report["ok"], total=len(accounts))
        if report["private"]:
            text += strings.SYNC_DONE_PRIVATE.format(count=report["private"])
        if report["deferred"] or report["busy"]:
            text += strings.SYNC_DONE_DEFERRED.format(count=report["deferred"] + report["busy"])
        await reply(interaction, text)

    @app_commands.command(name="status", description=strings.SYNC_STATUS)
    async def status(self, interaction: discord.Interaction) -> None:
        status = await self.core.steam_sync.status()
        plan = status.plan
        text = strings.SYNC_STATUS_LINES.format(
            state=strings.SYNC_STATES.get(status.state, status.state).format(
                since=_when(status.key_refused_since), probe=_when(status.next_probe_at)
            ),
            accounts=status.accounts,
            in_game=status.in_game,
            private=status.private,
            summary=_every(plan.summary_interval),
            active=_every(plan.active_interval),
            sweep=_every(plan.sweep_interval),
            calls=status.calls_today,
            limit=status.daily_limit,
            projected=plan.projected_calls,
            lookups=status.lookup_calls_today,
            lookup_limit=status.lookup_limit,
        )
        await reply(interaction, text)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Sync(bot))
