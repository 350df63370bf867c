"""Russian and English: the catalogues are complete and agree, plurals follow CLDR, and every
slash command synced to (the fake) Discord carries ru, en-US and en-GB localisations that keep
Discord's rules."""

from __future__ import annotations

import string
import unicodedata
from datetime import date
from typing import Any

import pytest
from babel.messages.plurals import get_plural

from bot.i18n import LANGUAGES, catalogue, language, texts
from tests.fakes.discord import FakeDiscord

LOCALES = ("ru", "en-US", "en-GB")
NAME_CHARS = set("-_'")


def fields_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def key(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]  # a plural entry's id is a pair


def forms(message: Any) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def test_both_catalogues_hold_the_same_ids_with_the_same_placeholders() -> None:
    en, ru = ({key(m.id): m for m in catalogue(lang) if m.id} for lang in ("en", "ru"))
    assert set(en) == set(ru), sorted(set(en) ^ set(ru))
    for msgid, english in en.items():
        russian = ru[msgid]
        assert english.pluralizable == russian.pluralizable, msgid
        wanted = {frozenset(fields_of(text)) for text in forms(english)}
        assert len(wanted) == 1, (msgid, "the English forms differ in their placeholders")
        for text in forms(english) + forms(russian):
            assert text, (msgid, "an empty translation")
            assert fields_of(text) == set(next(iter(wanted))), (msgid, text)
    assert len(forms(ru["count.hours"])) == 3 and len(forms(en["count.hours"])) == 2


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_plural_rule_is_babels(lang: str) -> None:
    header = dict(catalogue(lang).mime_headers)["Plural-Forms"]  # type: ignore[arg-type]
    assert header == get_plural(lang).plural_forms  # taken from CLDR, not written by hand


def test_russian_plurals_for_every_kind_of_number() -> None:
    ru, en = texts("ru"), texts("en")
    said = {n: ru.plural("count.hours", n) for n in (0, 1, 2, 5, 11, 21, 22, 25, 101, 111)}
    assert said == {
        0: "0 часов", 1: "1 час", 2: "2 часа", 5: "5 часов", 11: "11 часов", 21: "21 час",
        22: "22 часа", 25: "25 часов", 101: "101 час", 111: "111 часов",
    }  # fmt: skip
    assert [en.plural("count.hours", n) for n in (0, 1, 2, 21)] == [
        "0 hours", "1 hour", "2 hours", "21 hours",
    ]  # fmt: skip
    assert ru.plural("count.members", 1001) == "1\N{NO-BREAK SPACE}001 участник"


def test_numbers_durations_and_dates() -> None:
    ru, en = texts("ru"), texts("en")
    assert (en.duration(3900), ru.duration(3900)) == ("1 h 5 min", "1 ч 5 мин")
    assert (en.duration(45 * 60), ru.duration(45 * 60)) == ("45 min", "45 мин")
    assert (en.duration(30), ru.duration(30)) == ("30 s", "30 с")
    assert en.duration(12_345 * 3600) == "12,345 h"
    assert ru.duration(12_345 * 3600) == "12\N{NO-BREAK SPACE}345 ч"
    assert en.day(date(2025, 3, 12)) == "Mar 12, 2025"
    assert ru.day(date(2025, 3, 12)) == "12 мар. 2025\N{NARROW NO-BREAK SPACE}г."


def test_the_language_is_the_first_locale_questlog_speaks() -> None:
    assert language("ru", "en-US") == "ru"
    assert language("de", "ru") == "ru"  # the member's German, then the guild's Russian
    assert language("en-GB", "ru") == "en"
    assert language("pt-BR", None) == "en"
    assert language(None, None) == "en"


def test_a_missing_id_falls_back_to_english_then_to_the_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert texts("ru")("no.such.message") == "no.such.message"
    assert "missing from the ru catalogue" in caplog.text


# ------------------------------------------------------------------ the synced command tree


def name_problems(name: str) -> list[str]:
    problems = []
    if not 1 <= len(name) <= 32:
        problems.append("1-32 characters")
    for char in name:
        if char not in NAME_CHARS and unicodedata.category(char)[0] not in "LN":
            problems.append(f"{char!r} is not a letter, digit, - _ or '")
        if char.lower() != char:
            problems.append(f"{char!r} is not lowercase")
    return problems


def localised(item: dict[str, Any], field: str) -> dict[str, str]:
    """The default and every localisation of a field: {"": default, locale: text}."""
    return {"": item[field], **(item.get(f"{field}_localizations") or {})}


