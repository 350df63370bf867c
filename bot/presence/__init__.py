"""Presence playtime: what members play, as their Discord status shows it.

The gateway (bot/gateway/presence.py) hands the tracker each member's games and status as
Discord reports them, per guild (a PRESENCE_UPDATE arrives once per shared guild); the tracker
keeps one session per (guild, member, game) and hands what they add up to the one ingest path
as raw events of the Discord connector (connectors/discord/connector.py):

* a session opens when a Playing or Competing activity appears and closes when it goes; several
  games at once are several sessions; an ``idle`` status pauses them (``pause_when_idle``);
* every ``flush_seconds`` the open sessions' new time is written, active and idle apart (idle
  time counts in the total only); a crash loses at most that much; a retried write is a
  duplicate by its dedupe key, so time never counts twice;
* a session shorter than ``min_session_seconds`` leaves nothing; one reaching
  ``max_session_hours`` stops counting until the game goes and comes back;
* when the gateway connection drops, the sessions stop counting; on reconnection within
  ``disconnect_grace_seconds`` the gap counts and they go on, after a longer one they close at
  the moment the connection dropped and what Discord shows now opens new ones;
* a member is tracked only with consent (bot/storage/presence.py, presence_consent), read
  when a session would open and cached for a minute; a privacy change drops the cache at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import Clock, to_iso
from bot.config import PresenceConfig
from bot.ingest.pipeline import Pipeline
from bot.storage import Store

log = logging.getLogger(__name__)

CONSENT_TTL = timedelta(minutes=1)


@dataclass(frozen=True)
class PlayedGame:
    """A Playing (0) or Competing (5) activity: its application id when Discord gives one."""

    name: str
    application_id: str | None = None


@dataclass(frozen=True)
class MemberPresence:
    user_id: int
    status: str  # online, idle, dnd, offline
    games: tuple[PlayedGame, ...] = ()
    name: str | None = None  # the member's display name (their presence link's)


@dataclass
class _Session:
    sid: str
    guild_id: int
    user_id: int
    game_id: str
    name: str
    started: datetime
    since: datetime  # counted up to here
    paused: bool
    active: float = 0.0
    idle: float = 0.0
    credited: int = 0  # active seconds written
    idle_credited: int = 0  # idle seconds written (the total's part)
    seq: int = 0
    announced: bool = False
    capped: bool = False
    unsent: list[dict[str, object]] = field(default_factory=list)  # raw events to (re)send


class PresenceTracker:
    def __init__(
        self, store: Store, pipeline: Pipeline, clock: Clock, config: PresenceConfig
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        self.config = config
        self.sessions: dict[tuple[int, int, str], _Session] = {}
        self._capped: set[tuple[int, int, str]] = set()  # stays until the game goes
        self._consent: dict[tuple[int, int], tuple[bool, datetime]] = {}
        self._games: dict[tuple[str | None, str], str] = {}
        self._linked: set[tuple[int, int, str | None]] = set()  # presence links made or seen
        self._blocked: set[tuple[int, int]] = set()  # members being forgotten
        #: What the gateway's cache shows a guild's members (or one member) playing now; set
        #: by the bot. None: no gateway (consent given mid-game then waits for an update).
        self.current: Callable[[int, int | None], list[MemberPresence]] | None = None
        #: False once Discord refused the presence intents (the bot runs on without them).
        self.available = True
        self._orphans: list[_Session] = []  # closed, with events the database did not take yet
        #: The gateway shard of a guild (set by the bot); a shard whose connection dropped
        #: stops counting its guilds only.
        self.shard_of: Callable[[int], int] = lambda guild_id: 0
        self._lost: dict[int, datetime] = {}  # shard -> when its connection dropped
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle

    async def start(self) -> None:
        closed = await self.store.presence.close_interrupted()
        if closed:
            log.info("presence: closed %d sessions the last run left open", closed)
        self._task = asyncio.create_task(self._run(), name="questlog-presence")

    async def stop(self) -> None:
        """Write what the open sessions added (a clean stop loses nothing) and stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("presence: a flush failed; it is tried again")

    # -- what Discord says

    async def update(self, guild_id: int, member: MemberPresence) -> None:
        """A member's presence in a guild (PRESENCE_UPDATE, or a guild's presences at start)."""
        now = self.clock.now()
        async with self._lock:
            if self._lost_at(guild_id) is not None:
                return  # counted from the next connection's picture
            await self._apply(guild_id, member, now)

    async def pick_up(self, guild_id: int, members: Iterable[MemberPresence]) -> None:
        """A guild's presences as the gateway shows them (start-up, a new gateway session)."""
        for member in members:
            if member.games:
                await self.update(guild_id, member)

    def _lost_at(self, guild_id: int) -> datetime | None:
        """When the connection of the guild's shard dropped, while it is down."""
        return self._lost.get(self.shard_of(guild_id)) if self._lost else None

    @property
    def lost_shards(self) -> list[int]:
        """The shards whose connection is down now."""
        return sorted(self._lost)

    def reshard(self, shards: int) -> None:
        """The bot now runs with another shard count (Discord's recommendation changed between
        logins): shards that were down are down under the new numbering too, since when the
        first of them dropped."""
        if self._lost:
            since = min(self._lost.values())
            self._lost = dict.fromkeys(range(shards), since)

    def gateway_lost(self, shard_id: int = 0) -> None:
        """A gateway connection (shard) dropped: nothing in its guilds counts until it is
        back."""
        if shard_id not in self._lost:
            self._lost[shard_id] = lost = self.clock.now()
            for session in self.sessions.values():
                if self.shard_of(session.guild_id) == shard_id:
                    self._advance(session, lost)

    async def gateway_back(
        self, snapshot: dict[int, list[MemberPresence]], shard_id: int = 0
    ) -> None:
        """The shard is connected again; ``snapshot``: its guilds' presences as the cache
        holds them now. Within the grace the gap counts and sessions go on; after a longer gap
        they closed when the connection dropped, and the snapshot opens new ones."""
        now = self.clock.now()
        async with self._lock:
            lost = self._lost.pop(shard_id, None)
            if lost is not None and now - lost > timedelta(
                seconds=self.config.disconnect_grace_seconds
            ):
                for session in list(self.sessions.values()):
                    if self.shard_of(session.guild_id) != shard_id:
                        continue
                    self._advance(session, lost)
                    await self._close(session, lost, "disconnected")
                log.info(
                    "presence: the gateway was away %.0f s (over the %d s grace): not counted",
                    (now - lost).total_seconds(),
                    self.config.disconnect_grace_seconds,
                )
            for guild_id, members in snapshot.items():
                playing = {member.user_id for member in members}
                for session in list(self.sessions.values()):  # stopped while we were away
                    if session.guild_id == guild_id and session.user_id not in playing:
                        self._advance(session, now)
                        await self._close(session, now, "ended")
                for member in members:
                    await self._apply(guild_id, member, now)

    async def member_left(self, guild_id: int, user_id: int) -> None:
        """The member left the guild (or was removed): their sessions there end now."""
        await self.update(guild_id, MemberPresence(user_id, "offline"))

    async def guild_left(self, guild_id: int) -> None:
        """The bot left the guild: every session there ends now."""
        now = self.clock.now()
        async with self._lock:
            for session in [s for s in self.sessions.values() if s.guild_id == guild_id]:
                self._advance(session, now)
                await self._close(session, now, "ended")

    async def stop_member(self, guild_id: int, user_id: int) -> None:
        """Close the member's sessions now and write them (before they turn collecting off:
        afterwards their events would be withheld, and the sessions left open)."""
        now = self._lost_at(guild_id) or self.clock.now()
        async with self._lock:
            for session in list(self.sessions.values()):
                if session.guild_id == guild_id and session.user_id == user_id:
                    self._advance(session, now)
                    await self._close(session, now, "stopped")

    async def member_changed(self, guild_id: int, user_id: int | None = None) -> None:
        """A privacy choice changed (a member's, or the guild's default when ``user_id`` is
        None): read consent again, close the sessions of members who withdrew it, and open
        them for members who gave it while playing (from ``current``, the gateway's cache)."""
        lost = self._lost_at(guild_id)
        now = lost or self.clock.now()
        async with self._lock:
            for key in list(self._consent):
                if key[0] == guild_id and (user_id is None or key[1] == user_id):
                    del self._consent[key]
            for session in list(self.sessions.values()):
                if session.guild_id != guild_id or (
                    user_id is not None and session.user_id != user_id
                ):
                    continue
                if not await self._consents(guild_id, session.user_id, now):
                    self._advance(session, now)
                    await self._close(session, now, "stopped")
            if self.current is not None and lost is None:
                for member in self.current(guild_id, user_id):
                    await self._apply(guild_id, member, now)

    @contextlib.asynccontextmanager
    async def forgetting(self, guild_id: int, user_id: int) -> AsyncIterator[None]:
        """While a member is being forgotten: their open sessions are dropped unwritten and
        none opens for them (so no presence link is made again) until the forget is done."""
        async with self._lock:
            self._drop(guild_id, user_id)
            self._blocked.add((guild_id, user_id))
        try:
            yield
        finally:
            async with self._lock:
                self._drop(guild_id, user_id)
                self._blocked.discard((guild_id, user_id))

    def _drop(self, guild_id: int, user_id: int) -> None:
        for key in [k for k in self.sessions if k[0] == guild_id and k[1] == user_id]:
            del self.sessions[key]
        self._orphans = [
            s for s in self._orphans if not (s.guild_id == guild_id and s.user_id == user_id)
        ]
        self._capped = {k for k in self._capped if not (k[0] == guild_id and k[1] == user_id)}
        self._consent.pop((guild_id, user_id), None)
        self._linked = {k for k in self._linked if not (k[0] == guild_id and k[1] == user_id)}

    # -- counting

    async def flush(self) -> None:
        """Write what every open session added. The sessions are sent side by side (each in
        its own order), so the store's writer commits them in a few batches, not one round
        trip each."""
        now = self.clock.now()
        async with self._lock:
            await asyncio.gather(*(self._send(orphan) for orphan in self._orphans))
            self._orphans = [orphan for orphan in self._orphans if orphan.unsent]
            running = []
            for session in list(self.sessions.values()):
                if self._lost_at(session.guild_id) is None:
                    self._advance(session, now)
                if self._reached_cap(session):
                    await self._close(session, now, "capped")
                    continue
                self._queue_progress(session, now)
                running.append(session)
            await asyncio.gather(*(self._send(session) for session in running))

    async def _apply(self, guild_id: int, member: MemberPresence, now: datetime) -> None:
        if (guild_id, member.user_id) in self._blocked:
            return
        wanted: dict[str, str] = {}
        reason = "ended"
        if member.status != "offline" and member.games:
            if await self._consents(guild_id, member.user_id, now):
                for game in member.games:
                    game_id = await self._game(game)
                    wanted.setdefault(game_id, game.name)
            else:
                reason = "stopped"
        paused = member.status == "idle" and self.config.pause_when_idle
        for key, session in list(self.sessions.items()):
            if key[0] != guild_id or key[1] != member.user_id:
                continue
            self._advance(session, now)
            if key[2] not in wanted:
                await self._close(session, now, reason)
            else:
                session.paused = paused
        for key in [k for k in self._capped if k[0] == guild_id and k[1] == member.user_id]:
            if key[2] not in wanted:
                self._capped.discard(key)  # the game went: it may count again
        for game_id, name in wanted.items():
            key = (guild_id, member.user_id, game_id)
            if key in self.sessions or key in self._capped:
                continue
            if (guild_id, member.user_id, member.name) not in self._linked:
                await self.store.presence.ensure_link(guild_id, member.user_id, member.name, now)
                self._linked.add((guild_id, member.user_id, member.name))
            self.sessions[key] = _Session(
                sid=secrets.token_hex(8), guild_id=guild_id, user_id=member.user_id,
                game_id=game_id, name=name, started=now, since=now, paused=paused,
            )  # fmt: skip

    def _advance(self, session: _Session, now: datetime) -> None:
        seconds = max(0.0, (now - session.since).total_seconds())
        session.since = max(session.since, now)
        # The cap bounds the session's whole length, idle time included (it counts in the
        # total): past it nothing counts, and the next flush closes the session.
        room = max(0.0, self.config.max_session_hours * 3600.0 - session.active - session.idle)
        if session.paused:
            session.idle += min(seconds, room)
        else:
            session.active += min(seconds, room)

    def _reached_cap(self, session: _Session) -> bool:
        return session.active + session.idle >= self.config.max_session_hours * 3600.0

    def _queue_progress(self, session: _Session, now: datetime) -> None:
        """The session's new time as raw events (once it is long enough to count)."""
        if session.active < self.config.min_session_seconds:
            return
        base = {"session": session.sid, "user_id": str(session.user_id),
                "game_id": session.game_id, "game_name": session.name}  # fmt: skip
        if not session.announced:
            session.announced = True
            session.unsent.append(
                {"type": "presence.session.started", **base, "at": to_iso(session.started)}
            )
        new = int(session.active) - session.credited
        idle = int(session.idle) - session.idle_credited
        if new > 0 or idle > 0:
            session.seq += 1
            session.credited += new
            session.idle_credited += idle
            session.unsent.append(
                {
                    "type": "presence.played",
                    **base,
                    "seq": session.seq,
                    "seconds": new,
                    "idle_seconds": idle,
                    "at": to_iso(now),
                }
            )

    async def _close(self, session: _Session, at: datetime, reason: str) -> None:
        key = (session.guild_id, session.user_id, session.game_id)
        self.sessions.pop(key, None)
        if reason == "capped":
            self._capped.add(key)
        if session.active < self.config.min_session_seconds and not session.announced:
            return  # too short: nothing of it is kept
        self._queue_progress(session, at)
        session.unsent.append({
            "type": "presence.session.ended", "session": session.sid,
            "user_id": str(session.user_id), "game_id": session.game_id,
            "game_name": session.name, "started_at": to_iso(session.started), "at": to_iso(at),
            "active_seconds": session.credited, "idle_seconds": int(session.idle),
            "reason": reason,
        })  # fmt: skip
        await self._send(session)
        if session.unsent:  # the database refused: the next flush sends them
            self._orphans.append(session)

    async def _send(self, session: _Session) -> None:
        while session.unsent:
            raw = session.unsent[0]
            try:
                # "timestamped": retried only now, with the same key and time, so pruning may
                # remove its dedupe row with its payload (one per flush would pile up).
                await self.pipeline.ingest("discord", session.guild_id, raw, timestamped=True)
            except Exception:
                log.exception("presence: could not store a session's time; it is retried")
                return
            session.unsent.pop(0)

    async def _consents(self, guild_id: int, user_id: int, now: datetime) -> bool:
        cached = self._consent.get((guild_id, user_id))
        if cached is not None and now - cached[1] < CONSENT_TTL:
            return cached[0]
        allowed = await self.store.presence.consent(guild_id, user_id)
        self._consent[(guild_id, user_id)] = (allowed, now)
        return allowed

    async def _game(self, game: PlayedGame) -> str:
        key = (game.application_id, game.name.casefold())
        found = self._games.get(key)
        if found is None:
            found = await self.store.presence.game(game.application_id, game.name, self.clock.now())
            self._games[key] = found
        return found
