"""/actions status: what Questlog does on its own in this server (roles it grants, lines it
says on game servers), and what went wrong."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import from_iso
from bot.gateway.client import Questlog, UserError, reply, texts_for, whole_lines
from bot.markdown import code, escape
from cogs import _strings as strings

ICONS = {"pending": "⏳", "in_flight": "📤", "paused": "⏸️", "failed": "❌", "unknown": "❔",
         "done": "✅"}  # fmt: skip


def _when(text: str) -> str:
    return f"<t:{int(from_iso(text).timestamp())}:R>"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Actions(commands.GroupCog, group_name="actions", group_description=strings.ACTIONS_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    @app_commands.command(name="status", description=strings.ACTIONS_STATUS)
    async def status(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        t = texts_for(interaction)
        found = await self.core.store.actions.status(interaction.guild_id, self.core.clock.now())
        counts = found.counts
        lines = [t(strings.ACTIONS_TITLE)]
        if not counts:
            lines.append(t(strings.ACTIONS_NONE))
            await reply(interaction, "\n".join(lines))
            return
        lines.append(
            t(
                strings.ACTIONS_COUNTS,
                **{k: t.number(counts.get(k, 0)) for k in ICONS},
            )
        )
        for _guild, key, reason, since, probe in found.pauses:
            lines.append(
                t(strings.ACTIONS_PAUSE, key=code(key), since=_when(since),
                  reason=escape(reason), next=_when(probe))
            )  # fmt: skip
        for row in found.recent:
            member = t(strings.ACTIONS_MEMBER, user_id=row.user_id) if row.user_id else ""
            error = t(strings.ACTIONS_ERROR, error=escape(row.last_error)) if row.last_error else ""
            lines.append(
                t(strings.ACTIONS_ROW, icon=ICONS.get(row.status, "•"), action=code(row.action),
                  id=row.id, member=member, status=t(f"actions.state.{row.status}"),
                  attempts=t.plural("count.attempts", row.attempts), error=error)
            )  # fmt: skip
        await reply(interaction, whole_lines(lines))


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Actions(bot))
