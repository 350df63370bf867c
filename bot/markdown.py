"""Text from outside (members, game servers, Steam) shown literally in Discord.

Discord renders markdown, masked links (``[text](url)``), bare URLs, mentions, custom emoji and
timestamps (``<...>``) in message content, embed titles, descriptions and field values. Every
text Questlog did not write itself goes through :func:`escape` before it is put into one of
those, so a player called ``[Claim Nitro](https://phish.example)`` or ``**@everyone**`` is shown
as exactly that and never as a link, bold text or a ping (replies also send
``AllowedMentions.none()``; escaping keeps the text from *looking* like a mention too).

Embed footers and author names are plain text to Discord (no markdown), where a backslash would
show; :func:`plain` only breaks what could still be live there (mentions and URL schemes).
:func:`code` shows a value (a secret, a path) as inline code, whatever backticks it contains.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"  # zero-width space: invisible, but breaks a mention or a URL scheme

# Everything Discord's markdown gives a meaning to: emphasis (* _ ~), code (`), spoilers (|),
# quotes (>), masked links ([ ] ( )), headings and subtext (# -), lists (-), and <...> for
# mentions, channels, emoji and timestamps. Backslash first, so escapes cannot be undone.
_SPECIAL = re.compile(r"([\\*_~`|>\[\]()#<-])")
# A URL scheme followed by // (https://, steam://): Discord would turn it into a link.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:)(?=//)")
_BACKTICKS = re.compile(r"`+")
# "1. " at the start of a line starts an ordered list.
_ORDERED = re.compile(r"^(\s*\d+)\.", re.MULTILINE)


def escape(text: str) -> str:
    """``text`` as it reads, for a markdown context (content, title, description, field)."""
    return plain(_ORDERED.sub(r"\1\\.", _SPECIAL.sub(r"\\\1", text)))


def plain(text: str) -> str:
    """``text`` for a context without markdown (embed footer, author name): no mention, no link."""
    return _SCHEME.sub(r"\1" + ZWSP, text).replace("@", "@" + ZWSP)


def code(text: str) -> str:
    """``text`` as inline code: the fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
