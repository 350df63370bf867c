"""tests/fakes/discord.py driven by discord.py's real HTTP client (discord.http.HTTPClient)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import discord
import discord.http
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.discord import BOT_USER_ID, FakeDiscord

CHANNEL = 333333333333333333
OTHER_CHANNEL = 444444444444444444
#: Upper bound for any single test body; all of them take well under it.
BOUND = 5.0

StartFake = Callable[..., Awaitable[FakeDiscord]]
Connect = Callable[[FakeDiscord], Awaitable[discord.http.HTTPClient]]


@pytest.fixture
async def start_fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StartFake]:
    """Start a FakeDiscord (with CHANNEL and OTHER_CHANNEL) and point discord.py at it."""
    async with AsyncExitStack() as stack:

        async def start(**options: Any) -> FakeDiscord:
            options.setdefault("channels", [CHANNEL, OTHER_CHANNEL])
            api = await stack.enter_async_context(FakeDiscord(**options))
            monkeypatch.setattr(discord.http.Route, "BASE", api.api_base)
            return api

        yield start


@pytest.fixture
async def fake(start_fake: StartFake) -> FakeDiscord:
    return await start_fake()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Log a real discord.py HTTPClient in to a fake; closed at teardown."""
    opened: list[discord.http.HTTPClient] = []

    async def login(api: FakeDiscord) -> discord.http.HTTPClient:
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        opened.append(http)
        await http.static_login(api.token)
        return http

    yield login
    for http in opened:
        await http.close()


def params(nonce: int | str | None = 123, **options: Any) -> discord.http.MultipartParameters:
    options.setdefault("embeds", [discord.Embed(title="x")])
    return discord.http.handle_message_parameters(
        nonce=nonce, allowed_mentions=discord.AllowedMentions.none(), **options
    )


async def test_login_returns_the_bot_user(fake: FakeDiscord) -> None:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(BOUND):
            me = await http.static_login(fake.token)
            shards, url, session_start_limit = await http.get_bot_gateway()
    finally:
        await http.close()
    assert me["id"] == str(BOT_USER_ID) and me["bot"] is True
    assert len(me["discriminator"]) == 4  # bots kept their discriminators
    assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/api/v10/users/@me")
    assert fake.requests[0].status == 200
    assert (shards, url) == (1, fake.gateway_url)  # its own gateway, as Discord answers its own
    assert session_start_limit["max_concurrency"] == 1


async def test_wrong_token_is_a_login_failure(fake: FakeDiscord) -> None:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(BOUND):
            with pytest.raises(discord.LoginFailure):
                await http.static_login("not-the-token")
    finally:
        await http.close()
    assert fake.requests[0].status == 401


async def test_send_creates_a_message(fake: FakeDiscord, connect: Connect) -> None:
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        sent = await http.send_message(CHANNEL, params=params(content="hello"))
    assert fake.count(CHANNEL) == 1
    stored = fake.messages[CHANNEL][0]
    assert sent == stored
    assert sent["channel_id"] == str(CHANNEL) and sent["content"] == "hello"
    assert [(e["title"], e["type"]) for e in sent["embeds"]] == [("x", "rich")]
    assert sent["nonce"] == "123" and sent["type"] == 0
    assert sent["author"]["id"] == str(BOT_USER_ID) and sent["author"]["bot"] is True
    # The timestamp is the time inside the snowflake, as on Discord.
    created = discord.utils.snowflake_time(int(sent["id"]))
    assert discord.utils.parse_time(sent["timestamp"]) == created
    assert fake.requests[-1].body["allowed_mentions"] == {"parse": []}
    assert fake.requests[-1].body["enforce_nonce"] is True


