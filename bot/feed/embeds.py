"""Activity events as Discord embeds (plain JSON dicts), within every Discord limit, in the
guild's feed language (titles from bot/feed/titles.py, field names from the catalogues).

discord.py checks only the number of embeds; a message over any other limit is a 400 at run
time, which would stall a channel's feed. So every limit is enforced here, before a batch is
stored: each text is truncated to its own limit, each embed to what one message can carry, and
``pack`` puts at most 10 embeds and 6,000 characters into one message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.feed.titles import write_description, write_title
from bot.i18n import DEFAULT, Texts, texts
from bot.markdown import escape, plain

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
EMBEDS_PER_MESSAGE = 10
CHARS_PER_MESSAGE = 6000
ELLIPSIS = "…"

_STEAM_ID = re.compile(r"7656119[0-9]{10}", re.ASCII)


@dataclass(frozen=True)
class Style:
    colour: int
    icon: str
    label: str  # a message id: the footer's first word


STYLES: dict[str, Style] = {
    "minecraft.session.started": Style(0x57F287, "🟢", "feed.label.minecraft"),
    "minecraft.session.ended": Style(0x95A5A6, "🔴", "feed.label.minecraft"),
    "minecraft.achievement": Style(0xF1C40F, "🏆", "feed.label.minecraft"),
    "playtime.milestone": Style(0x9B59B6, "🏅", "feed.label.playtime"),
    "reward.granted": Style(0xE67E22, "🎖️", "feed.label.playtime"),
    "steam.achievement": Style(0x1B2838, "🏆", "feed.label.steam"),
    "steam.game_played": Style(0x1B2838, "🎮", "feed.label.steam"),
}
CUSTOM_STYLE = Style(0x5865F2, "📣", "feed.label.server")
DEFAULT_STYLE = Style(0x99AAB5, "•", "feed.label.activity")


def style_for(event_type: str) -> Style:
    if event_type in STYLES:
        return STYLES[event_type]
    return CUSTOM_STYLE if event_type.startswith("custom.") else DEFAULT_STYLE


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut never leaves half of an escape (a lone backslash)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def embed_length(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 per message."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields", []))
    total += len(embed.get("footer", {}).get("text", ""))
    total += len(embed.get("author", {}).get("name", ""))
    return total


def within_limits(embed: Mapping[str, Any]) -> bool:
    fields = embed.get("fields", [])
    return (
        len(embed.get("title", "")) <= TITLE_MAX
        and len(embed.get("description", "")) <= DESCRIPTION_MAX
        and len(fields) <= FIELDS_MAX
        and all(
            len(f.get("name", "")) <= FIELD_NAME_MAX and len(f.get("value", "")) <= FIELD_VALUE_MAX
            for f in fields
        )
        and len(embed.get("footer", {}).get("text", "")) <= FOOTER_MAX
        and len(embed.get("author", {}).get("name", "")) <= AUTHOR_MAX
        and embed_length(embed) <= CHARS_PER_MESSAGE
    )


def _steam_store(game_id: Any) -> str | None:
    return f"https://store.steampowered.com/app/{game_id}/" if str(game_id).isdigit() else None


def _rarity(t: Texts, payload: Mapping[str, Any]) -> str | None:
    """How rare a Steam achievement is, in the feed's language (the stored English otherwise)."""
    percent, stored = payload.get("percent"), payload.get("rarity")
    if not isinstance(percent, int | float) or not stored:
        return str(stored) if stored else None
    shown = t.number(round(percent, 1 if percent >= 0.1 else 2))
    key = "feed.rarity.rare" if str(stored).startswith("rare") else "feed.rarity.common"
    return t(key, percent=shown)


def build_embed(event: Mapping[str, Any], t: Texts | None = None) -> dict[str, Any]:
    """One embed for one stored activity event row (type, title, payload, actor, occurred_at),
    in the language of ``t`` (English without one)."""
    t = t or texts(DEFAULT)
    style = style_for(event["type"])
    payload: Mapping[str, Any] = event.get("payload") or {}
    if isinstance(payload, str):
        payload = json.loads(payload)
    title = write_title(t, {**event, "payload": payload}) or str(event["title"])
    embed: dict[str, Any] = {
        "type": "rich",
        "title": clip(f"{style.icon} {escape(title)}", TITLE_MAX),
        "color": style.colour,
        "timestamp": event["occurred_at"],
    }
    lines: list[str] = []
    if event.get("actor_user_id"):
        lines.append(
            f"<@{int(event['actor_user_id'])}>"
        )  # shown, never pinged (no mentions allowed)
    elif event.get("actor_name"):
        lines.append(escape(str(event["actor_name"])))
    description = write_description(t, {**event, "payload": payload}) or payload.get("description")
    if description:
        lines.append(escape(str(description)))
    if lines:
        embed["description"] = clip("\n".join(lines), DESCRIPTION_MAX)
    fields: list[dict[str, Any]] = []
    if event["type"] in ("playtime.milestone", "steam.game_played", "steam.achievement"):
        game = payload.get("game_name") or payload.get("game_id", "?")
        fields.append(
            {
                "name": t("feed.field.game"),
                "value": clip(escape(str(game)), FIELD_VALUE_MAX),
                "inline": True,
            }
        )
        url = _steam_store(payload.get("game_id"))
        if url:
            embed["url"] = url
    if event["type"] == "reward.granted" and str(payload.get("role_id", "")).isdigit():
        fields.append(
            {
                "name": t("feed.field.role"),
                "value": f"<@&{int(payload['role_id'])}>",  # shown, never pinged
                "inline": True,
            }
        )
    rarity = _rarity(t, payload)
    if rarity:
        fields.append(
            {
                "name": t("feed.field.rarity"),
                "value": clip(escape(rarity), FIELD_VALUE_MAX),
                "inline": True,
            }
        )
    icon = payload.get("icon")
    if isinstance(icon, str) and icon.startswith("https://"):
        embed["thumbnail"] = {"url": icon[:2048]}
    if payload.get("world") or payload.get("server_id"):
        where = payload.get("world") or payload.get("server_id")
        fields.append(
            {
                "name": t("feed.field.server"),
                "value": clip(escape(str(where)), FIELD_VALUE_MAX),
                "inline": True,
            }
        )
    external = str(event.get("actor_external_id") or "")
    if _STEAM_ID.fullmatch(external):
        fields.append(
            {
                "name": "Steam",
                "value": f"[{t('feed.field.profile')}](https://steamcommunity.com/profiles/{external})",
                "inline": True,
            }
        )
    if fields:
        embed["fields"] = fields[:FIELDS_MAX]
    embed["footer"] = {"text": clip(plain(f"{t(style.label)} · {event['type']}"), FOOTER_MAX)}
    # One embed must fit one message on its own: trim the description if it is what overflows.
    overflow = embed_length(embed) - CHARS_PER_MESSAGE
    if overflow > 0 and "description" in embed:
        embed["description"] = clip(
            embed["description"], max(1, len(embed["description"]) - overflow)
        )
    assert within_limits(embed), "embed builder produced an embed over Discord's limits"
    return embed


def pack(embeds: Iterable[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """The longest prefix of (key, embed) pairs that fits one message."""
    chosen: list[tuple[int, dict[str, Any]]] = []
    total = 0
    for key, embed in embeds:
        size = embed_length(embed)
        if len(chosen) == EMBEDS_PER_MESSAGE or (chosen and total + size > CHARS_PER_MESSAGE):
            break
        chosen.append((key, embed))
        total += size
    return chosen
