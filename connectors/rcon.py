"""A small asyncio client for Valve's Source RCON protocol (Minecraft and Squad consoles).

Why not a library: the ``rcon`` package is archived, logs in again for every command and takes
the first packet it reads as the answer, which on Squad is often a chat line. This client keeps
one authenticated connection per server and reuses it, bounds the connect, the log-in and each
command with ``asyncio.timeout``, and reads until the packet that answers the request's id,
skipping what a server interleaves (Squad streams chat and admin messages as type-1 packets on
the same connection; a late answer to an earlier request carries another id).

A packet is a little-endian int32 size (of what follows), int32 id, int32 type, the body as a
null-terminated string, and one more null byte. Log-in is ``SERVERDATA_AUTH`` (3) with the
password; the server answers ``SERVERDATA_AUTH_RESPONSE`` (2) with the request's id, or id -1
for a wrong password (Source and Squad send an empty ``SERVERDATA_RESPONSE_VALUE`` first,
Minecraft does not). A command is ``SERVERDATA_EXECCOMMAND`` (2), answered by
``SERVERDATA_RESPONSE_VALUE`` (0) packets with its id. Only the first answer packet is read:
console actions (``say``, ``AdminBroadcast``) have one-line answers, and the rest of a longer
answer is skipped later as packets of an id no longer awaited.

Errors say whether the command may have reached the server (``sent``), which decides whether a
non-idempotent console action may be tried again. The password never appears in a message.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connectors.base import ActionFailed, ActionPaused, ActionRetry

AUTH = 3
AUTH_RESPONSE = 2
EXEC_COMMAND = 2
RESPONSE_VALUE = 0

#: Minecraft refuses a request body longer than 1446 bytes; Squad takes that much too.
MAX_COMMAND_BYTES = 1446
#: A packet larger than this is no RCON server's answer: the connection is dropped.
MAX_PACKET_BYTES = 1 << 20
_HEADER = struct.Struct("<iii")
_MIN_SIZE = 10  # id, type and the two null bytes of an empty body


class RconError(Exception):
    """The console did not carry out the command. ``sent``: bytes of the command may have
    reached the server (its outcome is then unknown). ``str()`` never holds the password."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class RconAuthFailed(RconError):
    """The server refused the password (an admin must fix the settings)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class RconUnavailable(RconError):
    """The server could not be reached or logged in to in time: nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


@dataclass(frozen=True)
class RconTarget:
    host: str
    port: int
    password: str = field(repr=False)


def encode_packet(request_id: int, kind: int, body: str) -> bytes:
    data = body.encode("utf-8")
    return _HEADER.pack(len(data) + _MIN_SIZE, request_id, kind) + data + b"\x00\x00"


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, str]:
    """(id, type, body) of the next packet; ConnectionError when the stream is not RCON."""
    size = struct.unpack("<i", await reader.readexactly(4))[0]
    if not _MIN_SIZE <= size <= MAX_PACKET_BYTES:
        raise ConnectionError(f"the server sent a packet of {size} bytes, which is not RCON")
    data = await reader.readexactly(size)
    request_id, kind = struct.unpack_from("<ii", data)
    body = data[8:-2] if data[-2:] == b"\x00\x00" else data[8:].rstrip(b"\x00")
    return request_id, kind, body.decode("utf-8", "replace")


