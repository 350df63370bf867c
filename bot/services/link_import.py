"""Reading the linked-account files communities move over from, for ``questlog link --import``.

Three formats, detected from the file (or named with ``--format``):

* ``csv``: ``user,source,id`` per line (a header line with those words is allowed); source is
  ``steam`` (a SteamID64) or ``minecraft`` (a UUID);
* ``discordsrv``: DiscordSRV's ``accounts.aof``, one ``<discord id> <minecraft uuid>`` per
  line; the file is appended to, so a later line for the same Discord id wins, as it does for
  DiscordSRV;
* ``essentials``: EssentialsX DiscordLink's ``accounts.json``, one JSON object of minecraft
  uuid to discord id.

Every entry comes back with the line (or key) it came from, and entries that cannot be links
come back as skipped with the reason, so the report can say what happened to each.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from dataclasses import dataclass

from connectors.base import SchemaError, steam_id

FORMATS = ("csv", "discordsrv", "essentials")
_SNOWFLAKE = re.compile(r"[0-9]{15,20}", re.ASCII)
_AOF_LINE = re.compile(r"\s*([0-9]+)\s+([0-9A-Fa-f-]{32,36})\s*")


@dataclass(frozen=True)
class Entry:
    where: str  # "line 3", or the JSON key
    user_id: int
    source: str
    external_id: str


@dataclass(frozen=True)
class Skipped:
    where: str
    reason: str


class ImportFileError(Exception):
    """The file as a whole cannot be read in the format asked for."""


def detect(name: str, text: str) -> str:
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith("{"):
        return "essentials"
    if name.endswith(".aof"):
        return "discordsrv"
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," in first:
        return "csv"
    if _AOF_LINE.fullmatch(first):
        return "discordsrv"
    raise ImportFileError(
        "cannot tell the file's format: name it with --format csv|discordsrv|essentials"
    )


def _user(text: str) -> int | None:
    text = text.strip()
    return int(text) if _SNOWFLAKE.fullmatch(text) else None


def _minecraft(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def _account(source: str, text: str) -> str | None:
    if source == "minecraft":
        return _minecraft(text)
    try:
        return steam_id(text, "id")
    except SchemaError:
        return None


def parse(name: str, text: str, fmt: str = "auto") -> tuple[list[Entry], list[Skipped]]:
    """The links a file holds and the entries skipped (with why)."""
    fmt = detect(name, text) if fmt == "auto" else fmt
    if fmt == "csv":
        return _csv(text)
    if fmt == "discordsrv":
        return _discordsrv(text)
    if fmt == "essentials":
        return _essentials(text)
    raise ImportFileError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def _csv(text: str) -> tuple[list[Entry], list[Skipped]]:
    entries, skipped = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        where = f"line {number}"
        if not row or not "".join(row).strip():
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["user", "source", "id"]:
            continue
        if len(row) != 3:
            skipped.append(Skipped(where, "needs three fields: user,source,id"))
            continue
        user, source, ident = (c.strip() for c in row)
        source = source.lower()
        user_id = _user(user)
        if user_id is None:
            skipped.append(Skipped(where, f"{user!r} is not a Discord user id"))
        elif source not in ("steam", "minecraft"):
            skipped.append(Skipped(where, f"source {source!r} is not steam or minecraft"))
        elif (account := _account(source, ident)) is None:
            what = "a SteamID64" if source == "steam" else "a Minecraft UUID"
            skipped.append(Skipped(where, f"{ident!r} is not {what}"))
        else:
            entries.append(Entry(where, user_id, source, account))
    return entries, skipped


def _discordsrv(text: str) -> tuple[list[Entry], list[Skipped]]:
    latest: dict[int, Entry] = {}
    skipped = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        match = _AOF_LINE.fullmatch(line)
        user_id = _user(match[1]) if match else None
        account = _minecraft(match[2]) if match else None
        if user_id is None or account is None:
            skipped.append(Skipped(where, "not a '<discord id> <minecraft uuid>' line"))
            continue
        if user_id in latest:
            skipped.append(Skipped(latest[user_id].where, f"replaced by {where}"))
        latest[user_id] = Entry(where, user_id, "minecraft", account)
    return list(latest.values()), skipped


def _essentials(text: str) -> tuple[list[Entry], list[Skipped]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ImportFileError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImportFileError("expected one JSON object of minecraft uuid to discord id")
    entries, skipped = [], []
    for key, value in data.items():
        account = _minecraft(str(key))
        user_id = _user(str(value)) if isinstance(value, str | int) else None
        if account is None:
            skipped.append(Skipped(str(key), "the key is not a Minecraft UUID"))
        elif user_id is None:
            skipped.append(Skipped(str(key), f"{value!r} is not a Discord user id"))
        else:
            entries.append(Entry(str(key), user_id, "minecraft", account))
    return entries, skipped
