"""A fake Source RCON server on 127.0.0.1 (random port), in the two dialects Questlog talks to.

    async with FakeRcon("pw", dialect="squad") as server:
        target = RconTarget("127.0.0.1", server.port, "pw")
        ...
        assert server.commands == ["AdminBroadcast Notch reached 100 h"]

Where it follows the real servers (Valve's Source RCON documentation; Squad's and Minecraft's
behaviour as their client authors describe it):

* log-in: a ``squad`` (and Source) server answers an empty RESPONSE_VALUE, then an
  AUTH_RESPONSE with the request's id, or -1 for a wrong password; a ``minecraft`` server sends
  only the AUTH_RESPONSE. An unauthenticated command closes the connection.
* commands are answered by one RESPONSE_VALUE with the request's id; Minecraft's answer to
  ``say`` is empty, Squad's to ``AdminBroadcast`` is "Message broadcasted".
* a ``squad`` server streams chat as type-1 packets with id 0 on the same connection:
  ``chat_before_answer`` puts one before every answer.

Faults: ``close_at_login`` (a server starting or stopping), ``silent`` (accepts connections, never answers anything), ``silent_commands``
(logs in, never answers a command), ``wrong_id_first`` (answers each command first with
another id), ``drop_after_receive`` (closes the connection after reading the next command,
before answering: the command was received). ``commands`` lists what reached the console.
"""

from __future__ import annotations

import asyncio
import struct
from types import TracebackType

AUTH, AUTH_RESPONSE, EXEC_COMMAND, RESPONSE_VALUE, CHAT = 3, 2, 2, 0, 1


def _packet(request_id: int, kind: int, body: str) -> bytes:
    data = body.encode("utf-8")
    return struct.pack("<iii", len(data) + 10, request_id, kind) + data + b"\x00\x00"


class FakeRcon:
    def __init__(self, password: str, *, dialect: str = "minecraft") -> None:
        assert dialect in ("minecraft", "squad")
        self.password = password
        self.dialect = dialect
        self.commands: list[str] = []
        self.logins = 0
        self.failed_logins = 0
        self.connections = 0
        self.silent = False
        self.silent_commands = False
        self.wrong_id_first = False
        self.chat_before_answer = False
        self.drop_after_receive = 0  # how many commands to drop the connection after
        self.close_at_login = False  # closes the connection instead of answering a log-in
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> FakeRcon:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_connections(self) -> None:
        """Close every open connection (a server restart as the client sees it)."""
        for writer in list(self._writers):
            writer.close()

    def answer(self, command: str) -> str:
        if self.dialect == "squad":
            if command.startswith(("AdminBroadcast ", "AdminWarn ")):
                return "Message broadcasted" if "Broadcast" in command else "Warned player"
            return f"Unknown command {command.split(' ')[0]}"
        if command.startswith(("say ", "tellraw ")):
            return ""
        if command.startswith("whitelist add "):
            return f"Added {command.rsplit(' ', 1)[-1]} to the whitelist"
        return "Unknown or incomplete command, see below for error"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        authed = False
        try:
            while True:
                size = struct.unpack("<i", await reader.readexactly(4))[0]
                data = await reader.readexactly(size)
                request_id, kind = struct.unpack_from("<ii", data)
                body = data[8:-2].decode("utf-8")
                if self.silent:
                    continue
                if kind == AUTH:
                    if self.close_at_login:
                        return
                    if self.dialect == "squad":
                        writer.write(_packet(request_id, RESPONSE_VALUE, ""))
                    if body == self.password:
                        authed = True
                        self.logins += 1
                        writer.write(_packet(request_id, AUTH_RESPONSE, ""))
                    else:
                        self.failed_logins += 1
                        writer.write(_packet(-1, AUTH_RESPONSE, ""))
                    await writer.drain()
                    continue
                if not authed:
                    return  # an unauthenticated request: the connection is closed
                self.commands.append(body)
                if self.drop_after_receive:
                    self.drop_after_receive -= 1
                    return
                if self.silent_commands:
                    continue
                if self.chat_before_answer:
                    writer.write(_packet(0, CHAT, "[ChatAll] [Online IDs:EOS: x steam: y] a: hi"))
                if self.wrong_id_first:
                    writer.write(_packet(request_id + 1000, RESPONSE_VALUE, "not yours"))
                writer.write(_packet(request_id, RESPONSE_VALUE, self.answer(body)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
