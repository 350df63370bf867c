"""Squad's console: what Questlog sends a Squad server over RCON.

Squad takes an admin command's last argument as the rest of the line, so a message is made one
line (connectors/rcon.py, ``one_line``) and its ``|`` replaced (Unreal's console splits a line
into several commands there). ``AdminWarn`` names the player by SteamID64 only, checked by the
model, so no name from outside is ever an argument of its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import ActionSpec, Connector
from connectors.rcon import ConsoleActions, one_line

SQUAD_APP_ID = 393380
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

    async def broadcast(self, command: Broadcast) -> str:
        return await self.send(command.endpoint_id, f"AdminBroadcast {command.message}")

    async def warn(self, command: Warn) -> str:
        return await self.send(
            command.endpoint_id, f"AdminWarn {command.steam_id} {command.message}"
        )
