"""Linked Roles: the role-connection metadata Questlog registers, and each connected member's
values, pushed to Discord with the member's own token.

A role connection is per member and application, not per guild, so the values come from one
guild: ``[linked_roles] guild_id``. A member's values are pushed right after they connect;
then a scan every 10 minutes pushes the members whose values changed (at most once per member
per 10 minutes) and, once a day, everyone (``hours_30d`` shrinks by itself). Tokens are
refreshed a day before they expire; ``invalid_grant`` on refresh, or a 401 on the push, drops
them (the member shows as not connected). A 429 waits Discord's ``retry_after``; pushes are
paced well under Discord's limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import Config
from bot.i18n import texts
from bot.storage import Store
from bot.storage.records import RoleValues, StoredTokens
from bot.vault import Vault
from connectors.discord import (
    DiscordOAuth,
    DiscordOAuthError,
    MetadataRecord,
    OAuthError,
    RateLimited,
    Unauthorized,
)

log = logging.getLogger(__name__)

PLATFORM_NAME = "Questlog"
SCAN_EVERY = timedelta(minutes=10)
MIN_GAP = timedelta(minutes=10)  # between two pushes of one member's changed values
DAILY = timedelta(days=1)
REFRESH_AHEAD = timedelta(days=1)
RETRY_AFTER_FAILURE = timedelta(minutes=5)
PUSHES_PER_SECOND = 5.0
REFRESH_PAGES = 40  # at most 20,000 expiring tokens looked at per round
#: (key, type, name id, description id): Discord's types 2 = integer >=, 6 = datetime >=,
#: 7 = boolean equal.
METADATA = (
    ("hours_total", 2, "roles.hours_total", "roles.hours_total.description"),
    ("hours_30d", 2, "roles.hours_30d", "roles.hours_30d.description"),
    ("last_played", 6, "roles.last_played", "roles.last_played.description"),
    ("steam_verified", 7, "roles.steam_verified", "roles.steam_verified.description"),
)


def metadata_records() -> list[MetadataRecord]:
    en, ru = texts("en"), texts("ru")
    return [
        MetadataRecord(
            key=key,
            type=kind,
            name=en(name),
            description=en(description),
            name_localizations={"ru": ru(name)},
            description_localizations={"ru": ru(description)},
        )
        for key, kind, name, description in METADATA
    ]


def role_metadata(values: RoleValues) -> dict[str, str]:
    """The values as Discord takes them: strings; an integer, an ISO 8601 time, "1" or "0"."""
    out = {
        "hours_total": str(values.hours_total),
        "hours_30d": str(values.hours_30d),
        "steam_verified": "1" if values.steam_verified else "0",
    }
    if values.last_played is not None:
        out["last_played"] = values.last_played.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


class RoleConnections:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: Store,
        oauth: DiscordOAuth,
        vault: Vault,
        *,
        days_of: Callable[[datetime], tuple[str, str]],
    ) -> None:
        self.guild_id = config.linked_roles.guild_id
        self.bot_token = config.discord.token
        self.clock = clock
        self.store = store
        self.oauth = oauth
        self.vault = vault
        self._days_of = days_of  # now -> the first and last local days of the last 30 days
        self._last_scan: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.registered = False
        self.pace_seconds = 1 / PUSHES_PER_SECOND
        #: member -> no refresh before (after a failure); in memory, one process refreshes
        self._refresh_after: dict[int, datetime] = {}

    # -- start and stop

    async def register(self) -> bool:
        """PUT the metadata with the bot token (once at start). False, logged, on failure."""
        if not self.bot_token:
            log.warning("Linked Roles: no bot token, so the role-connection metadata is not set")
            return False
        try:
            await self.oauth.put_metadata(self.bot_token, metadata_records())
        except DiscordOAuthError as exc:
            log.warning("Linked Roles: Discord refused the role-connection metadata: %s", exc)
            return False
        self.registered = True
        return True

    async def start(self, every: float = 60.0) -> None:
        """Register the metadata and update values in the background (start-up never waits
        for Discord)."""
        self._task = asyncio.create_task(self._run(every), name="linked-roles")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, every: float) -> None:
        while True:
            try:
                if not self.registered:  # Discord down at start: tried again each round
                    await self.register()
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Linked Roles: a round of updates failed; trying again later")
            await asyncio.sleep(every)

    # -- the work

    async def tick(self) -> dict[str, int]:
        """One round: refresh tokens near expiry, push what is due, and (every 10 minutes)
        scan every connected member for changed values. Returns counts, for tests and logs."""
        now = self.clock.now()
        done = {"refreshed": 0, "pushed": 0, "dropped": 0}
        after: tuple[datetime, int] | None = None
        for _ in range(REFRESH_PAGES):  # every expiring token, a page at a time
            page = await self.store.tokens.expiring(now + REFRESH_AHEAD, 500, after)
            for stored in page:
                if self._refresh_after.get(stored.user_id, now) > now:
                    continue  # failed lately: not before its backoff (others go on)
                await self._refresh(stored, done)
            if len(page) < 500:
                break
            after = (page[-1].expires_at, page[-1].user_id)
        due = {t.user_id for t in await self.store.tokens.due(now, 500)}
        if self._last_scan is None or now - self._last_scan >= SCAN_EVERY:
            self._last_scan = now
            due |= await self._changed(now)
        for user_id in sorted(due):
            if await self.push(user_id, done):
                await self._pace()
        return done

    async def _pace(self) -> None:
        """Pushes are spread out (a member's token has its own bucket at Discord, but a burst
        of thousands would still be rude)."""
        await asyncio.sleep(self.pace_seconds)

    async def _changed(self, now: datetime) -> set[int]:
        found = set()
        for stored in await self.store.tokens.connected():
            user_id = stored.user_id
            if stored.push_due_at is not None and stored.push_due_at > now:
                continue  # postponed (a 429, a failure): not before then
            if stored.pushed_at is None or now - stored.pushed_at >= DAILY:
                found.add(user_id)
                continue
            if now - stored.pushed_at < MIN_GAP:
                continue
            values = json.dumps(role_metadata(await self.values(user_id)), sort_keys=True)
            if values != stored.pushed_values:
                found.add(user_id)
        return found

    async def values(self, user_id: int) -> RoleValues:
        first, last = self._days_of(self.clock.now())
        return await self.store.stats.role_values(self.guild_id, user_id, first, last)

    async def push(self, user_id: int, done: dict[str, int] | None = None) -> bool:
        """PUT the member's values now; True when a request was sent."""
        done = done if done is not None else {"refreshed": 0, "pushed": 0, "dropped": 0}
        stored = await self.store.tokens.get(user_id)
        now = self.clock.now()
        if stored is None:
            return False
        access = self.vault.open(stored.access_token)
        if access is None:  # the key cannot open it (said once): not connected, try tomorrow
            await self.store.tokens.postpone(user_id, now + DAILY)
            return False
        values = await self.values(user_id)
        metadata = role_metadata(values)
        try:
            await self.oauth.put_role_connection(
                access,
                platform_name=PLATFORM_NAME,
                platform_username=values.steam_name or stored.username,
                metadata=metadata,
            )
        except Unauthorized:
            await self.store.tokens.drop(user_id)
            done["dropped"] += 1
            log.info("Linked Roles: a member's token was refused; they show as not connected")
            return True
        except RateLimited as exc:
            await self.store.tokens.postpone(user_id, now + timedelta(seconds=exc.retry_after))
            return True
        except DiscordOAuthError as exc:
            log.warning("Linked Roles: could not update a member's values: %s", exc)
            await self.store.tokens.postpone(user_id, now + RETRY_AFTER_FAILURE)
            return True
        await self.store.tokens.pushed(user_id, json.dumps(metadata, sort_keys=True), now, None)
        done["pushed"] += 1
        return True

    async def push_now(self, user_id: int) -> None:
        """Right after a member connected (the sign-in flow waits for it, briefly)."""
        await self.push(user_id)

    async def _refresh(self, stored: StoredTokens, done: dict[str, int]) -> None:
        refresh = self.vault.open(stored.refresh_token)
        now = self.clock.now()
        if refresh is None:  # the key cannot open it (said once): try again tomorrow
            self._refresh_after[stored.user_id] = now + DAILY
            return
        try:
            tokens = await self.oauth.refresh(refresh, now)
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                await self.store.tokens.drop(stored.user_id)
                self._refresh_after.pop(stored.user_id, None)
                done["dropped"] += 1
                return
            log.warning("Linked Roles: a token refresh was refused: %s", exc.error)
            self._refresh_after[stored.user_id] = now + timedelta(hours=1)
            return
        except RateLimited as exc:
            self._refresh_after[stored.user_id] = now + timedelta(seconds=exc.retry_after)
            return
        except DiscordOAuthError as exc:
            log.warning("Linked Roles: could not refresh a token: %s", exc)
            self._refresh_after[stored.user_id] = now + RETRY_AFTER_FAILURE
            return
        self._refresh_after.pop(stored.user_id, None)
        await self.store.tokens.refreshed(  # not when the member was forgotten meanwhile
            StoredTokens(
                user_id=stored.user_id,
                access_token=self.vault.seal(tokens.access_token),
                refresh_token=self.vault.seal(tokens.refresh_token),
                scope=tokens.scope,
                expires_at=tokens.expires_at,
            ),
            now,
        )
        done["refreshed"] += 1
