"""What the one ingest path decides for every source: which playtime milestones are announced
(and how they read), and which event types a guild's feed leaves out unless turned on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.feed.titles import write_title
from bot.i18n import language as pick_language
from bot.i18n import texts
from connectors.base import ActivityEvent
from connectors.registry import Registry

DEFAULT_MILESTONE_HOURS = (10, 50, 100, 500, 1000)  # [general] milestone_hours


@dataclass(frozen=True)
class IngestPolicy:
    """``hours``: the milestones the feed announces, once per player, game and guild, from
    the best-known total across sources (``event`` announces one). ``off_by_default``: event
    types a guild's feed posts only when turned on (the connectors' EventSpec.default_on)."""

    hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS
    off_by_default: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_registry(
        cls, registry: Registry, hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS
    ) -> IngestPolicy:
        return cls(hours, registry.default_off_types())

    def event(
        self,
        *,
        guild_id: int,
        source: str,
        player_id: str,
        game_id: str,
        game_name: str | None,
        hours: int,
        total: int,
        at: datetime,
        name: str | None,
        user_id: int | None,
    ) -> ActivityEvent:
        who = name or player_id
        return ActivityEvent(
            type="playtime.milestone",
            title=f"{who} reached {hours} h in {game_name}"
            if game_name
            else f"{who} reached {hours} h",
            occurred_at=at,
            source=source,
            payload={
                "player_id": player_id,
                "game_id": game_id,
                "game_name": game_name,
                "hours": hours,
                "total_seconds": total,
            },
            guild_id=guild_id,
            actor_user_id=user_id,
            actor_external_id=player_id,
            actor_name=name,
            external_id=f"{player_id}:{game_id}:{hours}",
        )

    def console_line(
        self, event: Mapping[str, Any], language: tuple[str | None, str | None]
    ) -> str | None:
        """The event's feed title as a line for a game server's chat ("Notch reached 100
        hours in Squad"), in the feed's language; the console action makes it safe there."""
        return write_title(texts(pick_language(*language)), event)