async def test_message_ids_increase_and_headers_match_discord(
    fake: FakeDiscord, connect: Connect
) -> None:
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        first = await http.send_message(CHANNEL, params=params(nonce=1))
        second = await http.send_message(CHANNEL, params=params(nonce=2))
        answers = []
        async with aiohttp.ClientSession() as session:
            for channel in (OTHER_CHANNEL, 555555555555555555):
                url = f"{fake.api_base}/channels/{channel}/messages"
                headers = {"Authorization": f"Bot {fake.token}"}
                async with session.post(url, json={"content": "hi"}, headers=headers) as response:
                    answers.append(response.headers)
    assert int(second["id"]) > int(first["id"])
    known, unknown = answers
    assert known["Content-Type"] == "application/json"
    assert known["Via"] == "1.1 google"
    assert known["X-RateLimit-Limit"] == "5" and known["X-RateLimit-Remaining"] == "4"
    assert 0 < float(known["X-RateLimit-Reset-After"]) <= 5.0
    assert float(known["X-RateLimit-Reset"]) > time.time()
    # One hash per route whatever the channel (even an unknown one, answered 404):
    # discord.py keys its buckets by hash + channel id.
    assert known["X-RateLimit-Bucket"] == unknown["X-RateLimit-Bucket"]
    assert len(known["X-RateLimit-Bucket"]) == 32


async def test_same_nonce_twice_gives_one_message(fake: FakeDiscord, connect: Connect) -> None:
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        first = await http.send_message(CHANNEL, params=params(nonce=555))
        again = await http.send_message(CHANNEL, params=params(nonce=555))
        other_channel = await http.send_message(OTHER_CHANNEL, params=params(nonce=555))
    assert again["id"] == first["id"]
    assert fake.count(CHANNEL) == 1
    assert fake.count(OTHER_CHANNEL) == 1 and other_channel["id"] != first["id"]


async def test_nonce_window_is_configurable(start_fake: StartFake, connect: Connect) -> None:
    now = [1000.0]
    fake = await start_fake(nonce_window=60.0, nonce_clock=lambda: now[0])
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        first = await http.send_message(CHANNEL, params=params(nonce=9))
        now[0] += 59.0
        assert (await http.send_message(CHANNEL, params=params(nonce=9)))["id"] == first["id"]
        now[0] += 2.0
        later = await http.send_message(CHANNEL, params=params(nonce=9))
        fake.forget_nonces()
        forgotten = await http.send_message(CHANNEL, params=params(nonce=9))
    assert later["id"] != first["id"] and forgotten["id"] != later["id"]
    assert fake.count(CHANNEL) == 3


async def test_author_nonce_scope_spans_channels(start_fake: StartFake, connect: Connect) -> None:
    fake = await start_fake(nonce_scope="author")
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        first = await http.send_message(CHANNEL, params=params(nonce=5))
        second = await http.send_message(OTHER_CHANNEL, params=params(nonce=5))
    assert second["id"] == first["id"] and second["channel_id"] == str(CHANNEL)
    assert fake.count(OTHER_CHANNEL) == 0


async def test_burst_is_paced_by_discord_py(start_fake: StartFake, connect: Connect) -> None:
    fake = await start_fake(per_channel=(2, 0.5))
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        started = time.monotonic()
        sent = await asyncio.gather(
            *(http.send_message(CHANNEL, params=params(nonce=n)) for n in range(6))
        )
        elapsed = time.monotonic() - started
    assert len({m["id"] for m in sent}) == 6
    assert fake.count(CHANNEL) == 6
    # 2 per 0.5 s: the 5th and 6th go out in the third window, at least 1 s in.
    assert elapsed >= 0.95
    assert fake.rate_limited() == []  # discord.py waited on the headers, it never hit a 429


async def test_exceeding_the_bucket_answers_429_like_discord(start_fake: StartFake) -> None:
    fake = await start_fake(per_channel=(1, 5.0))
    url = f"{fake.api_base}/channels/{CHANNEL}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with asyncio.timeout(BOUND), aiohttp.ClientSession() as session:
        async with session.post(url, json={"content": "a"}, headers=headers) as ok:
            assert ok.status == 200
        async with session.post(url, json={"content": "b"}, headers=headers) as limited:
            body = await limited.json()
            answer = limited.headers
    assert limited.status == 429
    assert answer["Via"] == "1.1 google" and answer["X-RateLimit-Scope"] == "user"
    assert answer["X-RateLimit-Remaining"] == "0" and answer["Retry-After"] == "5"
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 4.0 < body["retry_after"] <= 5.0
    assert fake.count(CHANNEL) == 1


