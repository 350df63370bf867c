"""The Source RCON client against the fake server: log-in in both dialects, the connection kept
and reused, a wrong password, a server that accepts and never answers, interleaved chat
packets, answers with another id, and a connection dropped after the command arrived (sent)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.rcon import (
    RconAuthFailed,
    RconClient,
    RconError,
    RconPool,
    RconTarget,
    RconUnavailable,
    encode_packet,
)
from tests.fakes.rcon import FakeRcon

PASSWORD = "correct horse battery staple"


def client(server: FakeRcon, password: str = PASSWORD, timeout: float = 0.5) -> RconClient:
    target = RconTarget("127.0.0.1", server.port, password)
    return RconClient(target, connect_timeout=timeout, command_timeout=timeout)


@pytest.mark.parametrize("dialect", ["minecraft", "squad"])
async def test_one_connection_is_logged_in_once_and_reused(dialect: str) -> None:
    async with FakeRcon(PASSWORD, dialect=dialect) as server:
        console = client(server)
        command = "say hi" if dialect == "minecraft" else "AdminBroadcast hi"
        answers = [await console.command(command) for _ in range(3)]
        await console.close()
    assert answers == ([""] * 3 if dialect == "minecraft" else ["Message broadcasted"] * 3)
    assert server.commands == [command] * 3
    assert (server.connections, server.logins, console.connections) == (1, 1, 1)


async def test_a_wrong_password_is_refused_without_naming_it() -> None:
    async with FakeRcon(PASSWORD, dialect="squad") as server:
        console = client(server, password="hunter2")
        with pytest.raises(RconAuthFailed) as refused:
            await console.command("AdminBroadcast hi")
    assert refused.value.sent is False
    assert "hunter2" not in str(refused.value) and "hunter2" not in repr(console.target)
    assert server.commands == [] and server.failed_logins == 1


async def test_a_server_that_accepts_and_never_answers_times_out_before_anything_is_sent() -> None:
    async with FakeRcon(PASSWORD) as server:
        server.silent = True
        console = client(server, timeout=0.2)
        started = asyncio.get_running_loop().time()
        with pytest.raises(RconUnavailable) as unavailable:
            await console.command("say hi")
        elapsed = asyncio.get_running_loop().time() - started
    assert unavailable.value.sent is False  # only the log-in went out
    assert server.commands == [] and elapsed < 2


async def test_an_unanswered_command_may_have_been_sent_and_the_connection_is_renewed() -> None:
    async with FakeRcon(PASSWORD) as server:
        server.silent_commands = True
        console = client(server, timeout=0.2)
        with pytest.raises(RconError) as unanswered:
            await console.command("say first")
        assert unanswered.value.sent is True
        server.silent_commands = False
        assert await console.command("say second") == ""
        await console.close()
    assert server.commands == ["say first", "say second"]
    assert console.connections == 2  # a late answer to "first" can never be read as "second"'s


async def test_chat_and_answers_with_another_id_are_skipped() -> None:
    async with FakeRcon(PASSWORD, dialect="squad") as server:
        server.chat_before_answer = True
        server.wrong_id_first = True
        console = client(server)
        assert await console.command("AdminBroadcast hi") == "Message broadcasted"
        assert await console.command("AdminWarn 76561198000000001 hi") == "Warned player"
        await console.close()


async def test_a_dropped_connection_after_the_command_arrived_counts_as_sent() -> None:
    async with FakeRcon(PASSWORD) as server:
        server.drop_after_receive = 1
        console = client(server)
        with pytest.raises(RconError) as dropped:
            await console.command("say once")
        assert dropped.value.sent is True
        assert server.commands == ["say once"]
        await console.close()


async def test_a_connection_the_server_closed_is_opened_again_before_sending() -> None:
    async with FakeRcon(PASSWORD) as server:
        console = client(server)
        await console.command("say one")
        server.drop_connections()
        await asyncio.sleep(0.05)  # the client's loop sees the end of the stream
        assert await console.command("say two") == ""
        await console.close()
    assert server.commands == ["say one", "say two"] and console.connections == 2


async def test_nothing_listening_is_unavailable_and_nothing_was_sent() -> None:
    async with FakeRcon(PASSWORD) as server:
        port = server.port
    console = RconClient(RconTarget("127.0.0.1", port, PASSWORD), connect_timeout=0.5)
    with pytest.raises(RconUnavailable) as unavailable:
        await console.command("say hi")
    assert unavailable.value.sent is False


async def test_a_command_too_long_or_with_a_null_byte_is_refused_before_connecting() -> None:
    console = RconClient(RconTarget("127.0.0.1", 9, PASSWORD))
    for command in ("say " + "x" * 1500, "say a\x00b"):
        with pytest.raises(RconError) as refused:
            await console.command(command)
        assert refused.value.sent is False
    assert console.connections == 0


async def test_a_pool_replaces_a_client_whose_settings_changed() -> None:
    async with FakeRcon(PASSWORD) as server:
        pool = RconPool(connect_timeout=0.5, command_timeout=0.5)
        wrong = RconTarget("127.0.0.1", server.port, "old password")
        with pytest.raises(RconAuthFailed):
            await pool.command(7, wrong, "say hi")
        right = RconTarget("127.0.0.1", server.port, PASSWORD)
        assert await pool.command(7, right, "say hi") == ""
        assert await pool.command(7, right, "say again") == ""
        connections = pool.client(7).connections if pool.client(7) else 0
        await pool.close()
    assert server.commands == ["say hi", "say again"] and connections == 1


def test_packets_follow_the_source_layout() -> None:
    packet = encode_packet(5, 2, "say hi")
    assert packet == b"\x10\x00\x00\x00\x05\x00\x00\x00\x02\x00\x00\x00say hi\x00\x00"


async def test_a_server_closing_the_connection_at_log_in_is_tried_again_later() -> None:
    async with FakeRcon(PASSWORD) as server:
        server.close_at_login = True
        console = client(server)
        with pytest.raises(RconUnavailable) as closed:  # not a refused password: no pause
            await console.command("say hi")
        assert closed.value.sent is False
        server.close_at_login = False
        assert await console.command("say hi") == ""
        await console.close()
    assert server.commands == ["say hi"]
