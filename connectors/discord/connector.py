"""The Discord connector: verified identities through OAuth2, and presence playtime (what a
member's Discord status says they play). Its keys live in the core's ``[discord]`` and
``[presence]`` sections.

Presence raw events are made by the core's presence tracker (bot/presence), never by a
webhook; each is about one member (``user_id``, their Discord id as text, which is also the
external id of their presence link):

* ``presence.session.started``: a session reached the minimum length (``at`` its start);
* ``presence.played``: ``seconds`` more active time of an open session and ``idle_seconds``
  more idle time (counted in the total only), flushed (``seq`` counts them);
* ``presence.session.ended``: the session closed (``active_seconds``, ``idle_seconds``,
  ``reason``: ``ended``, ``capped``, ``disconnected``, ``stopped``).

A retried flush carries the same session, sequence number and time, so the dedupe key makes it
a duplicate and time is never counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import (
    ActionSpec,
    ActivityEvent,
    Capabilities,
    Connector,
    Effect,
    EventSpec,
    LinkInfo,
    PlaytimeAdded,
    RateLimits,
    SessionEnd,
    SessionStart,
    human_duration,
    timestamp,
)

TYPES = ("presence.session.started", "presence.played", "presence.session.ended")


class RoleChange(BaseModel):
    """A role given to or taken from a member (Discord's Add/Remove Guild Member Role)."""

    model_config = ConfigDict(extra="forbid")

    guild_id: int = Field(gt=0)
    user_id: int = Field(gt=0)
    role_id: int = Field(gt=0)
    reason: str | None = Field(default=None, max_length=512)  # the audit log's reason


class DiscordConnector(Connector):
    key = "discord"
    name = "Discord"
    capabilities = Capabilities(
        requires_auth=True,
        # Role-connection updates: Discord's per-route limits apply; Questlog pushes a member's
        # values at most once per 10 minutes.
        rate_limits=RateLimits(requests_per_minute=None),
    )
    events = (
        EventSpec("discord.session.started", "Discord shows a member playing a game", False),
        EventSpec("discord.session.ended", "A member stopped playing (Discord status)", False),
        # Announced by the core when a member's playtime earns a role reward (grant_role).
        EventSpec("reward.granted", "A member earned a role reward for their playtime"),
    )
    # Roles: idempotent (adding a role the member has, or removing one they lack, changes
    # nothing). The handlers are the core's, sending through the bot's own HTTP client (this
    # package imports no discord.py); see bot/gateway/role_actions.py.
    actions = (
        ActionSpec("grant_role", "Give a member a role", RoleChange, "grant_role"),
        ActionSpec("remove_role", "Take a role Questlog gave from a member", RoleChange,
                   "remove_role"),
    )  # fmt: skip
    link_source = "discord"
    requires_link = True  # the member's presence link (made by the tracker before any event)

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        return ":".join(
            ("discord", raw["type"], raw["session"], str(raw.get("seq", "")), raw["at"])
        )

    def dedupe_time(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw["at"])

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw["user_id"])

    def effects(self, raw: Mapping[str, Any]) -> list[Effect]:
        at = timestamp(raw["at"], "at")
        user, game = str(raw["user_id"]), str(raw["game_id"])
        if raw["type"] == "presence.session.started":
            return [SessionStart(user, game, game, at)]  # one open session per game
        if raw["type"] == "presence.played":
            idle = int(raw.get("idle_seconds") or 0)  # absent before issue 18
            return [PlaytimeAdded(user, game, int(raw["seconds"]), at, away_seconds=idle)]
        if raw["type"] == "presence.session.ended":
            return [
                SessionEnd(
                    user, game, game, at,
                    duration_hint=int(raw["active_seconds"]) + int(raw["idle_seconds"]),
                    idle_seconds=int(raw["idle_seconds"]),
                    credited=True,
                )
            ]  # fmt: skip
        return []

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        kind = raw["type"]
        if kind == "presence.played":
            return None
        who = (link.display_name if link else None) or "A member"
        game = raw.get("game_name") or raw["game_id"]
        payload = {k: v for k, v in raw.items() if v is not None}
        common = {
            "occurred_at": timestamp(raw["at"], "at"),
            "source": self.key,
            "actor_user_id": link.discord_user_id if link else None,
            "actor_external_id": str(raw["user_id"]),
            "actor_name": link.display_name if link else None,
        }
        if kind == "presence.session.started":
            return ActivityEvent(
                type="discord.session.started",
                title=f"{who} started playing {game}",
                payload=payload,
                **common,
            )
        if kind == "presence.session.ended":
            seconds = int(raw["active_seconds"])
            return ActivityEvent(
                type="discord.session.ended",
                title=f"{who} played {game} for {human_duration(seconds)}",
                payload=payload,
                **common,
            )
        return None