async def test_global_limit_is_waited_out(start_fake: StartFake, connect: Connect) -> None:
    fake = await start_fake(global_per_second=3)
    async with asyncio.timeout(BOUND):
        http = await connect(fake)  # one global request already
        sent = await asyncio.gather(
            *(
                http.send_message(channel, params=params(nonce=n))
                for n, channel in enumerate([CHANNEL, OTHER_CHANNEL, CHANNEL, OTHER_CHANNEL])
            )
        )
    assert len(sent) == 4 and fake.count(CHANNEL) == 2 and fake.count(OTHER_CHANNEL) == 2
    limited = fake.rate_limited()
    assert limited and {r.scope for r in limited} == {"global"}


@pytest.mark.parametrize("scope", ["user", "shared", "global"])
async def test_scripted_429_is_waited_out(fake: FakeDiscord, connect: Connect, scope: str) -> None:
    fake.fail_next(CHANNEL, [(429, 0.2, scope)])
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        started = time.monotonic()
        await http.send_message(CHANNEL, params=params())
        elapsed = time.monotonic() - started
    assert fake.count(CHANNEL) == 1
    assert elapsed >= 0.2
    assert [(r.status, r.scope) for r in fake.requests[1:]] == [(429, scope), (200, None)]


async def test_429_without_via_is_taken_for_a_cloudflare_ban() -> None:
    """The reason the fake puts Via on every answer: discord.py gives up on a 429 without it."""

    async def banned(request: web.Request) -> web.Response:
        return web.json_response({"message": "banned", "retry_after": 0.1}, status=429)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", banned)
    server = TestServer(app, host="127.0.0.1")
    async with asyncio.timeout(BOUND), server:
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(discord.http.Route, "BASE", str(server.make_url("/api/v10")))
                with pytest.raises(discord.HTTPException) as caught:
                    await http.static_login("x")
        finally:
            await http.close()
    assert caught.value.status == 429


async def test_500_is_retried_by_discord_py(fake: FakeDiscord, connect: Connect) -> None:
    fake.fail_next(CHANNEL, [500])
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        sent = await http.send_message(CHANNEL, params=params())
    assert fake.count(CHANNEL) == 1 and fake.messages[CHANNEL][0]["id"] == sent["id"]
    assert [r.status for r in fake.requests[1:]] == [500, 200]


async def test_503_is_not_retried_by_discord_py(fake: FakeDiscord, connect: Connect) -> None:
    fake.fail_next(CHANNEL, [503])
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(discord.DiscordServerError) as caught:
            await http.send_message(CHANNEL, params=params())
    assert caught.value.status == 503
    assert fake.count(CHANNEL) == 0


async def test_scripted_403_and_404(fake: FakeDiscord, connect: Connect) -> None:
    fake.fail_next(CHANNEL, [403, 404])
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(discord.Forbidden) as forbidden:
            await http.send_message(CHANNEL, params=params())
        with pytest.raises(discord.NotFound) as not_found:
            await http.send_message(CHANNEL, params=params())
        await http.send_message(CHANNEL, params=params())
    assert forbidden.value.code == 50013 and not_found.value.code == 10003
    assert fake.count(CHANNEL) == 1


async def test_forbidden_channel(fake: FakeDiscord, connect: Connect) -> None:
    fake.forbidden_channels.add(CHANNEL)
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(discord.Forbidden) as caught:
            await http.send_message(CHANNEL, params=params())
    assert caught.value.status == 403 and caught.value.code == 50013
    assert caught.value.text == "Missing Permissions"
    assert fake.count(CHANNEL) == 0


async def test_deleted_and_unknown_channels(fake: FakeDiscord, connect: Connect) -> None:
    fake.deleted_channels.add(CHANNEL)
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(discord.NotFound) as deleted:
            await http.send_message(CHANNEL, params=params())
        with pytest.raises(discord.NotFound) as unknown:
            await http.get_channel(555555555555555555)
        channel = await http.get_channel(OTHER_CHANNEL)
    assert deleted.value.code == 10003 and unknown.value.code == 10003
    assert deleted.value.text == "Unknown Channel"
    assert channel["type"] == 0 and channel["id"] == str(OTHER_CHANNEL)
    assert channel["guild_id"] == str(fake.guild_id)
    assert fake.count(CHANNEL) == 0


