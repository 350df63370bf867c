"""Minecraft server webhooks (a plugin, mod or log bridge posts them).

Payload types (seed 000): ``session.started``, ``session.ended``, ``achievement.unlocked``,
``afk.started`` and ``afk.ended`` (an AFK plugin's spans, left out of active time), and
``link.confirm`` (a player typed the one-time code from ``/link minecraft`` in game; the core
answers it, it is not an activity). Playtime comes from start/end pairs under the game key
``minecraft``; ``server_id`` keeps sessions of different servers apart.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.base import (
    ActionSpec,
    ActivityEvent,
    Capabilities,
    Connector,
    Effect,
    EndpointKind,
    EventSpec,
    LinkConfirmation,
    LinkInfo,
    RouteSpec,
    SchemaError,
    SessionAway,
    SessionEnd,
    SessionSeen,
    SessionStart,
    WebhookContext,
    expect_object,
    human_duration,
    integer,
    iso,
    optional_text,
    timestamp,
)
from connectors.rcon import ConsoleActions, one_line

GAME_ID = "minecraft"
TYPES = (
    "session.started", "session.ended", "achievement.unlocked", "afk.started", "afk.ended",
    "link.confirm",
)  # fmt: skip
#: Raw events that are state for the session, never posted to the feed by themselves.
SILENT = frozenset({"afk.started", "afk.ended"})
_ADVANCEMENT_KEY = re.compile(r"[a-z0-9_.-]+:[a-z0-9_./-]+", re.ASCII)
_LINK_CODE = re.compile(r"[A-Za-z0-9-]{4,32}", re.ASCII)
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
)
MAX_SESSION_SECONDS = 366 * 24 * 3600


@cache
def advancement_names() -> dict[str, dict[str, str]]:
    data = resources.files("connectors.minecraft").joinpath("advancements.json").read_text("utf-8")
    return {k: v for k, v in json.loads(data).items() if not k.startswith("_")}


def _player_uuid(value: Any) -> str:
    if value is None:
        raise SchemaError("player_uuid", "is required (the player's UUID)")
    if not isinstance(value, str):
        raise SchemaError("player_uuid", "must be a UUID string")
    if _CANONICAL_UUID.fullmatch(value):  # what servers send; uuid.UUID() costs more
        return value
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise SchemaError(
            "player_uuid", "must be a UUID such as 069a79f4-44e9-4726-a5be-fca90e38aaf5"
        ) from None


#: What a console line may hold (Minecraft's chat shows up to 256 characters).
MAX_LINE = 256
_PLAYER_NAME = r"^[A-Za-z0-9_]{1,16}$"


class RunCommand(BaseModel):
    """A console command from the allow-list: ``say`` and ``tellraw`` (to everyone) a text,
    ``whitelist add`` a player name. Nothing else can be sent: the text is cleaned into one
    line and written into its argument (``command_line``), never spliced into a command."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: int = Field(gt=0)
    template: Literal["say", "tellraw", "whitelist add"]
    text: str | None = Field(default=None, max_length=1000)
    player: str | None = Field(default=None, pattern=_PLAYER_NAME)

    @model_validator(mode="after")
    def _fits_template(self) -> Self:
        if self.template == "whitelist add":
            if self.player is None or self.text is not None:
                raise ValueError("whitelist add takes a player name and no text")
        elif self.text is None or not one_line(self.text, max_len=MAX_LINE):
            raise ValueError(f"{self.template} takes a text that is not empty")
        elif self.player is not None:
            raise ValueError(f"{self.template} takes no player name")
        return self


def command_line(command: RunCommand) -> str:
    """The console line for a command: ``say`` with the text made one line and its target
    selectors disarmed (``say`` expands ``@a``), ``tellraw @a`` with the text as a JSON string
    (quotes, backslashes and brackets escaped by the encoder), ``whitelist add`` with a name
    its pattern has checked."""
    if command.template == "whitelist add":
        return f"whitelist add {command.player}"
    line = one_line(command.text or "", max_len=MAX_LINE)
    if command.template == "say":
        return "say " + line.replace("@", "\uff20")
    component = json.dumps({"text": line, "color": "gold"}, ensure_ascii=True)
    return f"tellraw @a {component}"


