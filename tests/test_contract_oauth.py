"""The ``oauth`` part (states of OAuth and OpenID flows, OpenID nonces) and the ``tokens`` part
(members' sealed Discord tokens and the pushes of their role connections), on every backend."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from bot.storage import Store
from bot.storage.records import OAuthState, StoredTokens
from tests.contract import GUILD, NOW, OTHER, SID, part, store  # noqa: F401
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

MEMBER = 4000000000000000201
TTL = timedelta(minutes=10)


# --------------------------------------------------------------------------- states


@part("oauth")
async def test_a_state_is_taken_once_and_only_before_it_expires(store: Store) -> None:
    states = store.oauth
    state = await states.create(
        kind="discord", guild_id=GUILD, user_id=MEMBER, language="ru", now=NOW
    )
    assert len(state) >= 43  # 256 random bits
    bound = OAuthState("discord", GUILD, MEMBER, "ru", NOW + TTL)
    assert await states.consume(state, ("steam",), NOW) == ("unknown", None)  # another kind
    assert await states.consume(state, "disc", NOW) == ("unknown", None)  # not a substring
    assert await states.peek(state, ("discord",), NOW) == ("ok", bound)
    assert await states.peek(state, ("discord",), NOW) == ("ok", bound)  # a peek takes nothing
    later = NOW + TTL - timedelta(microseconds=1)
    assert await states.consume(state, ("steam", "discord"), later) == ("ok", bound)
    assert await states.consume(state, ("discord",), NOW) == ("used", bound)
    assert await states.peek(state, ("discord",), NOW) == ("used", bound)
    assert await states.consume(state, "discord", later) == ("used", bound)  # a bare kind
    assert await states.consume(state, ("steam",), NOW) == ("unknown", None)  # used or not
    forged = "forged" + state[6:]
    assert await states.consume(forged, ("discord",), NOW) == ("unknown", None)
    assert await states.peek(forged, ("discord",), NOW) == ("unknown", None)
    assert await states.consume("", ("discord",), NOW) == ("unknown", None)


@part("oauth")
async def test_an_expired_state_is_refused_and_not_used_up(store: Store) -> None:
    states = store.oauth
    state = await states.create(kind="steam", guild_id=None, user_id=None, language="en-US",
                                now=NOW)  # fmt: skip
    bound = OAuthState("steam", None, None, "en-US", NOW + TTL)
    assert await states.peek(state, ("steam",), NOW + TTL) == ("expired", bound)
    assert await states.consume(state, ("steam",), NOW + TTL) == ("expired", bound)  # at expiry
    assert await states.consume(state, ("steam",), NOW + 2 * TTL) == ("expired", bound)
    # Refusing it used nothing up: the clock read earlier still takes it, once.
    assert await states.consume(state, ("steam",), NOW) == ("ok", bound)
    assert await states.consume(state, ("steam",), NOW + TTL) == ("used", bound)  # used wins


@part("oauth")
async def test_states_are_random_and_each_one_bound_to_its_own_flow(store: Store) -> None:
    states = store.oauth
    made = []
    for n in range(1, 4):
        made.append(
            await states.create(kind="linked_roles", guild_id=OTHER, user_id=n, language="de",
                                now=NOW + timedelta(seconds=n))
        )  # fmt: skip
    assert len(set(made)) == 3
    for n, state in reversed(list(enumerate(made, start=1))):
        expected = OAuthState("linked_roles", OTHER, n, "de", NOW + timedelta(seconds=n) + TTL)
        assert await states.consume(state, ("linked_roles",), NOW) == ("ok", expected)


@part("oauth")
async def test_two_callbacks_with_one_state_at_once_take_it_once(store: Store) -> None:
    states = store.oauth
    state = await states.create(kind="discord", guild_id=GUILD, user_id=MEMBER, language="en",
                                now=NOW)  # fmt: skip
    outcomes = await asyncio.gather(
        *(states.consume(state, ("discord",), NOW + timedelta(seconds=n)) for n in range(4))
    )
    assert sorted(outcome for outcome, _ in outcomes) == ["ok", "used", "used", "used"]
    assert {found for _, found in outcomes} == {
        OAuthState("discord", GUILD, MEMBER, "en", NOW + TTL)
    }


@part("oauth")
async def test_outstanding_counts_states_neither_used_nor_expired(store: Store) -> None:
    states = store.oauth
    assert await states.outstanding("linked_roles", NOW) == 0
    first = await states.create(kind="linked_roles", guild_id=None, user_id=None, language="en",
                                now=NOW)  # fmt: skip
    await states.create(kind="linked_roles", guild_id=None, user_id=None, language="en",
                        now=NOW + timedelta(minutes=5))  # fmt: skip
    await states.create(kind="discord", guild_id=GUILD, user_id=MEMBER, language="en", now=NOW)
    assert await states.outstanding("linked_roles", NOW) == 2
    assert await states.outstanding("discord", NOW) == 1
    assert await states.outstanding("steam", NOW) == 0
    assert (await states.consume(first, ("linked_roles",), NOW))[0] == "ok"
    assert await states.outstanding("linked_roles", NOW) == 1  # used
    assert await states.outstanding("discord", NOW + TTL - timedelta(microseconds=1)) == 1
    assert await states.outstanding("discord", NOW + TTL) == 0  # expired
    assert await states.outstanding("linked_roles", NOW + TTL) == 1  # made five minutes later
    assert await states.outstanding("linked_roles", NOW + TTL + timedelta(minutes=5)) == 0


@part("oauth")
async def test_a_nonce_is_fresh_once_per_endpoint(store: Store) -> None:
    states = store.oauth
    until = NOW + timedelta(hours=1)
    nonce = "2025-03-01T12:00:00Zabc"
    endpoint = "https://steamcommunity.com/openid/login"
    assert await states.remember_nonce(endpoint, nonce, until) is True
    assert await states.remember_nonce(endpoint, nonce, until) is False  # a replay
    assert await states.remember_nonce(endpoint, nonce, until + timedelta(hours=1)) is False
    assert await states.remember_nonce(endpoint, nonce + "d", until) is True
    assert await states.remember_nonce("https://other.example/openid", nonce, until) is True
    again = await asyncio.gather(*(states.remember_nonce(endpoint, "n2", until) for _ in range(3)))
    assert sorted(again) == [False, False, True]


# --------------------------------------------------------------------------- tokens


def tokens(
    user_id: int,
    expires_in: timedelta = timedelta(days=7),
    *,
    locale: str | None = None,
    username: str | None = None,
) -> StoredTokens:
    return StoredTokens(
        user_id=user_id, access_token=f"sealed-a-{user_id}", refresh_token=f"sealed-r-{user_id}",
        scope="identify role_connections.write", expires_at=NOW + expires_in, locale=locale,
        username=username,
    )  # fmt: skip


@part("tokens")
async def test_tokens_are_saved_and_replaced_keeping_what_discord_did_not_say(
    store: Store,
) -> None:
    saved = tokens(MEMBER, locale="ru", username="alice")
    assert await store.tokens.get(MEMBER) is None
    await store.tokens.save(saved, NOW)
    got = await store.tokens.get(MEMBER)
    assert got == StoredTokens(
        MEMBER, "sealed-a-4000000000000000201", "sealed-r-4000000000000000201",
        "identify role_connections.write", NOW + timedelta(days=7), "ru", "alice",
        None, None, NOW,  # a push of the role connection is due now
    )  # fmt: skip
    assert got is not None and got.expires_at.utcoffset() == timedelta(0)
    values = json.dumps({"hours_total": "12"}, sort_keys=True)
    await store.tokens.pushed(MEMBER, values, NOW, NOW + timedelta(days=1))
    later = NOW + timedelta(hours=2)
    again = StoredTokens(MEMBER, "a2", "r2", "identify", NOW + timedelta(days=8))
    await store.tokens.save(again, later)  # no locale, no username this time: both kept
    got = await store.tokens.get(MEMBER)
    assert got == StoredTokens(MEMBER, "a2", "r2", "identify", NOW + timedelta(days=8), "ru",
                               "alice", values, NOW, later)  # fmt: skip
    await store.tokens.save(
        StoredTokens(MEMBER, "a3", "r3", "identify", NOW, locale="en-US", username="Alice"), later
    )
    got = await store.tokens.get(MEMBER)
    assert got is not None and (got.locale, got.username, got.access_token) == (
        "en-US", "Alice", "a3",
    )  # fmt: skip
    assert await store.tokens.get(MEMBER + 1) is None


@part("tokens")
async def test_a_refresh_replaces_tokens_only_while_they_are_stored(store: Store) -> None:
    later = NOW + timedelta(hours=1)
    fresh = StoredTokens(MEMBER, "new-a", "new-r", "identify", later + timedelta(days=7))
    assert await store.tokens.refreshed(fresh, later) is False  # forgotten meanwhile
    assert await store.tokens.get(MEMBER) is None  # nothing brought back
    await store.tokens.save(tokens(MEMBER, locale="ru", username="alice"), NOW)
    await store.tokens.pushed(MEMBER, '{"a": "1"}', NOW, None)
    assert await store.tokens.refreshed(fresh, later) is True
    assert await store.tokens.get(MEMBER) == StoredTokens(
        MEMBER, "new-a", "new-r", "identify", later + timedelta(days=7), "ru", "alice",
        '{"a": "1"}', NOW, later,
    )  # fmt: skip
    assert await store.tokens.drop(MEMBER) is True
    assert await store.tokens.drop(MEMBER) is False
    assert await store.tokens.get(MEMBER) is None
    assert await store.tokens.refreshed(fresh, later) is False
    assert await store.tokens.get(MEMBER) is None


@part("tokens")
async def test_pushed_values_read_back_as_they_were_written(store: Store) -> None:
    await store.tokens.save(tokens(MEMBER), NOW)
    # The pusher's form: keys sorted, json.dumps' spacing, non-ASCII escaped.
    values = json.dumps(
        {"steam_verified": "1", "hours_total": "1200", "hours_30d": "4", "b": "ё",
         "last_played": "2025-03-01T12:00:00Z", "a_long_key": "x"},
        sort_keys=True,
    )  # fmt: skip
    await store.tokens.pushed(MEMBER, values, NOW, None)
    got = await store.tokens.get(MEMBER)
    assert got is not None and got.pushed_values == values
    assert (got.pushed_at, got.push_due_at) == (NOW, None)
    [connected] = await store.tokens.connected()
    assert connected.pushed_values == values
    await store.tokens.pushed(MEMBER, "{}", NOW + timedelta(minutes=10), NOW + timedelta(days=1))
    got = await store.tokens.get(MEMBER)
    assert got is not None
    assert (got.pushed_values, got.pushed_at, got.push_due_at) == (
        "{}", NOW + timedelta(minutes=10), NOW + timedelta(days=1),
    )  # fmt: skip
    await store.tokens.pushed(MEMBER + 1, "{}", NOW, None)  # no such member: nothing made
    assert await store.tokens.get(MEMBER + 1) is None


@part("tokens")
async def test_due_pushes_oldest_first_and_postponed_ones_wait(store: Store) -> None:
    users = [MEMBER + n for n in range(5)]
    for user in reversed(users):
        await store.tokens.save(tokens(user), NOW)
    for user in users:  # all pushed: nothing due until the next push is
        await store.tokens.pushed(user, "{}", NOW, None)
    assert await store.tokens.due(NOW + timedelta(days=365), 10) == []
    await store.tokens.postpone(users[3], NOW + timedelta(minutes=1))
    await store.tokens.postpone(users[1], NOW + timedelta(minutes=3))
    await store.tokens.postpone(users[4], NOW + timedelta(minutes=2))
    await store.tokens.postpone(users[0], NOW + timedelta(minutes=2))  # a tie: member order

    async def due(at: timedelta, limit: int = 10) -> list[int]:
        return [t.user_id for t in await store.tokens.due(NOW + at, limit)]

    assert await due(timedelta(0)) == []
    assert await due(timedelta(minutes=1)) == [users[3]]  # due at exactly now
    assert await due(timedelta(minutes=2)) == [users[3], users[0], users[4]]
    assert await due(timedelta(hours=1)) == [users[3], users[0], users[4], users[1]]
    assert await due(timedelta(hours=1), 2) == [users[3], users[0]]
    assert await due(timedelta(hours=1), 0) == []
    [first] = await store.tokens.due(NOW + timedelta(hours=1), 1)
    assert first.push_due_at == NOW + timedelta(minutes=1) and first.access_token.startswith("s")
    await store.tokens.postpone(users[3], NOW + timedelta(days=1))
    assert await due(timedelta(minutes=1)) == []


@part("tokens")
async def test_mark_due_brings_pushes_forward_and_keeps_sooner_ones(store: Store) -> None:
    a, b, c, d = (MEMBER + n for n in range(4))
    for user in (a, b, c, d):
        await store.tokens.save(tokens(user), NOW)
    await store.tokens.pushed(a, "{}", NOW, None)  # nothing due
    await store.tokens.pushed(b, "{}", NOW, NOW + timedelta(hours=5))  # due later
    await store.tokens.pushed(c, "{}", NOW, NOW + timedelta(minutes=1))  # due sooner
    at = NOW + timedelta(minutes=30)
    assert await store.tokens.mark_due([], at) == 0
    assert await store.tokens.mark_due([a, b, c, a, 1, 2], at) == 2  # a twice; 1, 2 unknown
    due = {t.user_id: t.push_due_at for t in await store.tokens.connected()}
    assert due == {a: at, b: at, c: NOW + timedelta(minutes=1), d: NOW}
    assert await store.tokens.mark_due((a, b, c, d), at) == 0  # all as soon or sooner already
    assert await store.tokens.mark_due([d], NOW - timedelta(seconds=1)) == 1


@part("tokens")
async def test_expiring_pages_through_tokens_soonest_first(store: Store) -> None:
    hours = {MEMBER + 1: 5, MEMBER + 2: 1, MEMBER + 3: 3, MEMBER + 4: 3, MEMBER + 5: 3,
             MEMBER: 9, MEMBER + 6: 2}  # fmt: skip
    for user, expires in hours.items():
        await store.tokens.save(tokens(user, timedelta(hours=expires)), NOW)
    before = NOW + timedelta(hours=5)  # strictly before: MEMBER + 1 and MEMBER are not yet
    order = [MEMBER + 2, MEMBER + 6, MEMBER + 3, MEMBER + 4, MEMBER + 5]
    everything = await store.tokens.expiring(before, 100)
    assert [t.user_id for t in everything] == order
    assert [t.expires_at for t in everything] == [NOW + timedelta(hours=hours[u]) for u in order]
    pages: list[list[int]] = []
    after = None
    while True:
        page = await store.tokens.expiring(before, 2, after)
        if not page:
            break
        pages.append([t.user_id for t in page])
        after = (page[-1].expires_at, page[-1].user_id)
    assert pages == [order[:2], order[2:4], order[4:]]  # a tie of expiry split across pages
    assert await store.tokens.expiring(NOW + timedelta(hours=1), 10) == []
    assert await store.tokens.expiring(before, 0) == []
    tail = await store.tokens.expiring(NOW + timedelta(days=1), 10, (NOW + timedelta(hours=5), 0))
    assert [t.user_id for t in tail] == [MEMBER + 1, MEMBER]


@part("tokens")
async def test_connected_lists_every_member_with_tokens(store: Store) -> None:
    assert await store.tokens.connected() == []
    for user in (MEMBER + 2, MEMBER, MEMBER + 9):
        await store.tokens.save(tokens(user, username=f"u{user}"), NOW)
    await store.tokens.drop(MEMBER + 2)
    found = sorted(await store.tokens.connected(), key=lambda t: t.user_id)
    assert [(t.user_id, t.username, t.push_due_at) for t in found] == [
        (MEMBER, f"u{MEMBER}", NOW), (MEMBER + 9, f"u{MEMBER + 9}", NOW),
    ]  # fmt: skip
    assert found[0] == await store.tokens.get(MEMBER)