@pytest.mark.parametrize(
    ("embeds", "where", "text"),
    [
        ([discord.Embed(title="t" * 257)], "embeds.0.title", "Must be 256 or fewer in length."),
        (
            [discord.Embed(description="d" * 4000), discord.Embed(description="d" * 2001)],
            "embeds",
            "Embed size exceeds maximum size of 6000",
        ),
        (
            [discord.Embed(title="x").add_field(name="n", value="v" * 1025)],
            "embeds.0.fields.0.value",
            "Must be 1024 or fewer in length.",
        ),
        (
            [discord.Embed(title="x").set_footer(text="f" * 2049)],
            "embeds.0.footer.text",
            "Must be 2048 or fewer in length.",
        ),
    ],
)
async def test_invalid_embeds_are_rejected_like_discord(
    fake: FakeDiscord, connect: Connect, embeds: list[discord.Embed], where: str, text: str
) -> None:
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(discord.HTTPException) as caught:
            await http.send_message(CHANNEL, params=params(embeds=embeds))
    assert caught.value.status == 400 and caught.value.code == 50035
    assert caught.value.text == f"Invalid Form Body\nIn {where}: {text}"
    assert fake.count(CHANNEL) == 0


async def test_raw_validation_errors(fake: FakeDiscord) -> None:
    url = f"{fake.api_base}/channels/{CHANNEL}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    answers: list[tuple[int, Any]] = []
    bodies: list[Any] = [
        {"embeds": [{"title": "x"}] * 11},
        {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
        {"content": ""},
    ]
    async with asyncio.timeout(BOUND), aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(url, json=body, headers=headers) as response:
                assert response.headers["Content-Type"] == "application/json"
                answers.append((response.status, await response.json()))
        async with session.post(url, data=b"{", headers=headers) as response:
            answers.append((response.status, await response.json()))
        json_headers = {**headers, "Content-Type": "application/json"}
        async with session.post(url, data=b"{", headers=json_headers) as response:
            answers.append((response.status, await response.json()))
    too_long = {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}
    assert answers[0] == (
        400,
        {
            "code": 50035,
            "errors": {"embeds": {"_errors": [too_long]}},
            "message": "Invalid Form Body",
        },
    )
    fields = answers[1][1]["errors"]["embeds"]["0"]["fields"]["_errors"]
    assert fields == [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]
    assert answers[2] == (400, {"message": "Cannot send an empty message", "code": 50006})
    # aiohttp sends data=bytes as application/octet-stream: such a body is not read at all.
    assert answers[3] == (400, {"message": "Cannot send an empty message", "code": 50006})
    assert answers[4] == (
        400,
        {"message": "The request body contains invalid JSON.", "code": 50109},
    )
    assert fake.count(CHANNEL) == 0


async def test_dropped_response_then_resend_with_same_nonce(
    fake: FakeDiscord, connect: Connect
) -> None:
    fake.drop_response_next(CHANNEL)
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.send_message(CHANNEL, params=params(nonce=777))
        assert fake.count(CHANNEL) == 1  # stored even though the answer was lost
        again = await http.send_message(CHANNEL, params=params(nonce=777))
    assert again["id"] == fake.messages[CHANNEL][0]["id"]
    assert fake.count(CHANNEL) == 1
    assert [r.dropped for r in fake.requests[1:]] == [True, False]


async def test_edit_message(fake: FakeDiscord, connect: Connect) -> None:
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        sent = await http.send_message(CHANNEL, params=params())
        edited = await http.edit_message(
            CHANNEL, sent["id"], params=params(nonce=None, embeds=[discord.Embed(title="y")])
        )
        with pytest.raises(discord.NotFound) as unknown:
            await http.edit_message(CHANNEL, 1, params=params(nonce=None))
    assert edited["id"] == sent["id"]
    assert [(e["title"], e["type"]) for e in edited["embeds"]] == [("y", "rich")]
    assert edited["edited_timestamp"] is not None
    assert fake.messages[CHANNEL][0]["embeds"][0]["title"] == "y"
    assert unknown.value.code == 10008 and unknown.value.text == "Unknown Message"


async def test_multipart_payload_json(fake: FakeDiscord, connect: Connect) -> None:
    file = discord.File(io.BytesIO(b"hello"), filename="hello.txt")
    async with asyncio.timeout(BOUND):
        http = await connect(fake)
        with params(nonce=42, content="with file", file=file) as multipart:
            assert multipart.files  # discord.py sends multipart with payload_json
            sent = await http.send_message(CHANNEL, params=multipart)
    assert sent["content"] == "with file" and sent["nonce"] == "42"
    assert [(a["filename"], a["size"]) for a in sent["attachments"]] == [("hello.txt", 5)]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (50001, discord.Forbidden),
        (50013, discord.Forbidden),
        (10003, discord.NotFound),
        (50008, discord.HTTPException),
    ],
)
async def test_refused_channels_answer_with_discords_codes(
    fake: FakeDiscord, connect: Connect, code: int, error: type[Exception]
) -> None:
    http = await connect(fake)
    fake.refused_channels[CHANNEL] = code
    async with asyncio.timeout(BOUND):
        with params() as p, pytest.raises(error) as caught:
            await http.send_message(CHANNEL, params=p)
        with params() as p:  # another channel is not affected
            await http.send_message(OTHER_CHANNEL, params=p)
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert fake.count(CHANNEL) == 0 and fake.count(OTHER_CHANNEL) == 1


