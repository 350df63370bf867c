"""Game server consoles for admins (``questlog endpoint rcon``, ``/webhook rcon``): an
endpoint's RCON settings checked and saved with the password sealed by the instance key, and
the lookup the console actions use (connectors/rcon.py) to reach a server."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import datetime

from bot.clock import Clock
from bot.services.endpoint_admin import EndpointAdmin, EndpointError
from bot.storage import Store
from bot.storage.records import ConsoleSettings
from bot.vault import Vault
from connectors.base import ActionPaused
from connectors.rcon import RconClient, RconError, RconTarget
from connectors.squad import SQUAD_APP_ID

GAMES = ("minecraft", "squad")
MAX_PASSWORD = 512
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    re.ASCII,
)


def check_host(host: str) -> str:
    """A host name or an IP address, as typed (IPv6 without brackets)."""
    value = host.strip()
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise EndpointError("host: must be a host name or an IP address", "console_host")
    return value.lower()


def check_password(password: str) -> str:
    """The RCON password as typed; a trailing line break (from --password-stdin) goes."""
    value = password.removesuffix("\n").removesuffix("\r")
    if not value:
        raise EndpointError("password: must not be empty", "console_password")
    if len(value) > MAX_PASSWORD or any(c in value for c in "\x00\r\n"):
        raise EndpointError(
            f"password: must be one line of at most {MAX_PASSWORD} characters",
            "console_password_form",
            limit=str(MAX_PASSWORD),
        )
    return value


class ConsoleAdmin:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        endpoints: EndpointAdmin,
        vault: Callable[[], Vault],
        *,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.endpoints = endpoints
        self.vault = vault
        self.timeout = timeout

    async def set(
        self,
        path: str,
        *,
        game: str,
        host: str,
        port: int,
        password: str,
        announce: bool = True,
        guild_id: int | None = None,
        now: datetime | None = None,
    ) -> ConsoleSettings:
        """Save the endpoint's console: a Minecraft endpoint's, or a playtime endpoint's whose
        fixed game is Squad. Raises EndpointError naming what is wrong."""
        endpoint = await self.endpoints.find(path, guild_id=guild_id)
        if game not in GAMES:
            raise EndpointError("game: must be minecraft or squad", "console_game")
        if game == "minecraft" and endpoint.kind != "minecraft":
            raise EndpointError(
                "a Minecraft console belongs on an endpoint of kind minecraft",
                "console_minecraft",
            )
        if game == "squad" and (endpoint.kind != "playtime" or endpoint.game_id != SQUAD_APP_ID):
            raise EndpointError(
                f"a Squad console belongs on a playtime endpoint with --game-id {SQUAD_APP_ID}",
                "console_squad",
                game_id=str(SQUAD_APP_ID),
            )
        if endpoint.disabled:
            raise EndpointError("endpoint is disabled", "disabled")
        if not 0 < port < 65536:
            raise EndpointError("port: must be between 1 and 65535", "console_port")
        sealed = self.vault().seal(check_password(password))
        return await self.store.consoles.set(
            endpoint.id, game=game, host=check_host(host), port=port, sealed_password=sealed,
            announce=announce, now=now or self.clock.now(),
        )  # fmt: skip

    async def remove(self, path: str, *, guild_id: int | None = None) -> bool:
        endpoint = await self.endpoints.find(path, guild_id=guild_id)
        return await self.store.consoles.remove(endpoint.id)

    async def target(self, endpoint_id: int) -> RconTarget | None:
        """How to reach the endpoint's console; None when it has none or is disabled.
        ActionPaused when the instance key cannot open its password (the admin sets it
        again; said once in the log)."""
        settings = await self.store.consoles.get(endpoint_id)
        if settings is None:
            return None
        password = self.vault().open(settings.sealed_password)
        if password is None:
            raise ActionPaused(
                "the RCON password cannot be decrypted with this instance key: set it again"
            )
        return RconTarget(settings.host, settings.port, password)

    async def check(self, endpoint_id: int) -> str | None:
        """Log in to the console once: None when that worked, else why not (no password in
        it)."""
        try:
            target = await self.target(endpoint_id)
        except ActionPaused as exc:
            return str(exc)
        if target is None:
            return "the endpoint has no RCON settings"
        client = RconClient(target, connect_timeout=self.timeout, command_timeout=self.timeout)
        try:
            await client.check()
        except RconError as exc:
            return str(exc)
        finally:
            await client.close()
        return None
