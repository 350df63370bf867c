"""Text from members, game servers and Steam never renders as markdown, a link or a mention:
through every command that shows it and every connector's feed event."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.feed.embeds import build_embed
from bot.feed.poster import FeedPoster
from bot.gateway.client import Questlog
from bot.markdown import ZWSP, code, escape, plain
from bot.storage.links import link_account
from bot.storage.playtime import record_playtime, remember_game_name
from connectors.base import WebhookContext
from tests.conftest import GUILD, bm_headers, iso_ms, sha_headers
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    answer_text,
    answers,
    command_interaction,
    run_command,
    user_payload,
)
from tests.fakes.steam import GRIM_DAWN_APP, SAPHYEL_ID, FakeSteam
from tests.test_feed import CHANNEL, MemoryDiscord, set_feed
from tests.test_steam_sync import play

HERE = 900000000000000061
PLAYER = 4000000000000000031
GUILD_CHANNELS = {HERE: None, CHANNEL: None}

#: What a hostile or careless member, game server or Steam profile might send. Each fits the
#: shortest external field (32 characters: a Minecraft player name).
SAMPLES = [
    "**@everyone** __u__ ||s||",
    "[Claim Nitro](https://phish.io)",
    "`code` <@1234> <#5678> ~~x~~",
    "# big\n> quote\n-# small",
]
#: Pieces of the samples that would render (or ping) if they reached Discord unescaped.
LIVE = re.compile(
    r"\*\*@|@everyone|__u__|\|\|s\|\||~~x~~|`code`|<@1234|<#5678|Nitro\]\(|https?://phish"
    r"|(^|\n)(# big|> quote|-# small)"
)
_SPECIAL = set("\\*_~`|>[]()#<-")


def unescaped(text: str) -> list[str]:
    """Markdown characters in ``text`` that are not escaped by a backslash."""
    found, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            index += 2
            continue
        if char in _SPECIAL:
            found.append(char)
        index += 1
    return found


def assert_inert(text: str, sample: str) -> None:
    """``text`` shows ``sample`` escaped (so the helper was applied) and nothing of it is live."""
    assert escape(sample) in text, (sample, text)
    assert not LIVE.search(text), text
    assert not LIVE.search(escape(sample)), escape(sample)


def embed_texts(embed: dict[str, Any]) -> list[str]:
    texts = [embed.get("title", ""), embed.get("description", "")]
    for field in embed.get("fields", []):
        texts += [field["name"], field["value"]]
    return texts


# --------------------------------------------------------------------------- the helper


@pytest.mark.parametrize("sample", SAMPLES)
def test_escape_leaves_no_markdown_mention_or_link(sample: str) -> None:
    escaped = escape(sample)
    assert unescaped(escaped) == []
    assert "@everyone" not in escaped and "://" not in escaped
    # What Discord shows once it drops the escapes is the sample itself.
    assert re.sub(r"\\(.)", r"\1", escaped).replace(ZWSP, "") == sample


def test_plain_and_code() -> None:
    assert plain("@here https://x.io") == f"@{ZWSP}here https:{ZWSP}//x.io"
    assert code("a`b") == "``a`b``"
    assert code("``x") == "``` ``x ```"
    assert code("plain") == "`plain`"


def test_clip_never_leaves_half_an_escape() -> None:
    from bot.feed.embeds import clip

    assert clip("ab\\*cd", 4) == "ab…"
    assert clip("a\\\\*cd", 4) == "a\\\\…"


# --------------------------------------------------------------------------- feed events


async def posted_embeds(core: Core, clock: ManualClock) -> list[dict[str, Any]]:
    discord_api = MemoryDiscord()
    await FeedPoster(core.store, clock, discord_api).run_once()
    return discord_api.embeds()


def assert_embed_inert(embed: dict[str, Any], sample: str) -> None:
    texts = embed_texts(embed)
    assert any(escape(sample) in t for t in texts), (sample, embed)
    for text in texts:
        assert not LIVE.search(text), text
    footer = embed.get("footer", {}).get("text", "")
    assert "@everyone" not in footer and "://" not in footer


@pytest.mark.parametrize("sample", SAMPLES)
async def test_custom_events(core: Core, clock: ManualClock, sample: str) -> None:
    await set_feed(core)
    connector = core.registry.get("custom")
    body = {
        "event_type": "match",
        "title": sample,
        "description": sample,
        "player": {"id": "p1", "name": sample},
        "id": "e1",
    }
    raw = connector.parse_webhook(body, WebhookContext(received_at=clock.now()))
    await core.pipeline.ingest("custom", GUILD, raw)
    [embed] = await posted_embeds(core, clock)
    assert embed["title"] == f"📣 {escape(sample)}"
    assert embed["description"] == f"{escape(sample)}\n{escape(sample)}"
    assert_embed_inert(embed, sample)


@pytest.mark.parametrize("sample", SAMPLES)
async def test_minecraft_events(core: Core, clock: ManualClock, sample: str) -> None:
    await set_feed(core)
    connector = core.registry.get("minecraft")
    player = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    at = to_iso(clock.now())
    for body in (
        {"type": "session.started", "player_uuid": player, "player_name": sample,
         "server_id": sample, "world": sample, "at": at},
        {"type": "achievement.unlocked", "player_uuid": player, "player_name": sample,
         "key": "minecraft:story/mine_diamond", "title": sample, "at": at},
    ):  # fmt: skip
        raw = connector.parse_webhook(body, WebhookContext(received_at=clock.now()))
        await core.pipeline.ingest("minecraft", GUILD, raw)
    embeds = await posted_embeds(core, clock)
    assert len(embeds) == 2
    for embed in embeds:
        assert_embed_inert(embed, sample)
    assert embeds[1]["title"].endswith(f"\\[{escape(sample)}\\]")


@pytest.mark.parametrize("sample", SAMPLES)
async def test_battlemetrics_milestones(
    core: Core, clock: ManualClock, client: Any, make_endpoint: Any, sample: str
) -> None:
    """A milestone names the linked member and the game as Steam calls it."""
    await set_feed(core)
    steam_id = "76561198000000042"
    now = clock.now()

    def op(c: Any) -> None:
        link_account(
            c, guild_id=GUILD, discord_user_id=PLAYER, source="steam",
            external_id=steam_id, now=now, display_name=sample,
        )  # fmt: skip
        remember_game_name(c, "393380", sample, to_iso(now))

    await core.store.engine.write(op)
    endpoint = await make_endpoint("playtime")
    for hours in (9, 11):  # the first report is a silent baseline; the second crosses 10 h
        clock.advance(60)
        body = json.dumps({"steam_id": steam_id, "playtime": hours * 3600, "game_id": 393380})
        answer = await client.post(
            f"/set-playtime/bm/{endpoint.path}/",
            data=body.encode(),
            headers=bm_headers(endpoint.secret, body.encode(), iso_ms(clock.now())),
        )
        assert answer.status == 200, await answer.text()
    [embed] = await posted_embeds(core, clock)
    assert embed["title"].startswith("🏅 ")
    assert_embed_inert(embed, sample)
    assert any(f["value"] == escape(sample) for f in embed["fields"])


@pytest.fixture
def config_data(tmp_path: Path, steam: FakeSteam) -> dict[str, Any]:
    from tests.conftest import steam_config_data

    return steam_config_data(tmp_path, steam, max_concurrency=4)


@pytest.mark.parametrize("sample", SAMPLES)
async def test_steam_events(core: Core, clock: ManualClock, steam: FakeSteam, sample: str) -> None:
    """Persona (the linked name), game and achievement names and descriptions from Steam."""
    await set_feed(core)
    now = clock.now()
    await core.store.engine.write(
        lambda c: link_account(
            c, guild_id=GUILD, discord_user_id=PLAYER, source="steam",
            external_id=SAPHYEL_ID, now=now, display_name=sample,
        )
    )  # fmt: skip
    for game in steam.players[SAPHYEL_ID]:
        game["name"] = sample
    await core.steam_sync.sync_now()  # the baseline
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 30)
    clock.advance(600)
    await core.steam_sync.sync_now()  # played: its existing achievements are the baseline
    steam.schemas[GRIM_DAWN_APP].append(
        {"name": "ACH_X", "defaultvalue": 0, "displayName": sample, "hidden": 0,
         "description": sample, "icon": "https://cdn.example/x.jpg", "icongray": ""}
    )  # fmt: skip
    steam.percentages[GRIM_DAWN_APP]["ACH_X"] = 50.0
    steam.achievements[(SAPHYEL_ID, GRIM_DAWN_APP)].append(
        {"apiname": "ACH_X", "achieved": 1, "unlocktime": int(clock.now().timestamp())}
    )
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 30)
    clock.advance(600)
    await core.steam_sync.sync_now()
    embeds = await posted_embeds(core, clock)
    types = {e["footer"]["text"].rsplit(" ", 1)[-1] for e in embeds}
    assert {"steam.game_played", "steam.achievement"} <= types
    for embed in embeds:
        assert_embed_inert(embed, sample)


def test_every_embed_text_is_escaped_whatever_the_event_type() -> None:
    sample = SAMPLES[1]
    embed = build_embed(
        {
            "type": "steam.achievement",
            "title": sample,
            "payload": json.dumps(
                {"description": sample, "game_name": sample, "rarity": sample, "world": sample}
            ),
            "actor_name": sample,
            "occurred_at": "2025-03-01T12:00:00Z",
        }
    )
    for text in embed_texts(embed):
        assert not LIVE.search(text), text


# --------------------------------------------------------------------------- commands


def interaction(
    bot: Questlog,
    group: str | None,
    command: str,
    options: list[dict[str, Any]] | None = None,
    resolved: dict[str, Any] | None = None,
) -> discord.Interaction:
    return command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=HERE,
        group=group,
        command=command,
        options=options,
        resolved=resolved,
        user_id=PLAYER,
    )


def named_member(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``member`` option for a member whose display name is ``name``."""
    option = {"name": "member", "type": 6, "value": str(PLAYER)}
    resolved = {
        "users": {str(PLAYER): user_payload(PLAYER, name)},
        "members": {
            str(PLAYER): {
                "roles": [],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "flags": 0,
                "permissions": "0",
                "deaf": False,
                "mute": False,
                "nick": name,
            }
        },
    }
    return option, resolved


