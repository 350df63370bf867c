"""Squad: what Questlog sends a Squad server over RCON, and the admin list it serves.

The list (``GET /squad/admins/<path>.cfg``, endpoint kind ``squad_admins``) is in the
``Admins.cfg`` format a server reads from the URLs in ``RemoteAdminListHosts.cfg``:
``Group=<Name>:<permission>,...`` lines, then ``Admin=<SteamID64>:<Group> // <comment>`` lines.
Squad cannot sign its requests: the unguessable path is the only key, so the list holds Steam
ids and group names and, in comments, only letters, digits, spaces and ``_.-``.

Squad takes an admin command's last argument as the rest of the line, so a message is made one
line (connectors/rcon.py, ``one_line``) and its ``|`` replaced (Unreal's console splits a line
into several commands there). ``AdminWarn`` names the player by SteamID64 only, checked by the
model, so no name from outside is ever an argument of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import ActionSpec, Connector, EndpointKind, RouteSpec
from connectors.rcon import ConsoleActions, one_line

SQUAD_APP_ID = 393380
#: Squad's admin permissions (its Admins.cfg documentation), in its own spelling.
PERMISSIONS = (
    "reserve", "balance", "ban", "cameraman", "canseeadminchat", "changemap", "chat",
    "cheat", "clientdemos", "config", "debug", "demos", "featuretest", "forceteamchange",
    "immune", "kick", "manageserver", "pause", "private", "startvote", "teamchange",
)  # fmt: skip
GROUP_NAME = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)
_UNSAFE_COMMENT = re.compile(r"[^A-Za-z0-9 _.\-]+", re.ASCII)


def admins_cfg(
    groups: Mapping[str, Iterable[str]], admins: Iterable[tuple[str, str, str | None]]
) -> str:
    """The admin list: every group with its permissions (sorted, each once), then one line per
    (SteamID64, group, name) with the name reduced to safe characters as its comment. Groups
    and Steam ids were checked when stored; one that is not well formed is left out."""
    lines = ["// Questlog: groups earned by playtime. Generated; edits here are overwritten."]
    named = sorted(name for name in groups if GROUP_NAME.fullmatch(name))
    for name in named:
        permissions = sorted({p for p in groups[name] if p in PERMISSIONS})
        lines.append(f"Group={name}:{','.join(permissions)}")
    for steam_id, group, comment in admins:
        if group not in named or not re.fullmatch(r"7656119[0-9]{10}", steam_id):
            continue
        safe = _UNSAFE_COMMENT.sub("", comment or "").strip()[:32]
        lines.append(f"Admin={steam_id}:{group}" + (f" // {safe}" if safe else ""))
    return "\n".join(lines) + "\n"


#: What a broadcast or warning may hold (Squad shows long broadcasts cut off).
MAX_MESSAGE = 200


def _message(text: str) -> str:
    line = one_line(text, max_len=MAX_MESSAGE).replace("|", "\u00a6")
    if not line:
        raise ValueError("must not be empty")
    return line


class Broadcast(BaseModel):
    """``AdminBroadcast <message>``: a message every player sees."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: int = Field(gt=0)
    message: str = Field(max_length=1000)

    @field_validator("message")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _message(value)


class Warn(BaseModel):
    """``AdminWarn <SteamID64> <message>``: a message one player sees."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: int = Field(gt=0)
    steam_id: str = Field(pattern=r"^7656119[0-9]{10}$")
    message: str = Field(max_length=1000)

    @field_validator("message")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _message(value)


class SquadConnector(ConsoleActions, Connector):
    key = "squad"
    name = "Squad"
    actions = (
        ActionSpec(
            "broadcast", "AdminBroadcast over RCON", Broadcast, "broadcast", idempotent=False
        ),
        ActionSpec("warn", "AdminWarn over RCON", Warn, "warn", idempotent=False),
    )
    endpoint_kinds = (
        EndpointKind(
            "squad_admins",
            "a Squad server's reserved-slot list",
            routes=(
                RouteSpec(
                    "/squad/admins/{path}.cfg",
                    "squad_admins",
                    label="Squad admin list",
                    scheme="none",
                    handler="squad_admins",
                    method="GET",
                    content_types=(),
                ),
            ),
            needs_secret=False,
        ),
    )

    async def broadcast(self, command: Broadcast) -> str:
        return await self.send(command.endpoint_id, f"AdminBroadcast {command.message}")

    async def warn(self, command: Warn) -> str:
        return await self.send(
            command.endpoint_id, f"AdminWarn {command.steam_id} {command.message}"
        )
