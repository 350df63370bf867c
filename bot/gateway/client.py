"""The Discord side: the ``Questlog`` bot and the component that keeps it connected.

``main()`` owns storage, the web server and the feed poster; the bot is one more component it
starts (DESIGN.md, "Discord side"). discord.py runs ``setup_hook`` only after a successful login,
so a Discord outage at boot must not hold anything else up: ``DiscordComponent`` logs in in the
background and retries with backoff and jitter, except for ``LoginFailure`` (a bad token), which
is one clear error line; webhooks keep being served either way.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.shard
import yarl
from discord import app_commands
from discord.ext import commands

from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.feed.sender import DiscordSender
from bot.gateway.activities import PORTAL_HINT, PRIVILEGED, guild_presences, presence_of
from bot.gateway.role_actions import RoleActions
from bot.gateway.translator import CommandTranslator
from bot.i18n import Texts, language, texts
from bot.markdown import escape
from bot.presence import MemberPresence
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0


class UserError(Exception):
    """A mistake the user can fix, shown to them (ephemeral) in their language: a message id
    of the catalogues and its fields, or (``UserError.said``) words already in it."""

    def __init__(self, msgid: str, **fields: Any) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.fields = fields
        self.text: str | None = None

    @classmethod
    def said(cls, text: str) -> UserError:
        error = cls(text)
        error.text = text
        return error

    def words(self, t: Texts) -> str:
        return self.text if self.text is not None else t(self.msgid, **self.fields)


def texts_for(interaction: discord.Interaction) -> Texts:
    """The texts of the member's language: their Discord client's locale when Questlog speaks
    it, else the server's, else English."""
    guild = interaction.guild_locale.value if interaction.guild_locale else None
    mine = interaction.locale.value if interaction.locale else None
    return texts(language(mine, guild))


def discover_extensions(package: str = "cogs") -> list[str]:
    """Every module under ``package`` that defines ``async def setup(bot)``; modules whose name
    starts with ``_`` are private helpers and skipped."""
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        if callable(getattr(module, "setup", None)):
            found.append(info.name)
    return sorted(found)


def whole_lines(lines: list[str], limit: int = 1990) -> str:
    """As many whole lines as fit in one Discord message (2,000 characters), then "…"."""
    shown: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) > limit:
            shown.append("…")
            break
        shown.append(line)
        size += len(line) + 1
    return "\n".join(shown)


