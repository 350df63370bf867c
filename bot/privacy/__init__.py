"""Members' privacy: what is stored about them (/privacy show, export), whether Questlog
collects about them (/privacy off|on, /privacy presence), and forgetting them (/privacy
delete, /admin forget, ``questlog forget``).

Forgetting runs in two halves. First, when the member connected Login with Discord and their
tokens are to go, Discord is asked to clear their role connection (DELETE, or a PUT of an empty
one when Discord refuses the DELETE) and to revoke the grant; Discord being unreachable does not
stop the second half, which removes every stored row about them in the guild in one
transaction (bot/storage/privacy.py). Nothing stored brings the data back: the Steam sync keeps
nothing for an account that is no longer enrolled, a retried webhook meets its kept dedupe hash,
and the feed rows are gone.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.clock import Clock, to_iso
from bot.presence import PresenceTracker
from bot.storage import Store
from bot.storage.records import ForgetReport, PrivacyChoice, PrivacySummary, StoredTokens, Total
from bot.vault import Vault
from connectors.discord import DiscordOAuth, DiscordOAuthError, OAuthError, Unauthorized

log = logging.getLogger(__name__)

__all__ = ["DiscordOutcome", "Forgotten", "PrivacyChoice", "PrivacyService", "StoredAbout"]

#: /privacy export's file: under the 8 MiB every Discord server accepts from a bot.
EXPORT_LIMIT = 8 * 1024 * 1024
PLATFORM_NAME = "Questlog"

#: What became of the member's Discord connection when they were forgotten: ``cleared`` (role
#: connection cleared and grant revoked), ``not_connected`` (no tokens), ``kept`` (an admin
#: forgot them here, and their sign-in serves another guild), ``unreachable`` (Discord could
#: not be asked: the tokens are deleted anyway; the member can remove the app under Authorized
#: Apps), ``revoked`` (Discord no longer honoured the token: nothing to clear with it).
DiscordOutcome = Literal["cleared", "not_connected", "kept", "unreachable", "revoked"]


@dataclass(frozen=True)
class StoredAbout:
    """What /privacy show lists: the counts, the stored playtime per game and source (with
    the games' names), the member's choices and the guild's presence default."""

    summary: PrivacySummary
    totals: list[Total]
    choice: PrivacyChoice
    presence_default: bool
    names: dict[str, str]

    @property
    def anything(self) -> bool:
        """Whether there is anything to delete."""
        s = self.summary
        return bool(s.links or s.events or s.tokens or self.totals)


@dataclass(frozen=True)
class Forgotten:
    report: ForgetReport
    discord: DiscordOutcome


class PrivacyService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        vault: Callable[[], Vault],
        oauth: DiscordOAuth | None,
        linked_roles_guild: int | None,
        on_links_changed: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.vault = vault
        self.oauth = oauth
        self.linked_roles_guild = linked_roles_guild
        self.on_links_changed = on_links_changed
        self.presence: PresenceTracker | None = None  # set by the core when presence is on

    # -- seeing

    async def stored_about(self, guild_id: int, user_id: int) -> StoredAbout:
        """What Questlog stores about the member in the guild (/privacy show)."""
        totals = await self.store.stats.member_totals(guild_id, user_id)
        return StoredAbout(
            summary=await self.store.privacy.summary(guild_id, user_id),
            totals=totals,
            choice=await self.store.privacy.choice(guild_id, user_id),
            presence_default=await self.store.privacy.presence_default(guild_id),
            names=await self.store.stats.game_names(sorted({t.game_id for t in totals})),
        )

    async def export(
        self, guild_id: int, user_id: int, limit: int = EXPORT_LIMIT
    ) -> tuple[bytes, bool]:
        """Everything stored about the member in the guild as gzip-compressed JSON of at most
        ``limit`` bytes, and whether it had to be capped: first the samples are left out
        (their sums stay in the days, weeks and months), then the days, each with a note."""
        data = await self.store.privacy.export(guild_id, user_id)
        data["exported_at"] = to_iso(self.clock.now())
        body = _gzip_json(data)
        capped = False
        for part in ("samples", "days"):
            if len(body) <= limit:
                break
            capped = True
            for account in data["accounts"]:  # type: ignore[attr-defined]
                account[f"{part}_left_out"] = len(account[part])
                account[part] = []
            data["note"] = (
                f"capped to fit Discord's upload limit: {part} left out (counted in *_left_out)"
            )
            body = _gzip_json(data)
        if len(body) > limit:  # still too large: the links and summaries, per account counts
            for account in data["accounts"]:  # type: ignore[attr-defined]
                for part in ("weeks_and_months", "sessions", "milestones"):
                    account[f"{part}_left_out"] = len(account[part])
                    account[part] = []
            data["feed_events_left_out"] = len(data["feed_events"])  # type: ignore[arg-type]
            data["feed_events"] = []
            data["note"] = "capped to fit Discord's upload limit: only links and totals kept"
            body = _gzip_json(data)
        return body, capped

    # -- choosing

    async def set_collecting(self, guild_id: int, user_id: int, on: bool) -> bool:
        """/privacy off|on; whether it changed. Off: the Steam sync drops their accounts (unless
        another guild's member who collects links one), their accounts' webhook events are
        withheld, presence stops; what is stored stays."""
        choice = await self.store.privacy.choice(guild_id, user_id)
        if not on and choice.collecting and self.presence is not None:
            await self.presence.stop_member(guild_id, user_id)  # written before it is withheld
        changed = await self.store.privacy.set_choice(
            guild_id, user_id, PrivacyChoice(on, choice.presence), self.clock.now()
        )
        if changed:
            self.on_links_changed("steam")
            if self.presence is not None:
                await self.presence.member_changed(guild_id, user_id)
        return changed

    async def set_presence(self, guild_id: int, user_id: int, on: bool) -> PrivacyChoice:
        """/privacy presence on|off: the member's own choice, over the guild's default."""
        choice = await self.store.privacy.choice(guild_id, user_id)
        new = PrivacyChoice(choice.collecting, on)
        await self.store.privacy.set_choice(guild_id, user_id, new, self.clock.now())
        if self.presence is not None:
            await self.presence.member_changed(guild_id, user_id)
        return new

    @property
    def presence_running(self) -> bool:
        """Whether this Questlog collects presence at all ([presence] enabled, and Discord
        granted the intents)."""
        return self.presence is not None and self.presence.available

    async def presence_default(self, guild_id: int) -> bool:
        return await self.store.privacy.presence_default(guild_id)

    async def set_presence_default(self, guild_id: int, on: bool) -> bool:
        changed = await self.store.privacy.set_presence_default(guild_id, on, self.clock.now())
        if changed and self.presence is not None:
            await self.presence.member_changed(guild_id)
        return changed

    # -- forgetting

    async def forget(self, guild_id: int, user_id: int, *, by_member: bool) -> Forgotten:
        """Remove everything stored about the member in the guild. ``by_member``: their own
        /privacy delete, which also ends their Login with Discord (role connection and
        tokens). An admin's forget ends it only when it serves this guild: the guild is the
        Linked Roles guild, or the member has links in no other guild. While it runs, presence
        opens no session for them."""
        if self.presence is None:
            return await self._forget(guild_id, user_id, by_member=by_member)
        async with self.presence.forgetting(guild_id, user_id):
            return await self._forget(guild_id, user_id, by_member=by_member)

    async def _forget(self, guild_id: int, user_id: int, *, by_member: bool) -> Forgotten:
        drop_tokens = by_member or await self._sign_in_serves_only(guild_id, user_id)
        outcome: DiscordOutcome = "kept"
        if drop_tokens:
            tokens = await self.store.tokens.get(user_id)
            outcome = "not_connected" if tokens is None else await self._end_at_discord(tokens)
        report = await self.store.privacy.forget(
            guild_id, user_id, self.clock.now(), drop_tokens=drop_tokens
        )
        if any(key in report.removed for key in ("account_links", "steam_accounts")):
            self.on_links_changed("steam")
        log.info(
            "forgot a member in guild %s (%s): %d rows%s",
            guild_id,
            "their request" if by_member else "an admin's request",
            report.total,
            f"; Discord sign-in: {outcome}" if drop_tokens else "",
        )
        return Forgotten(report, outcome)

    async def _sign_in_serves_only(self, guild_id: int, user_id: int) -> bool:
        if self.linked_roles_guild == guild_id:
            return True
        return not await self.store.links.linked_elsewhere(user_id, guild_id)

    async def _end_at_discord(self, tokens: StoredTokens) -> DiscordOutcome:
        """Clear the member's role connection and revoke their grant, with their token."""
        if self.oauth is None:
            return "unreachable"  # OAuth is no longer configured: nothing can be asked
        vault = self.vault()
        access, refresh = vault.open(tokens.access_token), vault.open(tokens.refresh_token)
        try:
            if access is not None and tokens.expires_at <= self.clock.now() and refresh:
                access = (await self.oauth.refresh(refresh, self.clock.now())).access_token
            if access is None:
                return "unreachable"  # the key cannot open the token (said once by the vault)
            try:
                await self.oauth.delete_role_connection(access)
            except OAuthError:  # Discord refused the DELETE: an empty role connection instead
                await self.oauth.put_role_connection(
                    access, platform_name=PLATFORM_NAME, platform_username=None, metadata={}
                )
            await self.oauth.revoke(access)
        except Unauthorized:
            return "revoked"
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                return "revoked"
            log.warning("forgetting a member: Discord refused to clear their sign-in: %s", exc)
            return "unreachable"
        except DiscordOAuthError as exc:
            log.warning("forgetting a member: Discord could not be asked: %s", exc)
            return "unreachable"
        return "cleared"


def _gzip_json(data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True, default=str)
    return gzip.compress(text.encode("utf-8"), mtime=0)
