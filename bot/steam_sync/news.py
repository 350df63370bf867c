"""What the Steam sync announces, as activity events: the day's played line, sessions and
achievements. Titles name the linked member as the guild knows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import ActivityEvent, human_duration

RARE_PERCENT = 10.0  # below this share of players an unlock is called rare in the feed
UNNAMED = "A linked player"


def rarity(percent: float | None) -> str | None:
    """'rare: 2.3 % of players' below RARE_PERCENT, else '41.0 % of players'."""
    if percent is None:
        return None
    shown = f"{percent:.1f}" if percent >= 0.1 else f"{percent:.2f}"
    return f"rare: {shown} % of players" if percent < RARE_PERCENT else f"{shown} % of players"


def _event(
    steam_id: str,
    link: tuple[int, int, str | None],
    *,
    event_type: str,
    title: str,
    at: datetime,
    payload: dict[str, Any],
    external_id: str,
    update_key: str | None = None,
) -> ActivityEvent:
    guild_id, user_id, display_name = link
    return ActivityEvent(
        type=event_type,
        title=title,
        occurred_at=at,
        source="steam",
        payload=payload,
        guild_id=guild_id,
        actor_user_id=user_id,
        actor_external_id=steam_id,
        actor_name=display_name,
        external_id=external_id,
        update_key=update_key,
    )


class SteamNews:
    """Builds the events; the store fans them out to every guild that links the account
    (``link`` is (guild id, discord user id, display name))."""

    @staticmethod
    def played_today(
        steam_id: str,
        link: tuple[int, int, str | None],
        *,
        app_id: int,
        game_name: str | None,
        today: int,
        total: int,
        day: str,
        at: datetime,
    ) -> ActivityEvent:
        name = link[2] or UNNAMED
        game = game_name or f"app {app_id}"
        return _event(
            steam_id,
            link,
            event_type="steam.game_played",
            title=f"{name} played {game} today: {human_duration(today)}",
            at=at,
            payload={
                "game_id": app_id,
                "game_name": game_name,
                "seconds_today": today,
                "total_seconds": total,
                "day": day,
            },
            external_id=f"{steam_id}:{app_id}:{day}",
            update_key=f"steam.game_played:{steam_id}:{app_id}:{day}",
        )

    @staticmethod
    def session_started(
        steam_id: str,
        link: tuple[int, int, str | None],
        *,
        app_id: int,
        game_name: str,
        at: datetime,
        started: str,
    ) -> ActivityEvent:
        return _event(
            steam_id,
            link,
            event_type="steam.session.started",
            title=f"{link[2] or UNNAMED} started playing {game_name}",
            at=at,
            payload={"game_id": app_id, "game_name": game_name},
            external_id=f"{steam_id}:{app_id}:{started}",
        )

    @staticmethod
    def session_ended(
        steam_id: str,
        link: tuple[int, int, str | None],
        *,
        app_id: int,
        game_name: str,
        seconds: int,
        at: datetime,
        started: str,
    ) -> ActivityEvent:
        return _event(
            steam_id,
            link,
            event_type="steam.session.ended",
            title=f"{link[2] or UNNAMED} played {game_name} for {human_duration(seconds)}",
            at=at,
            payload={"game_id": app_id, "game_name": game_name, "duration_seconds": seconds},
            external_id=f"{steam_id}:{app_id}:{started}:ended",
        )

    @staticmethod
    def achievement(
        steam_id: str,
        link: tuple[int, int, str | None],
        *,
        app_id: int,
        game_name: str | None,
        api_name: str,
        info: dict[str, Any],
        percent: float | None,
        at: datetime,
    ) -> ActivityEvent:
        display = info.get("name") or api_name
        game = game_name or f"app {app_id}"
        return _event(
            steam_id,
            link,
            event_type="steam.achievement",
            title=f"{link[2] or UNNAMED} unlocked {display} in {game}",
            at=at,
            payload={
                "game_id": app_id,
                "game_name": game_name,
                "achievement": display,
                "api_name": api_name,
                "description": info.get("description"),
                "icon": info.get("icon"),
                "percent": percent,
                "rarity": rarity(percent),
            },
            external_id=f"{steam_id}:{app_id}:{api_name}",
        )