def content(fake: FakeDiscord, done: discord.Interaction) -> tuple[str, list[dict[str, Any]]]:
    replies = answers(fake, done)
    assert replies, "no answer"
    for answer in replies:
        if answer["data"].get("content") or answer["data"].get("embeds"):
            assert answer["data"].get("allowed_mentions") == {"parse": []}
    text = "\n".join(a["data"].get("content") or "" for a in replies)
    embeds = [e for a in replies for e in a["data"].get("embeds") or []]
    return text, embeds


@pytest.mark.parametrize("sample", SAMPLES)
async def test_leaderboard_game_typed_by_a_member(
    bot: Questlog, discord_api: FakeDiscord, sample: str
) -> None:
    board = interaction(bot, None, "leaderboard", [{"name": "game", "type": 3, "value": sample}])
    await run_command(bot, board)
    text, _ = content(discord_api, board)
    assert_inert(text, sample)


@pytest.mark.parametrize("sample", SAMPLES)
async def test_playtime_and_leaderboard_show_steam_names_and_member_names(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord, sample: str
) -> None:
    now = clock.now()
    steam_id = "76561198000000043"

    def op(c: Any) -> None:
        link_account(
            c, guild_id=GUILD, discord_user_id=PLAYER, source="steam",
            external_id=steam_id, now=now,
        )  # fmt: skip
        record_playtime(
            c, scope=0, source="steam", player_id=steam_id, game_id="393380",
            seconds=7200, source_time=now, now_text=to_iso(now),
        )  # fmt: skip
        remember_game_name(c, "393380", sample, to_iso(now))

    await core.store.engine.write(op)
    option, resolved = named_member(sample)
    show = interaction(bot, "playtime", "show", [option], resolved)
    await run_command(bot, show)
    _, [embed] = content(discord_api, show)
    assert_inert(embed["title"], sample)
    assert_inert(embed["description"], sample)
    board = interaction(bot, None, "leaderboard", [{"name": "game", "type": 3, "value": "393380"}])
    await run_command(bot, board)
    _, [embed] = content(discord_api, board)
    assert_inert(embed["title"], sample)