async def reply(
    interaction: discord.Interaction,
    content: str,
    *,
    ephemeral: bool = True,
    view: discord.ui.View | None = None,
) -> None:
    """Answer whether or not the interaction was already answered; an expired one is logged."""
    extra: dict[str, Any] = {} if view is None else {"view": view}
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                content,
                ephemeral=ephemeral,
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
        else:
            await interaction.response.send_message(
                content,
                ephemeral=ephemeral,
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
    except discord.NotFound:
        log.warning("interaction expired before Questlog could answer it")


class QuestlogTree(app_commands.CommandTree):
    """Holds the single app-command error handler: no traceback ever reaches Discord, and every
    answer is in the member's language."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        t = texts_for(interaction)
        if isinstance(original, UserError):
            await reply(interaction, original.words(t))
        elif isinstance(error, app_commands.MissingPermissions):
            await reply(interaction, t("error.member_permissions",
                                       permissions=_permissions(t, error.missing_permissions)))  # fmt: skip
        elif isinstance(error, app_commands.BotMissingPermissions):
            await reply(interaction, t("error.bot_permissions",
                                       permissions=_permissions(t, error.missing_permissions)))  # fmt: skip
        elif isinstance(error, app_commands.TransformerError):
            # What the member typed, escaped: it is shown back to them.
            await reply(interaction, t("error.bad_value", value=escape(str(error.value))[:100]))
        elif isinstance(error, app_commands.CheckFailure):
            await reply(interaction, t("error.cannot_use"))
        else:
            reference = secrets.token_hex(4)
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command /%s failed [ref %s]", command, reference, exc_info=original)
            await reply(interaction, t("error.internal", reference=reference))


def _permissions(t: Texts, flags: list[str]) -> str:
    """Discord permission flags by the names Discord's client shows, in the member's language."""
    return t("word.list_separator").join(t.get(f"permission.{flag}") or flag for flag in flags)


class Questlog(commands.AutoShardedBot):
    """The bot, on the gateway shards this process runs (``shard_ids`` of ``shard_count``; all
    of them when not given). ``shard_count`` None: the count Discord recommends, asked for
    before connecting (DiscordComponent)."""

    def __init__(
        self,
        core: Core,
        *,
        dev_guild_id: int = 0,
        presence: bool = False,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
        sync_commands: bool = True,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # the minimum for slash commands and channel checks
        if presence:  # privileged: enabled in the Developer Portal, or Discord closes 4014
            for name in PRIVILEGED:
                setattr(intents, name, True)
        # Questlog has no voice features: without these, discord.py warns at every start that
        # PyNaCl and davey are missing (the discord.client logger keeps its level).
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=QuestlogTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=shard_count,
            shard_ids=shard_ids,
        )
        self.core = core
        self.dev_guild_id = dev_guild_id
        self.sync_commands = sync_commands
        self._down: set[int] = set()  # shards of this process whose connection dropped
        self.loaded_extensions: list[str] = []
        #: The presence tracker, when this client asked for the presence intents.
        self.tracker = core.presence if presence else None
        if self.tracker is not None:
            self.tracker.current = self._current_presences
            self.tracker.shard_of = self.shard_of

    def shard_of(self, guild_id: int) -> int:
        """The shard that carries a guild (Discord's rule: ``(guild_id >> 22) % shards``)."""
        return (guild_id >> 22) % (self.shard_count or 1)

    async def launch_shard(
        self, gateway: yarl.URL, shard_id: int, *, initial: bool = False
    ) -> None:
        """One shard's connection. discord.py's own retries a shard that cannot connect every
        5 s for ever, logging a traceback each time; here the failure is raised, so that the
        DiscordComponent backs off with jitter and reports the state, as without shards."""
        ws = await asyncio.wait_for(
            discord.gateway.DiscordWebSocket.from_client(
                self, initial=initial, gateway=gateway, shard_id=shard_id
            ),
            timeout=self.shard_connect_timeout,
        )
        # discord.py keeps the shards and their event queue in name-mangled attributes.
        queue = getattr(self, "_AutoShardedClient__queue")  # noqa: B009
        shards = getattr(self, "_AutoShardedClient__shards")  # noqa: B009
        shards[shard_id] = shard = discord.shard.Shard(ws, self, queue.put_nowait)
        shard.launch()

    async def close(self) -> None:
        # discord.py's AutoShardedClient.close expects the event queue that logging in creates.
        if getattr(self, "_AutoShardedClient__queue", None) is None:
            setattr(self, "_AutoShardedClient__queue", asyncio.PriorityQueue())  # noqa: B010
        await super().close()

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CommandTranslator())  # ru, en-US, en-GB names
        for name in discover_extensions():
            await self.load_extension(name)
            self.loaded_extensions.append(name)
        if not self.sync_commands:
            log.info("slash commands are synced by the process that runs shard 0")
        elif self.dev_guild_id:
            guild = discord.Object(id=self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to development guild %s", len(synced), self.dev_guild_id)
        else:
            synced = await self.tree.sync()
            log.info(
                "synced %d commands globally (Discord may take a while to show them)", len(synced)
            )

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self._note_locale(guild)
        if self.tracker is not None:  # members already playing are picked up
            await self.tracker.pick_up(guild.id, guild_presences(guild))

    async def on_presence_update(self, before: discord.Member, after: discord.Member) -> None:
        if self.tracker is not None and not after.bot:
            await self.tracker.update(after.guild.id, presence_of(after))

    async def on_member_join(self, member: discord.Member) -> None:
        """(With the Server Members intent.) A member back in the server has none of the roles
        rewards gave them: what they earn is granted again."""
        if member.bot:
            return
        try:
            await self.core.rewards.member_joined(member.guild.id, member.id)
        except Exception:
            log.exception("rewards: could not check a member who joined server %s", member.guild.id)

    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        if self.tracker is not None:
            await self.tracker.member_left(payload.guild_id, payload.user.id)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        if self.tracker is not None:
            await self.tracker.guild_left(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._note_locale(guild)

    async def on_guild_update(self, before: discord.Guild, after: discord.Guild) -> None:
        if before.preferred_locale != after.preferred_locale:
            await self._note_locale(after)

    async def _note_locale(self, guild: discord.Guild) -> None:
        """The server's primary language, which its feed follows unless /feed language chose
        one (stored only when it changed)."""
        try:
            await self.core.feed_admin.note_locale(guild.id, guild.preferred_locale.value)
        except Exception:  # the feed keeps its last known language
            log.exception("could not record the language of server %s", guild.id)

    async def on_ready(self) -> None:
        if not self._down:
            self.core.discord_state = "connected"
        shards = self.shard_ids or range(self.shard_count or 1)
        log.info(
            "connected to Discord as %s in %d servers (shards %s of %d)",
            self.user, len(self.guilds), ", ".join(map(str, shards)), self.shard_count or 1,
        )  # fmt: skip

    async def on_shard_ready(self, shard_id: int) -> None:
        await self._shard_back(shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        await self._shard_back(shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        """One shard's connection dropped: its guilds' presence stops counting until it is
        back; the other shards go on."""
        self._down.add(shard_id)
        self.core.discord_state = "disconnected"
        if self.tracker is not None:
            self.tracker.gateway_lost(shard_id)

    async def _shard_back(self, shard_id: int) -> None:
        self._down.discard(shard_id)
        if not self._down and self.is_ready():
            self.core.discord_state = "connected"
        if self.tracker is not None:
            await self.tracker.gateway_back(
                {g.id: guild_presences(g) for g in self.guilds if g.shard_id == shard_id},
                shard_id,
            )

    def _current_presences(self, guild_id: int, user_id: int | None) -> list[MemberPresence]:
        guild = self.get_guild(guild_id)
        if guild is None:
            return []
        if user_id is None:
            return guild_presences(guild)
        member = guild.get_member(user_id)
        return [presence_of(member)] if member is not None and not member.bot else []


Connect = Callable[[Questlog], Awaitable[None]]


async def _gateway(bot: Questlog) -> None:
    await bot.connect(reconnect=True)


class DiscordComponent:
    """Logs the bot in (retrying through outages), hands its HTTP client to the feed poster,
    and keeps the gateway connection; ``stop`` closes the bot."""

    def __init__(
        self,
        core: Core,
        poster: FeedPoster,
        token: str,
        *,
        dev_guild_id: int = 0,
        connect: Connect = _gateway,
        backoff_base: float = BACKOFF_BASE,
        presence: bool = False,
        shard_count: int = 0,
        shard_ids: tuple[int, ...] = (),
    ) -> None:
        self.core = core
        self.shard_count = shard_count  # 0: Discord's recommendation, asked at each login
        self.shard_ids = list(shard_ids) or None
        self.presence = presence  # ask for the presence intents (until Discord refuses them)
        self.roles = RoleActions()  # the Discord connector's role actions, on this bot's client
        discord_connector = core.registry.get("discord")
        discord_connector.provide("grant_role", self.roles.grant)
        discord_connector.provide("remove_role", self.roles.remove)
        self.poster = poster
        self.token = token
        self.dev_guild_id = dev_guild_id
        self.connect = connect
        self.backoff_base = backoff_base
        self.bot: Questlog | None = None
        self._shards_seen: int | None = None  # the shard count of the last bot that logged in
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.core.discord_state = "connecting"
        self._task = asyncio.create_task(self._run(), name="questlog-discord")

    @staticmethod
    def use_endpoints(api_base_url: str, gateway_url: str) -> None:
        """Point discord.py at Discord (the default) or at a proxy. Process-wide: discord.py keeps
        these as class attributes, and a Questlog process runs one bot."""
        discord.http.Route.BASE = api_base_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        await self._close_bot()

    def _shards_lost(self) -> None:
        """The bot failed as a whole: closing it ends every shard's connection without the
        per-shard events, so presence learns here that none of them counts now."""
        bot, tracker = self.bot, self.core.presence
        if bot is not None and tracker is not None and bot.shard_count:
            for shard_id in bot.shard_ids or range(bot.shard_count):
                tracker.gateway_lost(shard_id)

    async def _close_bot(self) -> None:
        self.poster.sender = None
        self.roles.http = None
        if self.bot is not None:
            await self.bot.close()
            self.bot = None

    async def _run(self) -> None:
        failures = 0
        while True:
            self.attempts += 1
            connecting = False  # logged in: what fails now is the gateway connection
            self.bot = Questlog(
                self.core,
                dev_guild_id=self.dev_guild_id,
                presence=self.presence,
                shard_count=self.shard_count or None,
                shard_ids=self.shard_ids,
                sync_commands=not self.shard_ids or 0 in self.shard_ids,
            )
            try:
                await self.bot.login(self.token)
                if self.bot.shard_count is None:
                    # Asked here rather than by discord.py, which would also take the gateway
                    # address from the answer instead of [discord] gateway_url.
                    shards, _url, _limits = await self.bot.http.get_bot_gateway()
                    self.bot.shard_count = max(1, int(shards))
                if self.core.presence is not None and self.bot.shard_count != self._shards_seen:
                    if self._shards_seen is not None:
                        self.core.presence.reshard(self.bot.shard_count)
                    self._shards_seen = self.bot.shard_count
                self.poster.sender = DiscordSender(self.bot.http)
                self.poster.wake()
                self.roles.http = self.bot.http
                self.core.actions.wake()
                failures = 0
                connecting = True
                await self.connect(self.bot)
                reason = "the gateway connection closed"
            except discord.PrivilegedIntentsRequired:
                # Retrying would be refused forever: a client without them, at once.
                log.error(PORTAL_HINT)
                self.presence = False
                if self.core.presence is not None:
                    self.core.presence.available = False
                    for shard in self.core.presence.lost_shards or [0]:
                        await self.core.presence.gateway_back({}, shard)  # nothing will come
                self.core.discord_state = "connecting"
                await self._close_bot()
                continue
            except discord.LoginFailure:
                log.error(
                    "Discord rejected the bot token: set a valid [discord] token or DISCORD_TOKEN"
                    " (webhooks keep running; events wait in the feed outbox)"
                )
                self.core.discord_state = "invalid_token"
                await self._close_bot()
                return
            except (
                TimeoutError,
                discord.HTTPException,
                discord.GatewayNotFound,
                discord.ConnectionClosed,
                aiohttp.ClientError,
                OSError,
            ) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if connecting:
                    reason = f"could not reach the Discord gateway ({reason})"
            except Exception:
                log.exception("the Discord bot failed")
                reason = "an unexpected error (see the log above)"
            self._shards_lost()
            await self._close_bot()
            self.core.discord_state = "disconnected"
            failures += 1
            delay = min(BACKOFF_MAX, self.backoff_base * 2 ** min(failures - 1, 10))
            delay *= random.uniform(0.5, 1.5)
            log.warning("Discord unavailable (%s); retrying in %.0f s", reason, delay)
            await asyncio.sleep(delay)
