"""Russian and English: gettext catalogues (``en.po``, ``ru.po`` beside this file) read with
Babel at start, CLDR plural rules, number and date formats.

Message ids are symbolic (``playtime.title``); English is a catalogue like Russian, so every id
must be in both (tests/test_i18n.py checks it, with the same ``{placeholders}``). Texts are
Python format strings with named fields. ``texts(lang)`` gives one language's view:

    t = texts("ru")
    t("playtime.title", name="Алиса")       # "Игровое время: Алиса"
    t.plural("stats.members", 21)           # "21 участник" (the count is the field ``count``)
    t.duration(3900)                        # "1 ч 5 мин"

Discord sends locales such as ``ru``, ``en-US`` and ``en-GB``; ``language()`` picks the first
given one that Questlog speaks, else English. The CLI and logs stay English.
"""

from __future__ import annotations

import functools
import io
import logging
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

Language = Literal["en", "ru"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT: Language = "en"
HERE = Path(__file__).resolve().parent

log = logging.getLogger(__name__)

__all__ = ["DEFAULT", "LANGUAGES", "Language", "Texts", "catalogue", "language", "texts"]


def language(*locales: str | None) -> Language:
    """The first of ``locales`` (Discord's locale strings: ``ru``, ``en-US``, ``en-GB``, ...,
    or None) that Questlog speaks, else English."""
    for value in locales:
        if not value:
            continue
        base = str(value).split("-")[0].split("_")[0].lower()
        if base in LANGUAGES:
            return base  # type: ignore[return-value]
    return DEFAULT


@functools.cache
def catalogue(lang: Language) -> Catalog:
    """The parsed ``<lang>.po`` (Babel's Catalog; its header carries the plural rule)."""
    with (HERE / f"{lang}.po").open("rb") as handle:
        return read_po(handle, locale=lang, domain="questlog")


@functools.cache
def _translations(lang: Language) -> Translations:
    buffer = io.BytesIO()
    write_mo(buffer, catalogue(lang))  # in memory: the .po files are the only source
    buffer.seek(0)
    return Translations(buffer, domain="questlog")


class Texts:
    """One language's messages and formats."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        self._messages = _translations(lang)
        self._fallback = None if lang == DEFAULT else texts(DEFAULT)

    def __call__(self, msgid: str, **fields: Any) -> str:
        found = self._messages.gettext(msgid)
        if found == msgid:  # not in this catalogue (tests keep both complete)
            return self._missing(msgid, fields)
        return found.format_map(fields) if fields else found

    def get(self, msgid: str) -> str | None:
        """The text of ``msgid`` in this language as written (no fields), or None."""
        found = self._messages.gettext(msgid)
        return None if found == msgid else found

    def plural(self, msgid: str, count: int, **fields: Any) -> str:
        """The form of ``msgid`` for ``count`` by the language's CLDR rule; ``{count}`` is the
        number as the language writes it."""
        found = self._messages.ngettext(msgid, msgid, count)
        if found == msgid:
            return self._missing(msgid, {"count": self.number(count), **fields}, count)
        return found.format_map({"count": self.number(count), **fields})

    def _missing(self, msgid: str, fields: dict[str, Any], count: int | None = None) -> str:
        log.warning("message %r is missing from the %s catalogue", msgid, self.lang)
        if self._fallback is not None:
            if count is None:
                return self._fallback(msgid, **fields)
            return self._fallback.plural(msgid, count, **fields)
        return msgid

    def number(self, value: float) -> str:
        """``12,345`` / ``12 345`` (a no-break space), decimals as the language writes them."""
        return format_decimal(value, locale=self.locale)

    def duration(self, seconds: float) -> str:
        """``12 h 30 min`` / ``12 ч 30 мин``, ``45 min``, ``30 s``."""
        seconds = max(0, int(seconds))
        hours, rest = divmod(seconds, 3600)
        minutes = rest // 60
        if hours and minutes:
            return self("duration.hours_minutes", hours=self.number(hours), minutes=minutes)
        if hours:
            return self("duration.hours", hours=self.number(hours))
        if minutes:
            return self("duration.minutes", minutes=minutes)
        return self("duration.seconds", seconds=seconds)

    def hours(self, value: float) -> str:
        """Hours with one decimal below 100 (``12.5 h`` / ``12,5 ч``), whole above."""
        shown = format_decimal(round(value, 1 if value < 100 else 0), locale=self.locale)
        return self("duration.hours", hours=shown)

    def short_day(self, value: date) -> str:
        """A day without the year, as the language writes it (``Mar 12`` / ``12 мар.``)."""
        return format_skeleton("MMMd", value, locale=self.locale)

    def day(self, value: date, form: str = "medium") -> str:
        """A date as the language writes it (``Mar 12, 2025`` / ``12 мар. 2025 г.``)."""
        return format_date(value, format=form, locale=self.locale)


@functools.cache
def texts(lang: Language) -> Texts:
    return Texts(lang)
