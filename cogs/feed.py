"""/feed: choose the activity-feed channel, check its state, post a sample (admins only)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import from_iso
from bot.feed.embeds import clip
from bot.gateway.client import Questlog, UserError, reply
from bot.markdown import escape
from bot.services.feed_admin import BACKFILL_MAX_HOURS, pause_reason
from cogs import _strings as strings

MESSAGE_MAX = 2000  # characters of a message's content

NEEDED = (
    ("View Channel", "view_channel"),
    ("Send Messages", "send_messages"),
    ("Embed Links", "embed_links"),
)


class EventTypesView(discord.ui.View):
    """A multi-select of the registered event types; choosing saves at once."""

    def __init__(
        self,
        cog: Feed,
        guild_id: int,
        types: list[str],
        enabled: list[str] | None,
        off_by_default: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(timeout=300)
        self.cog = cog
        self.guild_id = guild_id
        self.types = types
        self.defaults = {t for t in types if t not in off_by_default}
        options = [
            discord.SelectOption(
                label=strings.EVENT_NAMES.get(t, t)[:100],
                value=t,
                default=t in self.defaults if enabled is None else t in enabled,
            )
            for t in types[:25]
        ]
        self.picker: discord.ui.Select[EventTypesView] = discord.ui.Select(
            placeholder=strings.FEED_EVENTS, min_values=0, max_values=len(options), options=options
        )
        self.picker.callback = self.chosen
        self.add_item(self.picker)

    async def chosen(self, interaction: discord.Interaction) -> None:
        picked = list(self.picker.values)
        # The default choice is stored as "the defaults", so types added in a later release are
        # posted too; any other choice is stored as it is.
        stored = None if set(picked) == self.defaults else picked
        await self.cog.core.feed_admin.set_event_types(self.guild_id, stored)
        kinds = ", ".join(strings.EVENT_NAMES.get(t, t) for t in picked) or strings.FEED_EVENTS_NONE
        await interaction.response.edit_message(
            content=strings.FEED_EVENTS_SAVED.format(kinds=kinds), view=None
        )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Feed(commands.GroupCog, group_name="feed", group_description=strings.FEED_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    def _guild_id(self, interaction: discord.Interaction) -> int:
        if interaction.guild_id is None:
            raise UserError("This command works only in a server.")
        return interaction.guild_id

    @app_commands.command(name="channel", description=strings.FEED_CHANNEL)
    @app_commands.describe(
        channel=strings.FEED_CHANNEL_ARG, backfill=strings.FEED_CHANNEL_BACKFILL_ARG
    )
    async def channel(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        backfill: app_commands.Range[int, 0, BACKFILL_MAX_HOURS] = 0,
    ) -> None:
        guild_id = self._guild_id(interaction)
        me = channel.guild.me
        permissions = channel.permissions_for(me) if me is not None else discord.Permissions.none()
        missing = [label for label, flag in NEEDED if not getattr(permissions, flag)]
        if missing:
            raise UserError(
                strings.FEED_MISSING_PERMISSIONS.format(
                    channel=channel.mention, missing=", ".join(missing)
                )
            )
        change = await self.core.feed_admin.set_channel(
            guild_id, channel.id, backfill_hours=backfill
        )
        text = strings.FEED_CHANNEL_SET.format(channel=channel.mention)
        if change.backfilled:
            text += strings.FEED_CHANNEL_BACKFILLED.format(hours=backfill, count=change.backfilled)
        if change.not_posted:
            text += strings.FEED_CHANNEL_NOT_POSTED.format(count=change.not_posted)
        if change.resumed:
            text += strings.FEED_CHANNEL_RESUMED
        if change.moved:
            old = f"<#{change.previous_channel}>" if change.previous_channel else "?"
            text += strings.FEED_CHANNEL_MOVED.format(count=change.moved, old=old)
            if change.maybe_posted:
                text += strings.FEED_CHANNEL_MAYBE_POSTED.format(
                    count=change.maybe_posted, old=old, channel=channel.mention
                )
        await reply(interaction, text)

    @app_commands.command(name="status", description=strings.FEED_STATUS)
    async def status(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        state = await self.core.feed_admin.status(guild_id)
        if state.channel_id is None:
            await reply(interaction, strings.FEED_NO_CHANNEL)
            return
        text = strings.FEED_STATUS_LINES.format(
            channel=f"<#{state.channel_id}>",
            pending=state.pending,
            sent=state.sent,
            failed=state.failed,
            expired=state.expired,
        )
        if state.channel_state == "paused":
            paused = from_iso(state.paused_since) if state.paused_since else self.core.clock.now()
            since = discord.utils.format_dt(paused, "R")
            if state.next_probe_at is not None:
                then = discord.utils.format_dt(from_iso(state.next_probe_at), "R")
                follow_up = strings.FEED_STATUS_PROBE.format(when=then)
            else:
                follow_up = strings.FEED_STATUS_NO_PROBE
            text += strings.FEED_STATUS_PAUSED.format(
                since=since,
                reason=escape(pause_reason(state.pause_code, state.pause_detail)),
                next=follow_up,
            )
        elif state.last_error:
            text += strings.FEED_STATUS_ERROR.format(error=escape(state.last_error))
        if state.failures:
            lines = "\n".join(
                strings.FEED_STATUS_FAILURE_LINE.format(
                    title=escape(failure.title[:100]), reason=escape(failure.reason[:200])
                )
                for failure in state.failures
            )
            text += strings.FEED_STATUS_FAILURES.format(lines=lines)
        await reply(interaction, clip(text, MESSAGE_MAX))

    @app_commands.command(name="events", description=strings.FEED_EVENTS)
    async def events(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        enabled = await self.core.feed_admin.event_types(guild_id)
        types = self.core.registry.event_types()
        view = EventTypesView(
            self, guild_id, types, enabled, self.core.registry.default_off_types()
        )
        await interaction.response.send_message(
            strings.FEED_EVENTS_PROMPT, view=view, ephemeral=True
        )

    @app_commands.command(name="test", description=strings.FEED_TEST)
    async def test(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        if not await self.core.feed_admin.send_test(guild_id, interaction.user.id):
            raise UserError(strings.FEED_NO_CHANNEL)
        state = await self.core.feed_admin.status(guild_id)
        await reply(interaction, strings.FEED_TEST_QUEUED.format(channel=f"<#{state.channel_id}>"))


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Feed(bot))
