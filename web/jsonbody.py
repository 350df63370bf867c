"""Strict JSON decoding for request bodies (anything odd is a 400, never a 500)."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class MalformedJson(ValueError):
    pass


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"number {text[:20]} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJson(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _check_text(value: Any) -> None:
    """Reject lone surrogates ("\\ud800"), which JSON allows but UTF-8 cannot store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedJson("string holds an unpaired surrogate escape") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# One decoder for every request: json.loads with hooks builds a new JSONDecoder per call, which
# cost more than decoding a webhook body.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    object_pairs_hook=_no_duplicates,
)


def parse_json(body: bytes) -> Any:
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("body is not valid UTF-8") from None
    if not text.strip():
        raise MalformedJson("body is empty")
    try:
        value = _DECODER.decode(text)
    except MalformedJson:
        raise
    except RecursionError:
        raise MalformedJson("JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() beyond Python's digit limit
        raise MalformedJson(f"not valid JSON: {str(exc)[:120]}") from None
    # Deep nesting would overflow the recursion of later JSON encoding; counting brackets is
    # C-speed, so ordinary bodies never pay for the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        raise MalformedJson(f"JSON is nested more than {MAX_DEPTH} levels deep")
    if b"\\u" in body:  # strict UTF-8 cannot carry a surrogate; only a \u escape can
        _check_text(value)
    return value
