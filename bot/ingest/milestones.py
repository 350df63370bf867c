"""Playtime milestones: which totals the feed announces and how the announcement reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.base import ActivityEvent

DEFAULT_MILESTONE_HOURS = (10, 50, 100, 500, 1000)  # [general] milestone_hours


@dataclass(frozen=True)
class Milestones:
    """The thresholds (hours) the feed announces, once per player, game and guild, and the
    event that announces one."""

    hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS

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