class RconClient:
    """One server's console: a connection opened (and logged in to) on first use, kept, and
    opened again after it broke or a command timed out. Commands go one at a time."""

    def __init__(
        self,
        target: RconTarget,
        *,
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
    ) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._last_id = 0
        self.connections = 0  # opened so far (a test sees the connection reused)

    @property
    def where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def _next_id(self) -> int:
        # Small positive ids: some servers echo only the low byte, and -1 means "refused".
        self._last_id = self._last_id % 200 + 1
        return self._last_id

    async def command(self, text: str) -> str:
        """The server's answer to one console command. Raises RconError."""
        if "\x00" in text or len(text.encode("utf-8")) > MAX_COMMAND_BYTES:
            raise RconError(
                f"the command is longer than {MAX_COMMAND_BYTES} bytes or holds a null byte",
                sent=False,
            )
        async with self._lock:
            if self._stale():
                await self._close()
            if self._writer is None:
                await self._open()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            request_id = self._next_id()
            try:
                async with asyncio.timeout(self.command_timeout):
                    writer.write(encode_packet(request_id, EXEC_COMMAND, text))
                    await writer.drain()
                    while True:
                        got_id, kind, body = await read_packet(reader)
                        if got_id == request_id and kind == RESPONSE_VALUE:
                            return body
                        # anything else: chat, another request's late answer; skipped
            except TimeoutError:
                await self._close()  # a late answer must not be read as the next one's
                raise RconError(
                    f"{self.where} did not answer within {self.command_timeout:g} s", sent=True
                ) from None
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                await self._close()
                raise RconError(f"{self.where} dropped the connection ({exc})", sent=True) from None

    async def check(self) -> None:
        """Connect and log in now (when not already): what an admin's settings test does.
        Raises RconError."""
        async with self._lock:
            if self._stale():
                await self._close()
            if self._writer is None:
                await self._open()

    def _stale(self) -> bool:
        """The kept connection was closed by the server meanwhile (a restart): seen before
        anything is written on it, so nothing is sent into a dead socket."""
        if self._writer is None or self._reader is None:
            return False
        return self._writer.is_closing() or self._reader.at_eof()

    async def _open(self) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(self.target.host, self.target.port)
        except TimeoutError:
            raise RconUnavailable(
                f"{self.where} did not accept a connection within {self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise RconUnavailable(
                f"cannot connect to {self.where} ({exc.strerror or exc})"
            ) from None
        self._reader, self._writer = reader, writer
        self.connections += 1
        request_id = self._next_id()
        try:
            async with asyncio.timeout(self.connect_timeout):
                writer.write(encode_packet(request_id, AUTH, self.target.password))
                await writer.drain()
                while True:
                    got_id, kind, _ = await read_packet(reader)
                    if kind != AUTH_RESPONSE:
                        continue  # Source and Squad send an empty RESPONSE_VALUE first
                    if got_id == -1:
                        await self._close()
                        raise RconAuthFailed(f"{self.where} refused the RCON password")
                    if got_id == request_id:
                        return
        except TimeoutError:
            await self._close()
            raise RconUnavailable(
                f"{self.where} did not answer the RCON log-in within {self.connect_timeout:g} s"
            ) from None
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            # A server starting or stopping closes connections too: tried again later (a wrong
            # password is answered with id -1, which pauses the console instead).
            await self._close()
            raise RconUnavailable(f"{self.where} closed the connection at log-in ({exc})") from None

    async def _close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass

    async def close(self) -> None:
        async with self._lock:
            await self._close()


class RconPool:
    """One client per console (by endpoint), replaced when its settings change."""

    def __init__(self, *, connect_timeout: float = 5.0, command_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._clients: dict[int, RconClient] = {}

    async def command(self, key: int, target: RconTarget, text: str) -> str:
        client = self._clients.get(key)
        if client is not None and client.target != target:
            await client.close()
            client = None
        if client is None:
            client = self._clients[key] = RconClient(
                target,
                connect_timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
            )
        return await client.command(text)

    def client(self, key: int) -> RconClient | None:
        return self._clients.get(key)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


# --------------------------------------------------------------------------- console actions

#: Line breaks, other control characters and Unicode's own line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: A Minecraft formatting code: the section sign and the character it colours with.
_SECTION_CODE = re.compile("\u00a7.?", re.DOTALL)
_SPACES = re.compile(r"\s{2,}")


def one_line(text: str, *, max_len: int) -> str:
    """Text from outside (a name, a game) made one safe console line: line breaks and control
    characters become spaces, Minecraft colour codes go, runs of spaces shrink, and a text
    longer than ``max_len`` is cut with an ellipsis."""
    line = _CONTROL.sub(" ", _SECTION_CODE.sub("", text))
    line = _SPACES.sub(" ", line).strip()
    if len(line) > max_len:
        line = line[: max_len - 1].rstrip() + "\u2026"
    return line


#: Finds a console's settings by endpoint id (the core reads and decrypts them); None when the
#: endpoint has none any more.
ConsoleLookup = Callable[[int], Awaitable[RconTarget | None]]
_UNKNOWN_COMMAND = re.compile(r"^\s*unknown (or incomplete )?command", re.IGNORECASE)


class ConsoleActions:
    """For a connector whose actions are console commands sent over RCON: the core hands it
    how to find a console (``use_consoles``); ``send`` carries a command out and says what
    became of it in the action outbox's terms (connectors/base.py)."""

    consoles: ConsoleLookup | None = None
    rcon: RconPool | None = None

    def use_consoles(self, lookup: ConsoleLookup, pool: RconPool) -> None:
        self.consoles = lookup
        self.rcon = pool

    async def send(self, endpoint_id: int, command: str) -> str:
        if self.consoles is None or self.rcon is None:
            raise ActionRetry("no console access in this process yet", sent=False)
        target = await self.consoles(endpoint_id)
        if target is None:
            raise ActionFailed("the endpoint has no RCON settings any more (or is disabled)")
        try:
            answer = await self.rcon.command(endpoint_id, target, command)
        except RconAuthFailed as exc:
            raise ActionPaused(f"{exc}: set the password again with /webhook rcon") from None
        except RconError as exc:
            raise ActionRetry(str(exc), sent=exc.sent) from None
        if _UNKNOWN_COMMAND.match(answer):
            raise ActionFailed(f"the console refused the command: {one_line(answer, max_len=120)}")
        return answer
