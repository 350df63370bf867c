"""The feed poster: drains each channel's outbox into Discord messages, exactly once.

Every channel with work gets a worker of its own, so a long backlog, a slow answer or a long
``retry_after`` in one channel never holds up another. A worker repeats, in order:

1. If the channel has a stored, unsent batch, send it again unchanged (same nonce). Otherwise
   take the oldest pending events that fit one message (10 embeds, 6,000 characters), store the
   batch and attach the events to it in one transaction, *then* send it.
2. Send it with ``nonce`` = the batch's nonce (discord.py >= 2.5 adds ``enforce_nonce``) and no
   mentions allowed. Discord returns the message it already created for a nonce it saw in the
   last few minutes, so a resend after a lost response does not post twice.
3. Answer: the batch and its events are marked sent with the message id. A 5xx, a timeout or a
   connection error keeps them pending and backs off with jitter (429s are handled inside
   discord.py, which waits ``retry_after``). A refusal of the channel itself (403 Missing Access
   or Missing Permissions, 404 Unknown Channel, any other 400 such as 50008) **pauses** the
   channel: nothing is failed, the events wait in order, and the channel is probed (below). A
   400 Invalid Form Body (50035) that names ``embeds.N`` fails just those events with Discord's
   message and re-batches the rest (a batch without an index is split in halves, down to the one
   event at fault), so one bad embed never takes its batch down.

A paused channel (Missing Access, Missing Permissions, other 400s) is probed with backoff from
1 minute doubling to 1 hour, jittered: a probe is the channel's next step as it is (its oldest
stored batch with its stored nonce, unchanged, or the edit that was refused), never a test
message. When Discord accepts it the channel resumes by itself. A deleted channel (Unknown
Channel) is not probed; it waits for ``/feed channel``. Picking a channel (``set_feed_channel``)
resumes it at once; when it is another channel, the backlog moves there in the same
transaction, ahead of anything new: unsent batches are split back into their events, which are
re-batched with new nonces for the new channel. A send in flight to the old channel that Discord
then accepts marks its events posted there (unless the new channel has taken them already).

Events that share an ``update_key`` (ActivityEvent) are versions of one feed item. A version
not yet posted is superseded by a newer one when that is stored (bot/ingest/pipeline.py); a version that
follows a posted one edits that message instead: the stored batch payload gets the new embed in
its place and the whole message is sent with PATCH, which can be repeated safely. A deleted
message makes the version a new post; the edit keeps the channel's order.

The poster is woken in-process when the pipeline stores an event, and also polls, so events
written by another process (the CLI, a second instance) are posted too. Requests are paced
below Discord's global 50 per second. Restarting resumes from the database: nothing lives only
in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from bot.clock import Clock, to_iso
from bot.feed.embeds import CHARS_PER_MESSAGE, build_embed, embed_length, pack
from bot.i18n import language as feed_language
from bot.i18n import texts
from bot.storage import Store
from bot.storage.interface import Refusal
from bot.storage.records import Batch, Edit
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

RENEW_SECONDS = 5.0  # a quarter of the feed lease (bot/storage/postgres/pg_outbox.py)

# Discord's JSON error codes the poster acts on.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
CANNOT_SEND_HERE = 50008
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035

#: What a paused channel's refusal means, worded from Discord's code.
PAUSE_REASONS = {
    MISSING_ACCESS: "Questlog cannot see the channel, or it is no longer in the server"
    " (Missing Access)",
    MISSING_PERMISSIONS: "Questlog lacks Send Messages or Embed Links in the channel"
    " (Missing Permissions)",
    UNKNOWN_CHANNEL: "the channel was deleted (Unknown Channel)",
    CANNOT_SEND_HERE: "Discord does not allow messages in this kind of channel",
}


def pause_reason(code: int | None, detail: str | None = None) -> str:
    """A paused channel's reason in words, from Discord's code (or its message for others)."""
    if code in PAUSE_REASONS:
        return PAUSE_REASONS[code]  # type: ignore[index]
    return f"Discord refused the channel ({detail or f'error {code}'})"


def probed(code: int | None) -> bool:
    """Whether a channel paused for this code is probed (a deleted one is not)."""
    return code != UNKNOWN_CHANNEL


Failure = Literal["retry", "refused", "invalid", "message_gone"]


class SendError(Exception):
    """A send or edit failed, classified for the poster:

    * ``retry``: try the same batch again later (5xx, timeout, lost answer); ``maybe_posted``
      when Discord may have made the message although no answer came;
    * ``refused``: Discord refused the channel (``code``: 50001, 50013, 10003, 50008, ...);
    * ``invalid``: Discord refused the message body (50035); ``embeds`` maps the index of each
      refused embed to Discord's message (empty when Discord named none);
    * ``message_gone``: the message an edit is for was deleted (the channel is fine).
    """

    def __init__(
        self,
        reason: str,
        *,
        failure: Failure = "retry",
        code: int = 0,
        embeds: Mapping[int, str] | None = None,
        maybe_posted: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure
        self.code = code
        self.embeds: dict[int, str] = dict(embeds or {})
        self.maybe_posted = maybe_posted

    @classmethod
    def retry(cls, reason: str, *, maybe_posted: bool = False) -> SendError:
        return cls(reason, failure="retry", maybe_posted=maybe_posted)

    @classmethod
    def refused(cls, code: int, reason: str) -> SendError:
        return cls(reason, failure="refused", code=code)

    @classmethod
    def invalid(cls, reason: str, embeds: Mapping[int, str] | None = None) -> SendError:
        return cls(reason, failure="invalid", code=INVALID_FORM_BODY, embeds=embeds)

    @classmethod
    def message_gone(cls, reason: str) -> SendError:
        return cls(reason, failure="message_gone", code=UNKNOWN_MESSAGE)


class Sender(Protocol):
    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        """Post the message; returns its id. Raises SendError."""
        ...

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None: ...


class _Embeds:
    """How stored events become a message: bot/feed/embeds.py, handed to the store."""

    @staticmethod
    def embed(
        event: Mapping[str, Any], language: tuple[str | None, str | None] = (None, None)
    ) -> dict[str, Any]:
        """In the feed language chosen for the guild, else its Discord server's primary
        language when Questlog speaks it, else English."""
        return build_embed(event, texts(feed_language(*language)))

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return pack(embeds)

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return sum(embed_length(e) for e in embeds) <= CHARS_PER_MESSAGE


EMBEDS = _Embeds()


# --------------------------------------------------------------------------- the poster


@dataclass
class _Pacer:
    """Spaces requests at least ``1 / per_second`` apart, in the order they asked (Discord's
    global limit is 50 requests per second for a bot; the feed stays below it)."""

    per_second: float
    _next: float = field(default=0.0)

    async def wait(self) -> None:
        if self.per_second <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.per_second
        if slot > now:
            await asyncio.sleep(slot - now)


class FeedPoster:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: Sender | None = None,
        *,
        poll_seconds: float = 2.0,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        probe_first: float = 60.0,
        probe_max: float = 3600.0,
        requests_per_second: float = 40.0,
        min_dispatch_seconds: float = 0.05,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.probe_first = probe_first
        self.probe_max = probe_max
        self.min_dispatch_seconds = min_dispatch_seconds
        self._pacer = _Pacer(requests_per_second)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[int, asyncio.Task[int]] = {}  # one per channel with work
        self._generation = 0  # counts wake-ups; a worker that missed one looks again
        self._seen: dict[int, int] = {}  # channel -> generation its worker last looked at
        self._expired_at = -math.inf
        self.sent_messages = 0
        self.edited_messages = 0

    def wake(self) -> None:
        self._generation += 1
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="questlog-feed-poster")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                if started - self._expired_at >= self.poll_seconds:
                    self._expired_at = started
                    await self._expire()
                await self._dispatch()
            except Exception:
                log.exception("feed poster pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_seconds)
            self._wakeup.clear()
            # Wake-ups come with every stored event: look at most every min_dispatch_seconds.
            rest = self.min_dispatch_seconds - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def run_once(self) -> int:
        """Expire old events, start a worker for every due channel, and wait until every worker
        has run out of work. Returns the number of messages sent."""
        if self.sender is None:
            return 0
        await self._expire()
        await self._dispatch()
        results = await asyncio.gather(*self._workers.values(), return_exceptions=True)
        return sum(r for r in results if isinstance(r, int))

    async def _expire(self) -> None:
        now = to_iso(self.clock.now())
        expired = await self.store.feed.expire_old(now)
        if expired:
            log.info("feed: %d pending events expired", expired)

    async def _dispatch(self) -> None:
        """A worker for every channel with due work that has none yet."""
        if self.sender is None:
            return
        now = to_iso(self.clock.now())
        for channel in await self.store.feed.due_channels(now):
            if channel not in self._workers:
                task = asyncio.create_task(self._drain(channel), name=f"questlog-feed-{channel}")
                self._workers[channel] = task
                task.add_done_callback(lambda t, c=channel: self._worker_done(c, t))

    def _worker_done(self, channel: int, task: asyncio.Task[int]) -> None:
        if self._workers.get(channel) is task:
            del self._workers[channel]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("feed: the worker of channel %s failed: %r", channel, error)
        if self._seen.pop(channel, self._generation) != self._generation:
            self._wakeup.set()  # an event came while it was finishing: look again

    async def _drain(self, channel_id: int) -> int:
        sent = 0
        while True:
            sender = self.sender  # the bot may hand over a new client (or none) at any time
            if sender is None:
                return sent
            self._seen[channel_id] = self._generation
            now = to_iso(self.clock.now())
            work = await self.store.feed.next_work(channel_id, now, EMBEDS)
            if work is None:
                return sent
            await self._pacer.wait()
            if isinstance(work, Edit):
                async with self._leased(channel_id):
                    edited = await self._edit(sender, work)
                if not edited:
                    return sent
                continue
            try:
                async with self._leased(channel_id):
                    message_id = await sender.send(channel_id, work.payload, work.nonce)
            except Exception as exc:
                if not await self._send_failed(work, self._classify(exc, work)):
                    return sent
                continue
            await self.store.feed.mark_sent(work, message_id, to_iso(self.clock.now()))
            if work.probe:
                log.info("feed: channel %s takes messages again; posting resumes", channel_id)
            sent += 1
            self.sent_messages += 1

    @contextlib.asynccontextmanager
    async def _leased(self, channel_id: int) -> AsyncIterator[None]:
        """Renew this process's lease on the channel while its step is sent (several processes
        on PostgreSQL: a send held up by a long retry_after must not let another process take
        the channel and send the same batch meanwhile)."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(RENEW_SECONDS)
                try:
                    held = await self.store.feed.renew(channel_id, to_iso(self.clock.now()))
                except Exception as exc:  # the database away: the next renewal tries again
                    log.warning(
                        "feed: renewing the lease of channel %s failed: %s", channel_id, exc
                    )
                    continue
                if not held:
                    log.warning(
                        "feed: another process took channel %s over (this one was too slow);"
                        " the batch keeps its nonce, so Discord posts it once",
                        channel_id,
                    )
                    return

        task = asyncio.create_task(keep(), name=f"questlog-feed-lease-{channel_id}")
        try:
            yield
        finally:
            await cancel_task(task)

    @staticmethod
    def _classify(exc: Exception, work: Batch | Edit) -> SendError:
        if isinstance(exc, SendError):
            return exc
        # e.g. the HTTP session closing while the bot reconnects
        log.warning("feed: a request for channel %s failed unexpectedly: %r", work.channel_id, exc)
        return SendError.retry(f"unexpected error: {type(exc).__name__}", maybe_posted=True)

    def _backoff(self, attempts: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempts, 16))
        return delay * random.uniform(0.5, 1.5)

    def _probe_delay(self, code: int | None, probes: int) -> float | None:
        """1 minute, doubling to 1 hour, each within ±10 % so channels do not probe in step;
        None for a deleted channel (not probed)."""
        if not probed(code):
            return None
        delay = min(self.probe_max, self.probe_first * 2 ** min(probes, 16))
        return delay * random.uniform(0.9, 1.1)

    async def _pause(self, work: Batch | Edit, exc: SendError) -> None:
        """A refusal pauses the channel; a failed probe keeps it paused."""
        now = self.clock.now()
        retry_at = to_iso(now + timedelta(seconds=self._backoff(work.attempts)))
        refusal = Refusal(exc.failure == "refused", exc.code, exc.reason, exc.maybe_posted)
        paused, code, next_probe = await self.store.feed.pause(
            work, refusal, to_iso(now), self._probe_delay, retry_at
        )
        if not paused:
            log.warning(
                "feed: channel %s unavailable (%s); retrying at %s", work.channel_id, exc.reason,
                retry_at,
            )  # fmt: skip
        elif work.probe:
            log.info(
                "feed: channel %s still refuses (%s); next probe at %s",
                work.channel_id,
                exc.reason,
                next_probe or "never",
            )
        else:
            log.warning(
                "feed: channel %s paused: %s (%s); %s",
                work.channel_id,
                pause_reason(code, exc.reason),
                exc.reason,
                f"probing from {next_probe}" if next_probe else "waiting for /feed channel",
            )

    async def _send_failed(self, batch: Batch, exc: SendError) -> bool:
        """Record a failed send; True when the channel may go on at once."""
        now = self.clock.now()
        if exc.failure == "invalid":
            failed = await self.store.feed.isolate(batch, exc.embeds, exc.reason, to_iso(now))
            log.warning(
                "feed: Discord refused %d of the %d events of batch %s (%s); posting the rest",
                len(failed),
                len(batch.keys),
                batch.id,
                exc.reason,
            )
            return True
        if exc.failure == "refused" or batch.probe:
            await self._pause(batch, exc)
            return False
        delay = self._backoff(batch.attempts)
        retry_at = to_iso(now + timedelta(seconds=delay))
        log.warning(
            "feed: channel %s unavailable (%s); retrying batch %s in %.0f s",
            batch.channel_id,
            exc.reason,
            batch.id,
            delay,
        )
        await self.store.feed.mark_retry(batch, exc.reason, exc.maybe_posted, retry_at, to_iso(now))
        return False

    async def _edit(self, sender: Sender, edit: Edit) -> bool:
        """Edit a posted message with a newer version of one of its events; True when the
        channel may go on (edited, refused alone, or the message was deleted and the version
        will be posted)."""
        try:
            await sender.edit(edit.channel_id, edit.message_id, edit.payload)
        except Exception as raised:
            exc = self._classify(raised, edit)
            now = self.clock.now()
            if exc.failure == "message_gone":
                log.info(
                    "feed: message %s in channel %s was deleted; posting the update anew",
                    edit.message_id,
                    edit.channel_id,
                )
                await self.store.feed.mark_edit_gone(edit)
                return True
            if exc.failure == "invalid":
                log.warning(
                    "feed: Discord refused an update of message %s (%s)",
                    edit.message_id,
                    exc.reason,
                )
                message = exc.embeds.get(edit.embed_index) or exc.reason
                await self.store.feed.mark_edit_refused(edit, message, to_iso(now))
                return True
            if exc.failure == "refused" or edit.probe:
                await self._pause(edit, exc)
                return False
            retry_at = to_iso(now + timedelta(seconds=self._backoff(edit.attempts)))
            log.warning(
                "feed: editing message %s in channel %s failed (%s); retrying",
                edit.message_id,
                edit.channel_id,
                exc.reason,
            )
            await self.store.feed.mark_edit_retry(edit, exc.reason, retry_at, to_iso(now))
            return False
        await self.store.feed.mark_edited(edit, to_iso(self.clock.now()))
        if edit.probe:
            log.info("feed: channel %s takes messages again; posting resumes", edit.channel_id)
        self.edited_messages += 1
        return True
