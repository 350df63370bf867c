"""The game option's autocomplete, shared by the commands that take a game."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.gateway.client import texts_for

if TYPE_CHECKING:
    from bot.core import Core


async def game_choices(
    core: Core, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The server's games whose name contains what the member typed (bot/services)."""
    if interaction.guild_id is None:
        return []
    games = await core.stats.games(interaction.guild_id, current, texts_for(interaction))
    return [app_commands.Choice(name=label[:100], value=game) for game, label in games]