class MinecraftConnector(ConsoleActions, Connector):
    key = "minecraft"
    name = "Minecraft"
    capabilities = Capabilities(can_webhook=True)
    events = (
        EventSpec("minecraft.session.started", "A player joined a Minecraft server"),
        EventSpec("minecraft.session.ended", "A player left a Minecraft server"),
        EventSpec("minecraft.achievement", "A player made a Minecraft advancement"),
    )
    actions = (
        ActionSpec(
            "run_command",
            "A console command over RCON (say, tellraw, whitelist add)",
            RunCommand,
            "run_command",
            idempotent=False,
        ),
    )
    link_source = "minecraft"
    endpoint_kinds = (
        EndpointKind(
            "minecraft",
            "a server plugin",
            routes=(RouteSpec("/webhooks/minecraft/{path}", "minecraft"),),
        ),
    )

    async def run_command(self, command: RunCommand) -> str:
        return await self.send(command.endpoint_id, command_line(command))

    def link_confirmation(self, raw: Mapping[str, Any]) -> LinkConfirmation | None:
        if raw.get("type") != "link.confirm":
            return None
        return LinkConfirmation(raw["code"], raw["player_uuid"], raw.get("player_name"))

    def parse_webhook(self, body: Any, context: WebhookContext) -> dict[str, Any]:
        data = expect_object(body)
        kind = data.get("type")
        if kind is None:
            raise SchemaError("type", f"is required (one of {', '.join(TYPES)})")
        if not isinstance(kind, str) or kind not in TYPES:
            raise SchemaError("type", f"must be one of {', '.join(TYPES)}")
        raw: dict[str, Any] = {"type": kind, "player_uuid": _player_uuid(data.get("player_uuid"))}
        raw["player_name"] = optional_text(data.get("player_name"), "player_name", max_len=32)
        if kind == "link.confirm":
            code = data.get("code")
            if code is None:
                raise SchemaError("code", "is required (the code shown by /link minecraft)")
            if not isinstance(code, str) or not _LINK_CODE.fullmatch(code.strip()):
                raise SchemaError(
                    "code", "must be the 4-32 character code shown by /link minecraft"
                )
            raw["code"] = code.strip().upper()
            return raw
        raw["server_id"] = optional_text(data.get("server_id"), "server_id", max_len=64) or ""
        raw["world"] = optional_text(data.get("world"), "world", max_len=64)
        if "at" not in data:
            raise SchemaError("at", "is required (ISO 8601 with a timezone)")
        raw["at"] = iso(timestamp(data["at"], "at"))
        if kind == "session.ended" and data.get("duration_seconds") is not None:
            raw["duration_seconds"] = integer(
                data["duration_seconds"], "duration_seconds", hi=MAX_SESSION_SECONDS
            )
        if kind == "achievement.unlocked":
            key = data.get("key")
            if not isinstance(key, str) or not _ADVANCEMENT_KEY.fullmatch(key.strip()):
                raise SchemaError(
                    "key", "must be a namespaced id such as minecraft:story/mine_diamond"
                )
            raw["key"] = key.strip()
            raw["title"] = optional_text(data.get("title"), "title", max_len=128)
        return raw

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        return ":".join(
            (
                "minecraft",
                raw["type"],
                raw.get("server_id") or "",
                raw["player_uuid"],
                raw.get("key") or "",
                raw.get("at") or "",
            )
        )

    def dedupe_time(self, raw: Mapping[str, Any]) -> str | None:
        return raw.get("at")  # canonical (parse_webhook), part of the key; a link code has none

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw["player_uuid"])

    def effects(self, raw: Mapping[str, Any]) -> list[Effect]:
        at = timestamp(raw["at"], "at")
        player, server = raw["player_uuid"], raw.get("server_id") or ""
        if raw["type"] == "session.started":
            return [SessionStart(player, server, GAME_ID, at)]
        if raw["type"] == "session.ended":
            return [SessionEnd(player, server, GAME_ID, at, raw.get("duration_seconds"))]
        if raw["type"] in SILENT:  # away from the keyboard, or back: not active time
            return [SessionAway(player, server, GAME_ID, at, away=raw["type"] == "afk.started")]
        return [SessionSeen(player, server, GAME_ID, at)]  # any other event is activity

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        kind = raw["type"]
        if kind in SILENT:
            return None
        who = (
            raw.get("player_name")
            or (link.display_name if link else None)
            or raw["player_uuid"][:8]
        )
        where = raw.get("world") or raw.get("server_id") or "the server"
        common = {
            "occurred_at": timestamp(raw["at"], "at"),
            "source": self.key,
            "actor_user_id": link.discord_user_id if link else None,
            "actor_external_id": raw["player_uuid"],
            "actor_name": raw.get("player_name"),
        }
        payload = {k: v for k, v in raw.items() if v is not None}
        if kind == "session.started":
            return ActivityEvent(
                type="minecraft.session.started",
                title=f"{who} joined {where}",
                payload=payload,
                **common,
            )
        if kind == "session.ended":
            seconds = raw.get("duration_seconds")
            title = f"{who} left {where}"
            if seconds:
                title = f"{who} played {human_duration(seconds)} on {where}"
            return ActivityEvent(
                type="minecraft.session.ended", title=title, payload=payload, **common
            )
        if kind == "achievement.unlocked":
            known = advancement_names().get(raw["key"], {})
            name = raw.get("title") or known.get("title") or raw["key"]
            if known.get("description"):
                payload["description"] = known["description"]
            payload["advancement"] = name  # the feed writes its title from it
            return ActivityEvent(
                type="minecraft.achievement",
                title=f"{who} made the advancement [{name}]",
                payload=payload,
                external_id=raw["key"],
                **common,
            )
        raise SchemaError("type", f"{kind} is not an activity")