async def test_scripted_refusals_and_form_errors_name_the_embed(
    fake: FakeDiscord, connect: Connect
) -> None:
    from tests.fakes.discord import invalid_embeds, refusal

    http = await connect(fake)
    fake.fail_next(CHANNEL, [refusal(50001), invalid_embeds({2: "thumbnail.url"})])
    async with asyncio.timeout(BOUND):
        with params() as p, pytest.raises(discord.Forbidden) as first:
            await http.send_message(CHANNEL, params=p)
        with params() as p, pytest.raises(discord.HTTPException) as second:
            await http.send_message(CHANNEL, params=p)
    assert (first.value.code, first.value.text) == (50001, "Missing Access")
    assert second.value.code == 50035
    assert "In embeds.2.thumbnail.url: Not a well formed URL." in second.value.text


async def test_malformed_embed_urls_are_refused_where_they_are(
    fake: FakeDiscord, connect: Connect
) -> None:
    http = await connect(fake)
    good = discord.Embed(title="ok", url="https://example.org/a")
    spaced = discord.Embed(title="bad").set_thumbnail(url="https://exa mple.org/x.png")
    ftp = discord.Embed(title="bad", url="ftp://example.org/file")
    async with asyncio.timeout(BOUND):
        with params(embeds=[good, spaced, ftp]) as p, pytest.raises(discord.HTTPException) as bad:
            await http.send_message(CHANNEL, params=p)
        with params(embeds=[good]) as p:
            await http.send_message(CHANNEL, params=p)
    assert bad.value.code == 50035
    assert "In embeds.1.thumbnail.url: Not a well formed URL." in bad.value.text
    assert 'In embeds.2.url: Scheme "ftp" is not supported.' in bad.value.text
    assert "embeds.0" not in bad.value.text
    assert fake.count(CHANNEL) == 1


async def test_a_held_channel_waits_alone(fake: FakeDiscord, connect: Connect) -> None:
    http = await connect(fake)
    fake.holds[CHANNEL] = 1.0
    started = time.monotonic()
    async with asyncio.timeout(BOUND):

        async def send(channel: int) -> float:
            with params() as p:
                await http.send_message(channel, params=p)
            return time.monotonic() - started

        held, other = await asyncio.gather(send(CHANNEL), send(OTHER_CHANNEL))
    assert held >= 1.0 and other < 0.5