def walk(item: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, item) of a command and everything in it: subcommands, options, choices."""
    here = f"{path} {item['name']}".strip()
    found = [(here, item)]
    for option in item.get("options") or []:
        found += walk(option, here)
    for choice in item.get("choices") or []:
        found.append((f"{here} = {choice['value']}", choice))
    return found


def command_problems(command: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    longest = 0
    for path, item in walk(command):
        is_choice = "value" in item and "type" not in item
        names = localised(item, "name")
        missing = set(LOCALES) - set(names)
        if missing:
            problems.append(f"{path}: no name for {sorted(missing)}")
        longest += max(len(text) for text in names.values())
        if is_choice:
            longest += len(str(item["value"]))
            if not all(1 <= len(text) <= 100 for text in names.values()):
                problems.append(f"{path}: a choice name is not 1-100 characters")
            continue
        for locale, text in names.items():
            problems += [f"{path} [{locale or 'default'}]: {p}" for p in name_problems(text)]
        descriptions = localised(item, "description")
        missing = set(LOCALES) - set(descriptions)
        if missing:
            problems.append(f"{path}: no description for {sorted(missing)}")
        for locale, text in descriptions.items():
            if not 1 <= len(text) <= 100:
                problems.append(f"{path} [{locale or 'default'}]: description {len(text)} chars")
        longest += max(len(text) for text in descriptions.values())
        for locale in ("", *LOCALES):  # sibling options may not share a name in any language
            siblings = [localised(o, "name").get(locale) for o in item.get("options") or []]
            siblings = [s for s in siblings if s]
            if len(siblings) != len(set(siblings)):
                problems.append(f"{path} [{locale or 'default'}]: options collide: {siblings}")
    if longest > 8000:
        problems.append(f"{command['name']}: {longest} characters (Discord allows 8,000)")
    return problems


async def test_every_synced_command_is_localised_within_discords_rules(
    bot: Any, discord_api: FakeDiscord
) -> None:
    synced = discord_api.synced_commands[None]
    assert len(synced) >= 10
    problems = [problem for command in synced for problem in command_problems(command)]
    assert problems == []
    english = {
        path: item for command in synced for path, item in walk(command)
    }  # the defaults are the English catalogue's texts, in both English locales
    for path, item in english.items():
        for field in ("name", "description"):
            if field in item:
                texts_ = localised(item, field)
                assert texts_["en-US"] == texts_["en-GB"] == texts_[""], (path, field)
    board = next(c for c in synced if c["name"] == "leaderboard")
    assert board["name_localizations"]["ru"] == "рейтинг"
    period = next(o for o in board["options"] if o["name"] == "period")
    assert period["name_localizations"]["ru"] == "период"
    week = next(c for c in period["choices"] if c["value"] == "week")
    assert week["name_localizations"]["ru"] == "эта календарная неделя (с понедельника)"


async def test_a_choice_value_has_one_name_everywhere(bot: Any, discord_api: FakeDiscord) -> None:
    names: dict[str, set[str]] = {}
    for command in discord_api.synced_commands[None]:
        for _, item in walk(command):
            if "value" in item and "type" not in item:
                names.setdefault(str(item["value"]), set()).add(item["name"])
    assert names and all(len(found) == 1 for found in names.values()), names


def test_the_checks_catch_what_discord_refuses() -> None:
    assert name_problems("Рейтинг") == ["'Р' is not lowercase"]
    assert name_problems("two words") == ["' ' is not a letter, digit, - _ or '"]
    assert name_problems("x" * 33) == ["1-32 characters"]
    assert name_problems("сменить-секрет") == []
    bad = {
        "name": "a", "description": "d" * 101, "type": 1,
        "name_localizations": {"ru": "б", "en-US": "a", "en-GB": "a"},
        "description_localizations": {"ru": "д", "en-US": "d", "en-GB": "d"},
        "options": [
            {"name": "x", "description": "x", "type": 3,
             "name_localizations": {"ru": "да", "en-US": "x", "en-GB": "x"},
             "description_localizations": {"ru": "x", "en-US": "x", "en-GB": "x"}},
            {"name": "y", "description": "y", "type": 3,
             "name_localizations": {"ru": "да", "en-US": "y", "en-GB": "y"},
             "description_localizations": {"ru": "y", "en-US": "y", "en-GB": "y"}},
        ],
    }  # fmt: skip
    problems = command_problems(bad)
    assert any("description 101 chars" in p for p in problems)
    assert any("[ru]: options collide" in p for p in problems)


# ------------------------------------------------------------------ guards for what follows


def test_every_id_the_cogs_name_is_in_both_catalogues() -> None:
    from cogs import _strings as strings
    from cogs.feed import NEEDED
    from connectors.registry import Registry

    ids: set[str] = set()
    for name, value in vars(strings).items():
        if name.startswith("_") or not name.isupper():
            continue
        if isinstance(value, str):
            ids.add(value)
        elif isinstance(value, dict):
            ids.update(value.values())
        elif hasattr(value, "extras"):  # a command tree text: checked at import and by the tree
            ids.add(value.extras["id"])
    ids |= {strings.event_name(kind) for kind in Registry().discover().event_types()}
    ids |= {strings.permission(flag) for flag in (*NEEDED, "manage_guild")}
    ids |= {"game.minecraft", "game.steam_app"}  # bot/services/leaderboards.py
    assert len(ids) > 150
    for lang in LANGUAGES:
        missing = sorted(i for i in ids if texts(lang).get(i) is None)  # type: ignore[arg-type]
        assert missing == [], (lang, missing)


def test_no_sentence_is_written_into_the_cogs() -> None:
    """Replies come from the catalogues: a string literal of words in cogs/ (outside docstrings
    and log lines) is a text that exists in one language only."""
    import ast
    import re
    from pathlib import Path

    words = re.compile(r"[^\W\d_]{2,} [^\W\d_]{2,}")
    found = []
    for path in sorted((Path(__file__).resolve().parent.parent / "cogs").glob("*.py")):
        if path.name == "_strings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped: set[int] = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                skipped.add(id(body[0].value))  # a docstring
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
            ):
                skipped.update(id(sub) for sub in ast.walk(node))  # logs stay English
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in skipped and words.search(node.value):
                    found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []
