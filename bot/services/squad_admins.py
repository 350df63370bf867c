"""The Squad reserved-slot list a server polls (``GET /squad/admins/<path>.cfg``): the
admins.cfg text of a guild's Squad group rewards, with the ETag and Last-Modified that let a
poll every minute be answered 304 with nothing read twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.storage import Endpoint, Store
from connectors.squad import admins_cfg


@dataclass(frozen=True)
class AdminList:
    body: bytes
    etag: str  # quoted, as the header carries it
    last_modified: datetime


class SquadAdminLists:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def serve(self, endpoint: Endpoint) -> AdminList:
        groups, admins = await self.store.squad_lists.admins(endpoint.guild_id)
        body = admins_cfg(groups, admins).encode("ascii")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        changed = await self.store.squad_lists.changed_at(endpoint.id, etag, self.clock.now())
        return AdminList(body, etag, changed.replace(microsecond=0))
