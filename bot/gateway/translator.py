"""Slash commands in Russian and English: discord.py's Translator over the catalogues.

discord.py asks for every command, group, option and choice string when the tree is synced
(each plain string is a ``locale_str``), with a context saying what it is. The message id
follows from the context, so the cogs keep their English defaults and nothing changes in how
interactions arrive (Discord always sends the default names):

* a command or group: ``command.<qualified name, dotted>.name`` / ``.description``
  (``command.playtime.show.description``);
* an option: ``command.<qualified name>.option.<option>.name`` / ``.description``;
* a choice: ``choice.<value>`` (one name per value everywhere, which tests check);
* anything else: the id given as ``locale_str(text, id="...")``.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import Language, texts

#: The Discord locales Questlog fills in, and the catalogue of each.
LOCALES: dict[discord.Locale, Language] = {
    discord.Locale.russian: "ru",
    discord.Locale.american_english: "en",
    discord.Locale.british_english: "en",
}

Location = app_commands.TranslationContextLocation


def message_id(
    string: app_commands.locale_str, context: app_commands.TranslationContextTypes
) -> str | None:
    """The catalogue id of a command tree string (see the module's words)."""
    given = string.extras.get("id")
    if given:
        return str(given)
    data = context.data
    location = context.location
    if location in (Location.command_name, Location.group_name):
        return f"command.{_dotted(data.qualified_name)}.name"
    if location in (Location.command_description, Location.group_description):
        return f"command.{_dotted(data.qualified_name)}.description"
    if location is Location.parameter_name:
        return f"command.{_dotted(data.command.qualified_name)}.option.{data.name}.name"
    if location is Location.parameter_description:
        return f"command.{_dotted(data.command.qualified_name)}.option.{data.name}.description"
    if location is Location.choice_name:
        return f"choice.{data.value}"
    return None


def _dotted(qualified_name: str) -> str:
    return qualified_name.replace(" ", ".")


class CommandTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        lang = LOCALES.get(locale)
        msgid = message_id(string, context)
        if lang is None or msgid is None:
            return None  # Discord shows the default (English) text
        return texts(lang).get(msgid)
