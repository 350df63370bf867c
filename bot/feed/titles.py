"""Feed titles in the guild's language, written when a batch is made.

An activity event is stored with its type, payload and actor (and an English title, which the
CLI and logs show); the feed writes its title from those in the guild's feed language, so the
same event reads "Alice reached 100 hours in Squad" in one server and "Alice — 100 часов в
Squad" in another, and a played-today line edited later in the day is written again in the
same language. Events stored before titles were written this way, and kinds the catalogues do
not know (a script's custom events, whose title is the script's own), keep their stored title.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.i18n import Texts

Writer = Callable[[Texts, Mapping[str, Any], Mapping[str, Any]], str]


def _game(t: Texts, payload: Mapping[str, Any]) -> str:
    name = payload.get("game_name")
    if name:
        return str(name)
    game = str(payload.get("game_id", "?"))
    return t("game.minecraft") if game == "minecraft" else t("game.steam_app", app_id=game)


def _steam_player(t: Texts, event: Mapping[str, Any]) -> str:
    return str(event.get("actor_name") or t("feed.linked_player"))


def _minecraft_player(t: Texts, event: Mapping[str, Any]) -> str:
    payload = event["payload"]
    return str(
        payload.get("player_name")
        or event.get("actor_name")
        or str(payload.get("player_uuid") or event.get("actor_external_id") or "?")[:8]
    )


def _where(t: Texts, payload: Mapping[str, Any]) -> str:
    return str(payload.get("world") or payload.get("server_id") or t("feed.the_server"))


def _minecraft_ended(t: Texts, event: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    who, where = _minecraft_player(t, event), _where(t, payload)
    seconds = payload.get("duration_seconds")
    if seconds:
        return t("feed.title.minecraft.played", who=who, duration=t.duration(seconds), where=where)
    return t("feed.title.minecraft.left", who=who, where=where)


def _milestone(t: Texts, event: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    who = str(event.get("actor_name") or payload.get("player_id") or "?")
    hours = t.plural("count.hours", int(payload["hours"]))
    if payload.get("game_name"):
        return t("feed.title.milestone.game", who=who, hours=hours, game=payload["game_name"])
    return t("feed.title.milestone", who=who, hours=hours)


def _reward(t: Texts, event: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    who = str(event.get("actor_name") or t("feed.reward.member"))
    hours = t.plural("count.hours", int(payload["hours"]))
    game = payload.get("game_name") or (_game(t, payload) if payload.get("game_id") else None)
    period = str(payload.get("period") or "all")
    when = "" if period == "all" else t(f"feed.reward.period.{period}")
    if game:
        return t("feed.title.reward.game", who=who, hours=hours, game=game, period=when).strip()
    return t("feed.title.reward", who=who, hours=hours, period=when).strip()


WRITERS: dict[str, Writer] = {
    "steam.game_played": lambda t, e, p: t(
        "feed.title.steam.game_played", who=_steam_player(t, e), game=_game(t, p),
        duration=t.duration(p["seconds_today"]),
    ),
    "steam.achievement": lambda t, e, p: t(
        "feed.title.steam.achievement", who=_steam_player(t, e), game=_game(t, p),
        achievement=p.get("achievement") or p.get("api_name") or "?",
    ),
    "steam.session.started": lambda t, e, p: t(
        "feed.title.steam.session.started", who=_steam_player(t, e), game=_game(t, p)
    ),
    "steam.session.ended": lambda t, e, p: t(
        "feed.title.steam.session.ended", who=_steam_player(t, e), game=_game(t, p),
        duration=t.duration(p["duration_seconds"]),
    ),
    "minecraft.session.started": lambda t, e, p: t(
        "feed.title.minecraft.joined", who=_minecraft_player(t, e), where=_where(t, p)
    ),
    "minecraft.session.ended": _minecraft_ended,
    "minecraft.achievement": lambda t, e, p: t(
        "feed.title.minecraft.advancement", who=_minecraft_player(t, e),
        name=p.get("advancement") or p.get("title") or p.get("key") or "?",
    ),
    "discord.session.started": lambda t, e, p: t(
        "feed.title.discord.session.started", who=_steam_player(t, e), game=_game(t, p)
    ),
    "discord.session.ended": lambda t, e, p: t(
        "feed.title.discord.session.ended", who=_steam_player(t, e), game=_game(t, p),
        duration=t.duration(p["active_seconds"]),
    ),
    "playtime.milestone": _milestone,
    "reward.granted": _reward,
    "feed.test": lambda t, e, p: t("feed.title.test"),
}  # fmt: skip
#: Kinds whose description the feed writes too (the rest show the payload's, as sent).
DESCRIPTIONS: dict[str, str] = {"feed.test": "feed.test.description"}


def write_description(t: Texts, event: Mapping[str, Any]) -> str | None:
    """The event's description in the language of ``t`` when the feed writes it, else None."""
    msgid = DESCRIPTIONS.get(str(event["type"]))
    return None if msgid is None or event.get("stored_title") else t(msgid)


def write_title(t: Texts, event: Mapping[str, Any]) -> str | None:
    """The event's title in the language of ``t``, or None when the stored one stays (an event
    from before, a kind without a writer, or a payload the writer cannot read)."""
    writer = WRITERS.get(str(event["type"]))
    if writer is None or event.get("stored_title"):
        return None
    try:
        return writer(t, event, event["payload"])
    except (KeyError, TypeError, ValueError):
        return None  # a payload of another shape: what was stored is still right
