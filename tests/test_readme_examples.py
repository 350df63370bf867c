"""The README's Minecraft examples are deliveries Questlog accepts, and the two scripted ones
are different events (the second is not answered "duplicate"); the Russian README has the same
sections."""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path

from connectors.base import WebhookContext
from connectors.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MINECRAFT = README[README.index("### Minecraft") : README.index("### Custom scripts")]
CONNECTOR = Registry().discover().get("minecraft")


def test_every_player_uuid_in_the_readme_is_a_uuid() -> None:
    found = re.findall(r'"player_uuid":\s*"([^"]*)"', README)
    assert found
    for value in found:
        uuid.UUID(value)  # raises on a placeholder such as "069a79f4-…"


def test_the_json_examples_validate() -> None:
    block = MINECRAFT[MINECRAFT.index("```json") + 7 :]
    block = block[: block.index("```")]
    events = [json.loads(chunk) for chunk in re.findall(r"\{.*?\}(?=\n\{|\n?$)", block, re.S)]
    assert len(events) == 6
    for event in events:
        CONNECTOR.parse_webhook(event, WebhookContext())


def test_the_python_and_curl_examples_send_different_events() -> None:
    python_block = MINECRAFT[MINECRAFT.index("```python") :]
    call = python_block[python_block.index("json.dumps(") + len("json.dumps(") :]
    call = call[: call.index(").encode()")]
    python_body = ast.literal_eval(call.strip())
    curl_body = json.loads(re.search(r"body='(\{.*?\})'", MINECRAFT)[1])  # type: ignore[index]
    keys = []
    for body in (python_body, curl_body):
        raw = CONNECTOR.parse_webhook(body, WebhookContext())
        keys.append(CONNECTOR.dedupe_key(raw))
    assert keys[0] != keys[1]


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading outside code fences."""
    found = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            found.append((level, line[level:].strip()))
    return found


def test_the_russian_readme_has_the_same_sections() -> None:
    english = headings((ROOT / "README.md").read_text(encoding="utf-8"))
    russian = headings((ROOT / "README.ru.md").read_text(encoding="utf-8"))
    assert [level for level, _ in russian] == [level for level, _ in english]
    assert len(english) > 20
    translated = [ru for (_, en), (_, ru) in zip(english, russian, strict=True) if en != ru]
    assert len(translated) > len(english) // 2  # the headings are Russian, not copies
    assert "(README.md)" in (ROOT / "README.ru.md").read_text(encoding="utf-8")[:300]
