"""Verified identities: Login with Discord, Sign in through Steam, the Linked Roles entry.

Each flow begins with a state (bot/storage/oauth.py: random, single use, bound to the guild,
member and language that asked, 10 minutes) and ends at a callback of the web server, which
hands the query to this service and renders the :class:`Page` it answers. The service never
raises for what a browser or Discord sends: every refusal and every failure of Discord or
Steam is a page with a status (4xx for what the member can redo, 502/504 when Discord or Steam
did not answer) and, for failures, one log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.clock import Clock
from bot.config import Config
from bot.i18n import Language, language
from bot.metrics import Metrics
from bot.storage import Store
from bot.storage.records import OAuthState, StoredTokens, VerifyOutcome
from bot.vault import Vault
from connectors.discord import (
    DiscordOAuth,
    DiscordOAuthError,
    DiscordUser,
    OAuthError,
    RateLimited,
    Tokens,
    Unauthorized,
    Unavailable,
)
from connectors.steam import OpenIDError, SteamOpenID

log = logging.getLogger(__name__)

DISCORD_CALLBACK = "/oauth/discord/callback"
STEAM_CALLBACK = "/oauth/steam/callback"
DISCORD_START = "/oauth/discord/start"
STEAM_START = "/oauth/steam/start"
LINKED_ROLES_ENTRY = "/oauth/discord/linked-roles"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Unfinished Linked Roles sign-ins at once (each is a row for 10 minutes and a day after).
MAX_OPEN_ENTRIES = 5_000
_STEAM_ID = re.compile(r"7656119[0-9]{10}", re.ASCII)
#: OAuth 2.0's error codes (RFC 6749, 4.1.2.1): counted by name; anything else as other_error.
_OAUTH_ERRORS = frozenset({
    "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
    "invalid_scope", "server_error", "temporarily_unavailable",
})  # fmt: skip


@dataclass(frozen=True)
class Page:
    """A result page: ``key`` names its title and text in the catalogues (``page.<key>.title``,
    ``page.<key>.text``); ``fields`` fill them (escaped by the web server); ``link`` is a
    next step (an address and the id of its label)."""

    status: int
    key: str
    language: Language = "en"
    fields: Mapping[str, str] = field(default_factory=dict)
    items: tuple[str, ...] = ()
    link: tuple[str, str] | None = None


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass(frozen=True)
class Offer:
    """What /link steam offers: the start addresses, or the key an admin must set."""

    discord_url: str | None
    steam_url: str | None
    missing: str | None


def _usable_public_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (parts.hostname or "") in _LOCAL_HOSTS


class IdentityService:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: Store,
        metrics: Metrics,
        *,
        vault: Callable[[], Vault],
        oauth: DiscordOAuth | None,
        openid: SteamOpenID,
        steam_name: Callable[[str], Awaitable[str | None]],
        on_links_changed: Callable[[str], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self._vault_factory = vault
        self._vault: Vault | None = None
        self.oauth = oauth
        self.openid = openid
        self._steam_name = steam_name
        self._links_changed = on_links_changed
        #: Called with a member's id after they connected (the Linked Roles pusher listens).
        self.on_connected: Callable[[int], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        if self.oauth is not None:
            await self.oauth.aclose()
        await self.openid.aclose()

    # -- configuration

    @property
    def public_url(self) -> str:
        return self.config.web.public_url.rstrip("/")

    def public_problem(self) -> str | None:
        """The key to set before a member's browser can come back to Questlog, or None."""
        if not self.public_url:
            return "[web] public_url"
        if not _usable_public_url(self.public_url):
            return "[web] public_url (an https:// address)"
        return None

    def discord_problem(self) -> str | None:
        """The key to set before Login with Discord works, or None."""
        if not self.config.discord.client_id:
            return "[discord] client_id"
        if not self.config.discord.client_secret:
            return "[discord] client_secret (or DISCORD_CLIENT_SECRET)"
        return self.public_problem()

    @property
    def discord_redirect(self) -> str:
        return self.public_url + DISCORD_CALLBACK

    def steam_return_to(self, state: str) -> str:
        return f"{self.public_url}{STEAM_CALLBACK}?s={state}"

    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = self._vault_factory()
        return self._vault

    # -- beginning a flow (a slash command)

    async def offer(self, guild_id: int, user_id: int, locale: str | None) -> Offer:
        """Fresh start addresses for the member (a state each), or the key to set."""
        lang = language(locale)
        now = self.clock.now()
        if self.public_problem() is not None:
            return Offer(None, None, self.public_problem())
        discord_url = None
        if self.discord_problem() is None:
            state = await self.store.oauth.create(
                kind="discord", guild_id=guild_id, user_id=user_id, language=lang, now=now
            )
            discord_url = f"{self.public_url}{DISCORD_START}?s={state}"
        # With Login with Discord available, the browser that signs in through Steam first
        # proves it is the member's (Discord, scope identify): a Steam start address sent to
        # someone else cannot link their Steam account to the sender.
        kind = "steam_check" if discord_url is not None else "steam"
        state = await self.store.oauth.create(
            kind=kind, guild_id=guild_id, user_id=user_id, language=lang, now=now
        )
        steam_url = f"{self.public_url}{STEAM_START}?s={state}"
        return Offer(discord_url, steam_url, self.discord_problem())

    # -- the web server's routes

    async def discord_start(self, state: str) -> Redirect | Page:
        if self.discord_problem() is not None or self.oauth is None:
            return Page(404, "oauth_off", fields={"key": self.discord_problem() or ""})
        refused = await self._peek(state, "discord")
        if refused is not None:
            return refused
        return Redirect(self.oauth.authorize_url(state, self.discord_redirect))

    async def linked_roles_start(self) -> Redirect | Page:
        """The Linked Roles menu sends members here without a state: a flow of its own."""
        if self.discord_problem() is not None or self.oauth is None:
            return Page(404, "oauth_off", fields={"key": self.discord_problem() or ""})
        now = self.clock.now()
        # Anyone may open this address (no state of ours yet): the flows begun and not finished
        # are capped, so it cannot fill the database.
        if await self.store.oauth.outstanding("linked_roles", now) >= MAX_OPEN_ENTRIES:
            log.warning("Linked Roles entry: too many unfinished sign-ins; refusing new ones")
            return Page(429, "busy")
        state = await self.store.oauth.create(
            kind="linked_roles", guild_id=None, user_id=None, language="en", now=now
        )
        return Redirect(self.oauth.authorize_url(state, self.discord_redirect))

    async def steam_start(self, state: str, confirmed: bool = False) -> Redirect | Page:
        if self.public_problem() is not None:
            return Page(404, "oauth_off", fields={"key": self.public_problem() or ""})
        now = self.clock.now()
        outcome, found = await self.store.oauth.peek(state, ("steam", "steam_check"), now)
        if outcome != "ok" or found is None:
            return self._state_page(outcome, found)
        if found.kind == "steam_check":
            if self.oauth is None or self.discord_problem() is not None:
                return Page(404, "oauth_off", fields={"key": self.discord_problem() or ""})
            return Redirect(
                self.oauth.authorize_url(state, self.discord_redirect, scopes=("identify",))
            )
        if not confirmed:
            # Without Login with Discord nothing proves this browser is the member's: say what
            # the sign-in does before Steam is asked (a link someone sent is a trap).
            return Page(
                200, "steam_confirm", language(found.language),
                link=(f"{self.public_url}{STEAM_START}?s={state}&go=1", "page.steam_continue"),
            )  # fmt: skip
        return Redirect(self.openid.begin_url(self.steam_return_to(state), self.public_url))

    async def discord_callback(self, query: Mapping[str, str]) -> Page | Redirect:
        if self.discord_problem() is not None or self.oauth is None:
            return Page(404, "oauth_off", fields={"key": self.discord_problem() or ""})
        now = self.clock.now()
        outcome, found = await self.store.oauth.consume(
            query.get("state", ""), ("discord", "linked_roles", "steam_check"), now
        )
        if outcome != "ok" or found is None:
            return self._state_page(outcome, found)
        lang = found.language
        error = query.get("error")
        if error is not None:
            known = error if error in _OAUTH_ERRORS else "other_error"
            self.metrics.inc("questlog_oauth_total", flow="discord", result=known)
            if error == "access_denied":
                return Page(400, "denied", lang)
            log.warning("Discord refused a sign-in: %r", error[:100])
            return Page(400, "discord_error", lang, {"error": query.get("error_description")
                                                     or error})  # fmt: skip
        code = query.get("code")
        if not code:
            return Page(400, "state_unknown", lang)
        try:
            tokens = await self.oauth.exchange(code, self.discord_redirect, now)
            me = await self.oauth.me(tokens.access_token)
        except DiscordOAuthError as exc:
            return self._discord_failed(exc, lang)
        if found.kind == "linked_roles":
            lang = language(me.locale)
        elif me.id != found.user_id:
            # Someone else's browser finished this member's flow: refuse, keep nothing.
            self.metrics.inc("questlog_oauth_total", flow="discord", result="other_user")
            log.warning("a Discord sign-in was finished by another account than the one asking")
            await self._revoke_quietly(tokens)
            return Page(403, "other_user", lang)
        if found.kind == "steam_check":
            # The browser is the member's: on to Steam with a state of the next step.
            await self._revoke_quietly(tokens)  # (identify only; nothing is kept)
            steam_state = await self.store.oauth.create(
                kind="steam", guild_id=found.guild_id, user_id=found.user_id,
                language=found.language, now=now,
            )  # fmt: skip
            return Redirect(
                self.openid.begin_url(self.steam_return_to(steam_state), self.public_url)
            )
        await self._save_tokens(me, tokens)
        if found.kind == "linked_roles":
            await self._connected(me.id)
            self.metrics.inc("questlog_oauth_total", flow="linked_roles", result="ok")
            return Page(200, "roles_connected", lang, {"name": me.display})
        try:
            connections = await self.oauth.connections(tokens.access_token)
        except DiscordOAuthError as exc:
            return self._discord_failed(exc, lang)
        steam = [
            c
            for c in connections
            if c.type == "steam" and c.verified and not c.revoked and _STEAM_ID.fullmatch(c.id)
        ]
        assert found.guild_id is not None
        assert found.guild_id is not None and found.user_id is not None
        outcomes = await self._verify(
            found.guild_id, found.user_id, [(c.id, c.name or None) for c in steam], "discord"
        )
        await self._connected(me.id)
        self.metrics.inc("questlog_oauth_total", flow="discord", result="ok")
        if not outcomes:
            steam_state = await self.store.oauth.create(
                kind="steam", guild_id=found.guild_id, user_id=found.user_id,
                language=lang, now=now,
            )  # fmt: skip
            return Page(
                200, "no_steam_connection", lang, {"name": me.display},
                # (this browser just proved it is the member's: no confirmation needed)
                link=(
                    f"{self.public_url}{STEAM_START}?s={steam_state}&go=1",
                    "page.steam_button",
                ),
            )  # fmt: skip
        names = tuple(
            f"{o.link.display_name or o.link.external_id} ({o.link.external_id})" for o in outcomes
        )
        return Page(200, "discord_linked", lang, {"name": me.display}, items=names)

    async def steam_callback(self, query: Mapping[str, str]) -> Page:
        if self.public_problem() is not None:
            return Page(404, "oauth_off", fields={"key": self.public_problem() or ""})
        now = self.clock.now()
        state = query.get("s", "")
        outcome, found = await self.store.oauth.consume(state, ("steam",), now)
        if outcome != "ok" or found is None:
            return self._state_page(outcome, found)
        lang = found.language
        try:
            assertion = await self.openid.verify(query, self.steam_return_to(state), now)
        except OpenIDError as exc:
            self.metrics.inc("questlog_oauth_total", flow="steam", result=exc.reason)
            if exc.reason == "cancelled":
                return Page(400, "denied", lang)
            if exc.reason == "unavailable":
                log.warning("Steam's OpenID provider did not answer: %s", exc)
                return Page(502, "steam_down", lang)
            log.warning("a Sign in through Steam was refused: %s", exc)
            return Page(400, "steam_refused", lang)
        fresh = await self.store.oauth.remember_nonce(
            self.openid.endpoint, assertion.nonce, assertion.nonce_expiry()
        )
        if not fresh:
            self.metrics.inc("questlog_oauth_total", flow="steam", result="replayed")
            log.warning("a Sign in through Steam assertion was replayed")
            return Page(400, "steam_refused", lang)
        name = await self._steam_name(assertion.steam_id)
        assert found.guild_id is not None and found.user_id is not None
        [done] = await self._verify(
            found.guild_id, found.user_id, [(assertion.steam_id, name)], "openid"
        )
        self.metrics.inc("questlog_oauth_total", flow="steam", result="ok")
        shown = f"{done.link.display_name or assertion.steam_id} ({assertion.steam_id})"
        return Page(200, "steam_linked", lang, items=(shown,))

    # -- a typed SteamID that Discord knows as verified

    async def proven_by_discord(self, user_id: int, steam_id: str) -> bool:
        """Whether the member's stored token shows this Steam account as a verified Discord
        connection (False when not connected, or Discord cannot be asked)."""
        access = await self.access_token(user_id)
        if access is None or self.oauth is None:
            return False
        try:
            connections = await self.oauth.connections(access)
        except Unauthorized:
            await self.store.tokens.drop(user_id)
            return False
        except DiscordOAuthError as exc:
            log.info("could not read a member's Discord connections: %s", exc)
            return False
        return any(
            c.type == "steam" and c.id == steam_id and c.verified and not c.revoked
            for c in connections
        )

    async def link_proven(
        self, guild_id: int, user_id: int, steam_id: str, name: str | None, how: str
    ) -> VerifyOutcome:
        """Link a Steam account the member proved (a typed id Discord knows as theirs)."""
        [done] = await self._verify(guild_id, user_id, [(steam_id, name)], how)
        return done

    async def access_token(self, user_id: int) -> str | None:
        stored = await self.store.tokens.get(user_id)
        if stored is None or stored.expires_at <= self.clock.now():
            return None
        return self.vault().open(stored.access_token)

    # -- helpers

    async def _verify(
        self, guild_id: int, user_id: int, accounts: list[tuple[str, str | None]], how: str
    ) -> list[VerifyOutcome]:
        outcomes = await self.store.links.verify(
            guild_id=guild_id,
            discord_user_id=user_id,
            accounts=[("steam", steam_id, name) for steam_id, name in accounts],
            verified_by=how,
            now=self.clock.now(),
        )
        if outcomes:
            self._links_changed("steam")
        return outcomes

    async def _save_tokens(self, me: DiscordUser, tokens: Tokens) -> None:
        vault = self.vault()
        await self.store.tokens.save(
            StoredTokens(
                user_id=me.id,
                access_token=vault.seal(tokens.access_token),
                refresh_token=vault.seal(tokens.refresh_token),
                scope=tokens.scope,
                expires_at=tokens.expires_at,
                locale=me.locale,
                username=me.display,
            ),
            self.clock.now(),
        )

    async def _connected(self, user_id: int) -> None:
        if self.on_connected is None:
            return
        try:
            await self.on_connected(user_id)
        except Exception:  # the member's link is made; their role values follow later
            log.exception("could not update a member's Linked Roles values")

    async def _peek(self, state: str, kind: str) -> Page | None:
        outcome, found = await self.store.oauth.peek(state, (kind,), self.clock.now())
        return None if outcome == "ok" else self._state_page(outcome, found)

    async def _revoke_quietly(self, tokens: Tokens) -> None:
        if self.oauth is None:
            return
        try:
            await self.oauth.revoke(tokens.access_token)
        except DiscordOAuthError as exc:
            log.info("could not revoke a token Questlog does not keep: %s", exc)

    def _state_page(self, outcome: str, found: OAuthState | None) -> Page:
        lang: Language = language(found.language) if found is not None else "en"
        self.metrics.inc("questlog_oauth_total", flow="state", result=outcome)
        status = {"expired": 410, "used": 409}.get(outcome, 400)
        return Page(status, f"state_{outcome}", lang)

    def _discord_failed(self, exc: DiscordOAuthError, lang: Language) -> Page:
        result: dict[type[Any], tuple[int, str]] = {
            OAuthError: (400, "grant_refused"),
            Unauthorized: (400, "grant_refused"),
            RateLimited: (503, "discord_busy"),
            Unavailable: (502, "discord_down"),
        }
        status, key = result.get(type(exc), (502, "discord_down"))
        if isinstance(exc, Unavailable) and "in time" in str(exc):
            status = 504
        self.metrics.inc("questlog_oauth_total", flow="discord", result=key)
        log.warning("Login with Discord failed: %s", exc)
        return Page(status, key, lang)


def oauth_client(config: Config) -> DiscordOAuth | None:
    """The Discord OAuth2 client of this set-up, or None when ``[discord] client_id`` and
    ``client_secret`` are not both set (members then link unverified only)."""
    if not (config.discord.client_id and config.discord.client_secret):
        return None
    return DiscordOAuth(
        client_id=config.discord.client_id,
        client_secret=config.discord.client_secret,
        api_base_url=config.discord.api_base_url,
        authorize_url=config.discord.authorize_url,
    )