async def test_chart_titles_take_dollar_signs_literally(
    bot: Questlog, discord_api: FakeDiscord
) -> None:
    """Without playtime the answer is words, with the name escaped; the renderer itself takes
    "$" literally (tests/test_charts.py renders such titles and game names)."""
    option, resolved = named_member("$x^$ and $\\frac{a}$ *bold*")
    chart = interaction(bot, "playtime", "chart", [option], resolved)
    await run_command(bot, chart)
    assert [a["kind"] for a in answers(discord_api, chart)] == ["callback", "followup"]
    assert discord_api.uploads == []
    assert escape("*bold*") in answer_text(discord_api, chart)


@pytest.mark.parametrize("sample", SAMPLES)
async def test_links_and_link_steam_show_persona_names(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord,
    steam: FakeSteam, sample: str,
) -> None:  # fmt: skip
    steam.summaries[SAPHYEL_ID]["personaname"] = sample
    linked = interaction(
        bot, "link", "steam", [{"name": "profile", "type": 3, "value": SAPHYEL_ID}]
    )
    await run_command(bot, linked)
    text, _ = content(discord_api, linked)
    assert_inert(text, sample)
    listed = interaction(bot, None, "links")
    await run_command(bot, listed)
    text, _ = content(discord_api, listed)
    assert_inert(text, sample)


async def test_webhook_secrets_with_backticks_show_literally(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    web = dataclasses.replace(core.config.web, public_url="https://questlog.example.org")
    core.config = dataclasses.replace(core.config, web=web)
    secret = "a`b``c **x** @everyone"
    created = command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=HERE,
        group="webhook",
        command="create",
        options=[
            {"name": "kind", "type": 3, "value": "custom"},
            {"name": "secret", "type": 3, "value": secret},
        ],
    )
    await run_command(bot, created)
    text, _ = content(discord_api, created)
    assert f"||{code(secret)}||" in text


async def test_signed_webhook_text_reaches_the_feed_escaped(
    core: Core, clock: ManualClock, client: Any, make_endpoint: Any
) -> None:
    """The whole way: a signed custom webhook, the pipeline, the poster."""
    await set_feed(core)
    endpoint = await make_endpoint("custom")
    body = json.dumps({"event_type": "x", "title": SAMPLES[0], "id": "w1"}).encode()
    answer = await client.post(
        f"/webhooks/custom/{endpoint.path}", data=body, headers=sha_headers(endpoint.secret, body)
    )
    assert answer.status == 202 or answer.status == 200
    [embed] = await posted_embeds(core, clock)
    assert_embed_inert(embed, SAMPLES[0])
