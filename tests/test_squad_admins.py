"""The Squad reserved-slot list (issue 18): rewards that give a Squad group, served as
Admins.cfg at GET /squad/admins/<path>.cfg with ETag and Last-Modified (304 to a server that
has this version), only proven Steam ids when the guild requires verification, safe comments,
and 404 / 405 for what is not a list."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from bot.rewards import RewardRefused
from connectors.squad import admins_cfg
from tests.conftest import GUILD, OTHER_GUILD, MakeEndpoint
from tests.test_ingest import bm_raw

ALICE, BOB, CAROL = 4000000000000000601, 4000000000000000602, 4000000000000000603
ALICE_STEAM, BOB_STEAM, CAROL_STEAM = "76561198000000601", "76561198000000602", "76561198000000603"
H = 3600
HEADER = "// Questlog: groups earned by playtime. Generated; edits here are overwritten.\n"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


async def link(core: Core, user: int, steam_id: str, name: str, proven: bool = False) -> None:
    if proven:
        await core.store.links.verify(
            guild_id=GUILD, discord_user_id=user, accounts=[("steam", steam_id, name)],
            verified_by="openid", now=core.clock.now(),
        )  # fmt: skip
    else:
        await core.store.links.link(
            guild_id=GUILD, discord_user_id=user, source="steam", external_id=steam_id,
            now=core.clock.now(), display_name=name,
        )  # fmt: skip


async def played(core: Core, steam_id: str, hours: float, sig: str) -> None:
    core.clock.advance(1)  # type: ignore[attr-defined]
    raw = bm_raw(core, int(hours * H), sig=sig * 64, steam_id=steam_id)
    await core.pipeline.ingest("battlemetrics", GUILD, raw)


async def regulars(core: Core) -> None:
    """Alice 50 h, Bob 150 h, Carol 20 h of Squad; 10 h gives Regulars, 100 h Veterans."""
    await link(core, ALICE, ALICE_STEAM, "Alice", proven=True)
    await link(core, BOB, BOB_STEAM, 'Bob"}] // Admin=1:x\nAdmin')
    await link(core, CAROL, CAROL_STEAM, "Carol")
    for steam_id, hours, sig in ((ALICE_STEAM, 50, "a"), (BOB_STEAM, 150, "b"),
                                 (CAROL_STEAM, 20, "c")):  # fmt: skip
        await played(core, steam_id, hours, sig)
    await core.rewards.add(guild_id=GUILD, role_id=None, hours=10, squad_group="Regulars")
    await core.rewards.add(
        guild_id=GUILD, role_id=None, hours=100, squad_group="Veterans",
        squad_permissions="reserve, cameraman",
    )  # fmt: skip
    await core.rewards.check_guild(GUILD)


EXPECTED = (
    HEADER
    + "Group=Regulars:reserve\n"
    + "Group=Veterans:cameraman,reserve\n"
    + f"Admin={ALICE_STEAM}:Regulars // Alice\n"
    + f"Admin={BOB_STEAM}:Regulars // Bob  Admin1xAdmin\n"
    + f"Admin={BOB_STEAM}:Veterans // Bob  Admin1xAdmin\n"
    + f"Admin={CAROL_STEAM}:Regulars // Carol\n"
)


async def test_the_list_is_admins_cfg_with_every_member_holding_a_group(
    core: Core, client: TestClient, make_endpoint: MakeEndpoint
) -> None:
    await regulars(core)
    endpoint = await make_endpoint(kind="squad_admins")
    assert endpoint.secret is None
    response = await client.get(f"/squad/admins/{endpoint.path}.cfg")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.text() == EXPECTED
    assert await core.store.actions.status(GUILD, core.clock.now()) is not None
    queued = await core.store.engine.fetchone("SELECT count(*) FROM action_outbox")
    assert queued is not None and queued[0] == 0  # a reward without a role queues no role


async def test_a_poll_of_the_same_version_is_answered_304(
    core: Core, client: TestClient, make_endpoint: MakeEndpoint, clock: ManualClock
) -> None:
    await regulars(core)
    endpoint = await make_endpoint(kind="squad_admins")
    url = f"/squad/admins/{endpoint.path}.cfg"
    first = await client.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and modified == format_datetime(clock.now(), usegmt=True)
    clock.advance(60)
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b"" and again.headers["ETag"] == etag
    assert again.headers["Last-Modified"] == modified  # unchanged since the first poll
    since = await client.get(url, headers={"If-Modified-Since": modified})
    assert since.status == 304
    head = await client.head(url)
    assert head.status == 200 and head.headers["ETag"] == etag

    await link(core, 4000000000000000604, "76561198000000604", "Dave")
    await played(core, "76561198000000604", 12, "d")  # Dave earns Regulars by playing
    clock.advance(60)
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert "Admin=76561198000000604:Regulars // Dave" in await changed.text()
    assert changed.headers["Last-Modified"] != modified


async def test_only_proven_steam_ids_when_the_guild_requires_verification(
    core: Core, client: TestClient, make_endpoint: MakeEndpoint
) -> None:
    await regulars(core)
    await core.store.links.set_require_verified(GUILD, True, core.clock.now())
    endpoint = await make_endpoint(kind="squad_admins")
    text = await (await client.get(f"/squad/admins/{endpoint.path}.cfg")).text()
    assert ALICE_STEAM in text and BOB_STEAM not in text and CAROL_STEAM not in text


async def test_what_is_not_a_list_is_404_and_other_methods_405(
    core: Core, client: TestClient, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint(kind="squad_admins")
    playtime = await make_endpoint(kind="playtime")
    theirs = await make_endpoint(kind="squad_admins", guild_id=OTHER_GUILD)
    assert (await client.get("/squad/admins/not-a-real-path-at-all-00.cfg")).status == 404
    assert (await client.get(f"/squad/admins/{playtime.path}.cfg")).status == 404
    assert (await client.get(f"/squad/admins/{endpoint.path}")).status == 404
    assert (await client.get(f"/squad/admins/{endpoint.path}.cfg/")).status == 404
    refused = await client.post(f"/squad/admins/{endpoint.path}.cfg", data=b"x")
    assert refused.status == 405 and refused.headers["Allow"] == "GET, HEAD"
    assert (await client.get(f"/squad/admins/{theirs.path}.cfg")).status == 200
    await core.endpoint_admin.disable(endpoint.path)
    await core.endpoints.refresh()
    assert (await client.get(f"/squad/admins/{endpoint.path}.cfg")).status == 404


async def test_a_reward_can_give_a_role_and_a_group(core: Core) -> None:
    reward = await core.rewards.add(
        guild_id=GUILD, role_id=1400000000000000601, hours=10, squad_group="Regulars"
    )
    assert (reward.role_id, reward.squad_group, reward.squad_permissions) == (
        1400000000000000601, "Regulars", "reserve",
    )  # fmt: skip
    (listed,) = await core.rewards.rewards(GUILD)
    assert listed == reward


@pytest.mark.parametrize(
    ("options", "msgid"),
    [
        ({}, "rewards.refused.no_target"),
        ({"squad_group": "Reg ulars"}, "rewards.refused.squad_group"),
        ({"squad_group": "Regulars]\nGroup=x"}, "rewards.refused.squad_group"),
        ({"squad_permissions": "reserve"}, "rewards.refused.squad_permissions_alone"),
        (
            {"squad_group": "R", "squad_permissions": "reserve,godmode"},
            "rewards.refused.squad_permission",
        ),
    ],
)
async def test_a_squad_reward_is_checked(core: Core, options: dict[str, str], msgid: str) -> None:
    with pytest.raises(RewardRefused) as refused:
        await core.rewards.add(guild_id=GUILD, role_id=None, hours=10, **options)  # type: ignore[arg-type]
    assert refused.value.msgid == msgid
    assert await core.rewards.rewards(GUILD) == []


def test_the_list_leaves_out_what_is_not_well_formed() -> None:
    text = admins_cfg(
        {"Good": {"reserve", "nonsense"}, "bad name": {"reserve"}},
        [("76561198000000001", "Good", "ok §c\r\nname"), ("1234", "Good", None),
         ("76561198000000002", "bad name", None)],
    )  # fmt: skip
    assert text == HEADER + "Group=Good:reserve\nAdmin=76561198000000001:Good // ok cname\n"


def test_upgrading_to_0030_and_0031_keeps_rewards_and_adds_consoles() -> None:
    from bot.storage.engine import apply_migrations
    from bot.storage.rewards import guild_rewards
    from tests.conftest import database_at

    conn = database_at(29)
    conn.execute(
        "INSERT INTO rewards (guild_id, role_id, hours, created_at)"
        " VALUES (1, 1400000000000000001, 10, '2026-12-01T00:00:00.000000Z')"
    )
    assert apply_migrations(conn, up_to=31) == [30, 31]
    assert conn.execute("SELECT count(*) FROM endpoint_consoles").fetchone() == (0,)
    apply_migrations(conn)  # today's code reads today's schema
    (reward,) = guild_rewards(conn, 1)
    assert (reward.role_id, reward.squad_group, reward.squad_permissions) == (
        1400000000000000001, None, None,
    )  # fmt: skip
    assert conn.execute("SELECT count(*) FROM endpoint_consoles").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM squad_lists").fetchone() == (0,)
