"""What discord.py's member cache says a member plays, as the presence tracker reads it:
Playing (0) and Competing (5) activities; Listening (Spotify), Streaming, Watching and Custom
status are not games."""

from __future__ import annotations

import discord

from bot.presence import MemberPresence, PlayedGame

GAME_TYPES = (discord.ActivityType.playing, discord.ActivityType.competing)
#: The intents presence needs beyond Questlog's own (both privileged: Developer Portal).
PRIVILEGED = ("presences", "members")
PORTAL_HINT = (
    "Discord refused the Presence and Server Members intents (gateway close code 4014):"
    " turn both on under Developer Portal -> your application -> Bot -> Privileged Gateway"
    " Intents and restart, or set [presence] enabled = false; running on without presence"
)


def games_of(member: discord.Member) -> tuple[PlayedGame, ...]:
    found = []
    for activity in member.activities:
        if activity.type not in GAME_TYPES or not activity.name:
            continue
        app = getattr(activity, "application_id", None)
        found.append(
            PlayedGame(name=str(activity.name)[:128], application_id=str(app) if app else None)
        )
    return tuple(found)


def presence_of(member: discord.Member) -> MemberPresence:
    return MemberPresence(
        user_id=member.id,
        status=str(member.status),
        games=games_of(member),
        name=member.display_name,
    )


def guild_presences(guild: discord.Guild) -> list[MemberPresence]:
    """The guild's members whose cached presence shows a game (bots left out)."""
    return [presence_of(m) for m in guild.members if not m.bot and games_of(m)]
