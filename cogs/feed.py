"""/feed: choose the activity-feed channel, check its state, post a sample (admins only)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import from_iso
from bot.feed.embeds import clip
from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.i18n import Texts
from bot.markdown import escape
from bot.services.feed_admin import BACKFILL_MAX_HOURS
from cogs import _strings as strings

MESSAGE_MAX = 2000  # characters of a message's content

NEEDED = ("view_channel", "send_messages", "embed_links")  # the feed channel's permissions


def pause_reason(t: Texts, code: int | None, detail: str | None) -> str:
    """Why posting to the channel is paused, from Discord's code (or its message for others)."""
    if code in strings.PAUSE_REASONS:
        return t(strings.PAUSE_REASONS[code])
    return t(strings.PAUSE_OTHER, detail=escape(detail or f"error {code}"))


class EventTypesView(discord.ui.View):
    """A multi-select of the registered event types; choosing saves at once."""

    def __init__(
        self,
        cog: Feed,
        t: Texts,
        guild_id: int,
        types: list[str],
        enabled: list[str] | None,
        off_by_default: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(timeout=300)
        self.cog = cog
        self.t = t
        self.guild_id = guild_id
        self.types = types
        self.defaults = {t for t in types if t not in off_by_default}
        options = [
            discord.SelectOption(
                label=self.name(kind)[:100],
                value=kind,
                default=kind in self.defaults if enabled is None else kind in enabled,
            )
            for kind in types[:25]
        ]
        self.picker: discord.ui.Select[EventTypesView] = discord.ui.Select(
            placeholder=t(strings.FEED_EVENTS_PROMPT)[:150],
            min_values=0,
            max_values=len(options),
            options=options,
        )
        self.picker.callback = self.chosen
        self.add_item(self.picker)

    def name(self, kind: str) -> str:
        """An event kind's name; a connector's kind the catalogues do not name yet is shown
        as its id (``steam.achievement``)."""
        return self.t.get(strings.event_name(kind)) or kind

    async def chosen(self, interaction: discord.Interaction) -> None:
        picked = list(self.picker.values)
        # The default choice is stored as "the defaults", so types added in a later release are
        # posted too; any other choice is stored as it is.
        stored = None if set(picked) == self.defaults else picked
        await self.cog.core.feed_admin.set_event_types(self.guild_id, stored)
        t = self.t  # the language of the member who opened the menu
        kinds = t(strings.LIST_SEPARATOR).join(self.name(k) for k in picked)
        await interaction.response.edit_message(
            content=t(strings.FEED_EVENTS_SAVED, kinds=kinds or t(strings.FEED_EVENTS_NONE)),
            view=None,
        )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Feed(commands.GroupCog, group_name="feed", group_description=strings.FEED_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    def _guild_id(self, interaction: discord.Interaction) -> int:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
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
        t = texts_for(interaction)
        me = channel.guild.me
        permissions = channel.permissions_for(me) if me is not None else discord.Permissions.none()
        missing = [t(strings.permission(flag)) for flag in NEEDED if not getattr(permissions, flag)]
        if missing:
            raise UserError(
                strings.FEED_MISSING_PERMISSIONS,
                channel=channel.mention,
                missing=t(strings.LIST_SEPARATOR).join(missing),
            )
        await self._note_locale(interaction)
        change = await self.core.feed_admin.set_channel(
            guild_id, channel.id, backfill_hours=backfill
        )
        text = t(strings.FEED_CHANNEL_SET, channel=channel.mention)
        if change.backfilled:
            count = t.number(change.backfilled)
            text += t(strings.FEED_CHANNEL_BACKFILLED, hours=backfill, count=count)
        if change.not_posted:
            text += t(strings.FEED_CHANNEL_NOT_POSTED, count=t.number(change.not_posted))
        if change.resumed:
            text += t(strings.FEED_CHANNEL_RESUMED)
        if change.moved:
            old = f"<#{change.previous_channel}>" if change.previous_channel else "?"
            text += t(strings.FEED_CHANNEL_MOVED, count=t.number(change.moved), old=old)
            if change.maybe_posted:
                count = t.number(change.maybe_posted)
                text += t(
                    strings.FEED_CHANNEL_MAYBE_POSTED, count=count, old=old, channel=channel.mention
                )
        await reply(interaction, text)

    @app_commands.command(name="status", description=strings.FEED_STATUS)
    async def status(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        t = texts_for(interaction)
        state = await self.core.feed_admin.status(guild_id)
        if state.channel_id is None:
            await reply(interaction, t(strings.FEED_NO_CHANNEL))
            return
        text = t(
            strings.FEED_STATUS_LINES,
            channel=f"<#{state.channel_id}>",
            pending=t.number(state.pending),
            sent=t.number(state.sent),
            failed=t.number(state.failed),
            expired=t.number(state.expired),
        )
        if state.channel_state == "paused":
            paused = from_iso(state.paused_since) if state.paused_since else self.core.clock.now()
            since = discord.utils.format_dt(paused, "R")
            if state.next_probe_at is not None:
                then = discord.utils.format_dt(from_iso(state.next_probe_at), "R")
                follow_up = t(strings.FEED_STATUS_PROBE, when=then)
            else:
                follow_up = t(strings.FEED_STATUS_NO_PROBE)
            text += t(
                strings.FEED_STATUS_PAUSED,
                since=since,
                reason=pause_reason(t, state.pause_code, state.pause_detail),
                next=follow_up,
            )
        elif state.last_error:
            text += t(strings.FEED_STATUS_ERROR, error=escape(state.last_error))
        _, written = await self.core.feed_admin.language(guild_id)
        text += t(strings.FEED_STATUS_LANGUAGE, language=t(strings.LANGUAGE_NAMES[written]))
        if state.failures:
            lines = "\n".join(
                t(
                    strings.FEED_STATUS_FAILURE_LINE,
                    title=escape(failure.title[:100]),
                    reason=escape(failure.reason[:200]),
                )
                for failure in state.failures
            )
            text += t(strings.FEED_STATUS_FAILURES, lines=lines)
        await reply(interaction, clip(text, MESSAGE_MAX))

    @app_commands.command(name="events", description=strings.FEED_EVENTS)
    async def events(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        enabled = await self.core.feed_admin.event_types(guild_id)
        types = self.core.registry.event_types()
        t = texts_for(interaction)
        view = EventTypesView(
            self, t, guild_id, types, enabled, self.core.registry.default_off_types()
        )
        await interaction.response.send_message(
            t(strings.FEED_EVENTS_PROMPT), view=view, ephemeral=True
        )

    @app_commands.command(name="language", description=strings.FEED_LANGUAGE)
    @app_commands.describe(language=strings.FEED_LANGUAGE_ARG)
    @app_commands.choices(
        language=[
            strings.choice("feed.language.auto", "auto"),
            strings.choice("feed.language.ru", "ru"),
            strings.choice("feed.language.en", "en"),
        ]
    )
    async def language(
        self, interaction: discord.Interaction, language: app_commands.Choice[str]
    ) -> None:
        guild_id = self._guild_id(interaction)
        t = texts_for(interaction)
        await self._note_locale(interaction)
        chosen = None if language.value == "auto" else language.value
        await self.core.feed_admin.set_language(guild_id, chosen)  # type: ignore[arg-type]
        _, written = await self.core.feed_admin.language(guild_id)
        name = t(strings.LANGUAGE_NAMES[written])
        template = strings.FEED_LANGUAGE_AUTO if chosen is None else strings.FEED_LANGUAGE_SET
        await reply(interaction, t(template, language=name))

    async def _note_locale(self, interaction: discord.Interaction) -> None:
        """The server's primary language, as Discord sends it with every interaction (the feed
        follows it unless /feed language chose one)."""
        if interaction.guild_id is not None and interaction.guild_locale is not None:
            await self.core.feed_admin.note_locale(
                interaction.guild_id, interaction.guild_locale.value
            )

    @app_commands.command(name="test", description=strings.FEED_TEST)
    async def test(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        if not await self.core.feed_admin.send_test(guild_id, interaction.user.id):
            raise UserError(strings.FEED_NO_CHANNEL)
        state = await self.core.feed_admin.status(guild_id)
        await reply(
            interaction,
            texts_for(interaction)(strings.FEED_TEST_QUEUED, channel=f"<#{state.channel_id}>"),
        )


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Feed(bot))
