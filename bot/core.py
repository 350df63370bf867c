"""The core services, built once by ``main()`` and handed to the web app (and later the bot)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.actions import ActionWorker
from bot.clock import Clock, SystemClock
from bot.config import SHARED_KEY_REQUIRED, Config, ConfigError
from bot.identity import IdentityService, oauth_client
from bot.identity.roles import RoleConnections
from bot.ingest.endpoint_cache import EndpointCache
from bot.ingest.pipeline import Pipeline
from bot.leadership import InstanceJobs, Job
from bot.metrics import Metrics
from bot.presence import PresenceTracker
from bot.privacy import PrivacyService
from bot.pruning import Pruner
from bot.rewards import RewardService
from bot.scheduler import Scheduler
from bot.services.accounts import AccountService, ConfirmStatus
from bot.services.console_admin import ConsoleAdmin
from bot.services.endpoint_admin import EndpointAdmin
from bot.services.feed_admin import FeedAdmin
from bot.services.get_playtime import PlaytimeService
from bot.services.leaderboards import PlaytimeStats, period_days
from bot.services.squad_admins import SquadAdminLists
from bot.steam_sync.budget import LOOKUP, SYNC, DatabaseBudget, Shares, collect_budget
from bot.steam_sync.sync import SteamSync
from bot.storage import Endpoint, Store, open_store
from bot.storage.interface import Observer
from bot.storage.records import RetentionPolicy
from bot.vault import Vault
from connectors.base import LinkConfirmation, RouteSpec
from connectors.rcon import ConsoleActions, RconPool
from connectors.registry import Registry
from connectors.steam import SteamClient, SteamError, SteamOpenID

log = logging.getLogger(__name__)


async def _outbox_gauges(store: Store) -> dict[str, float]:
    counts = await store.feed.counts()
    return {
        "questlog_outbox_pending": counts["pending"],
        "questlog_outbox_failed": counts["failed"],
        "questlog_feed_channels_paused": counts["paused_channels"],
    }


@dataclass
class Core:
    config: Config
    clock: Clock
    store: Store
    metrics: Metrics
    registry: Registry
    pipeline: Pipeline
    endpoints: EndpointCache
    endpoint_admin: EndpointAdmin
    accounts: AccountService
    stats: PlaytimeStats
    feed_admin: FeedAdmin
    steam: SteamClient
    shares: Shares
    playtime: PlaytimeService
    steam_sync: SteamSync
    scheduler: Scheduler
    pruner: Pruner
    actions: ActionWorker
    identity: IdentityService
    privacy: PrivacyService
    rewards: RewardService
    consoles: ConsoleAdmin
    rcon: RconPool
    squad_lists: SquadAdminLists
    roles: RoleConnections | None = None
    #: The Steam sync, pruning, the daily reward check and Linked Roles: run by the one
    #: process of the instance that holds its instance lock (bot/leadership).
    instance_jobs: InstanceJobs | None = None
    presence: PresenceTracker | None = None  # [presence] enabled: started with the bot
    discord_state: str = "disabled"  # disabled (web-only) | connecting | connected | disconnected
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    async def start(cls, config: Config, clock: Clock | None = None) -> Core:
        clock = clock or SystemClock()
        if config.database.url and not config.security.secret_key:
            raise ConfigError(SHARED_KEY_REQUIRED)
        store = await open_store(
            config.database.path,
            url=config.database.url,
            synchronous=config.database.synchronous,
        )
        try:
            metrics = Metrics()
            registry = Registry().discover()
            registry.configure(
                {name: section.as_dict() for name, section in config.connectors.items()}
            )
            pipeline = Pipeline(
                store, registry, clock, metrics, milestone_hours=config.general.milestone_hours
            )
            endpoints = EndpointCache(store, clock)
            await endpoints.start()
            endpoint_admin = EndpointAdmin(store, clock, registry.endpoint_kinds())
            shares = Shares.split(config.steam.daily_call_limit, config.steam.sync_share)
            # One client, paced once, for every caller; the sync and the lookups each take
            # their calls from their own share of the day.
            steam = SteamClient(
                config.steam.api_key,
                base_url=config.steam.api_base_url,
                budget=DatabaseBudget(store, clock, shares.sync, SYNC),
                timeout=config.steam.timeout_seconds,
                requests_per_second=config.steam.requests_per_second,
                backoff_base=config.steam.retry_backoff_seconds,
            )
            lookups = steam.with_budget(DatabaseBudget(store, clock, shares.lookup, LOOKUP))
            playtime = PlaytimeService(
                store,
                lookups,
                clock,
                concurrency=config.steam.max_concurrency,
                per_endpoint_per_day=config.steam.lookups_per_endpoint_per_day,
            )

            def wake_feed() -> None:
                if pipeline.on_event is not None:
                    pipeline.on_event()

            steam_sync = SteamSync(
                store,
                steam,
                clock,
                metrics,
                interval=config.steam.sync_interval_seconds,
                shares=shares,
                tz=config.general.tz,
                concurrency=config.steam.max_concurrency,
                enabled=config.steam.sync_enabled,
                sync_now_cooldown=config.steam.sync_now_cooldown_seconds,
                observer=Observer(registry.get("steam"), pipeline.policy),
                on_event=wake_feed,
            )
            scheduler = Scheduler(registry, {"steam": steam_sync})
            accounts = AccountService(store, lookups, clock, scheduler.links_changed)
            stats = PlaytimeStats(store, config.general.tz)
            await stats.prepare()  # before serving: a changed time zone rebuilds the days once
            feed_admin = FeedAdmin(
                store, clock, wake_feed, pipeline.announce, pipeline.policy.off_by_default
            )
            pruner = Pruner(
                store,
                clock,
                RetentionPolicy(
                    raw_payload_days=config.database.raw_payload_days,
                    feed_history_days=config.database.feed_history_days,
                    timezone=config.general.timezone,
                ),
            )
            playtime.growth = steam_sync.growth
            playtime.key_refused = lambda: steam_sync.key_refused
            playtime.on_key_refused = steam_sync.report_refused_key
            playtime.on_events = wake_feed

            async def steam_name(steam_id: str) -> str | None:
                try:
                    found = (await lookups.get_player_summaries([steam_id])).get(steam_id)
                except SteamError:
                    return None
                return found.persona_name if found is not None else None

            oauth = oauth_client(config)
            identity = IdentityService(
                config,
                clock,
                store,
                metrics,
                vault=lambda: Vault.from_config(config),
                oauth=oauth,
                openid=SteamOpenID(config.steam.openid_url),
                steam_name=steam_name,
                on_links_changed=scheduler.links_changed,
            )
            roles = None
            if oauth is not None:
                identity.vault()  # the key file, with its warning, on the first run
                if config.linked_roles.guild_id:
                    tz = config.general.tz

                    def last_30_days(now: datetime) -> tuple[str, str]:
                        first, last = period_days("30d", now, tz) or (now.date(), now.date())
                        return first.isoformat(), last.isoformat()

                    roles = RoleConnections(
                        config, clock, store, oauth, identity.vault(), days_of=last_30_days
                    )
                    identity.on_connected = roles.push_now
            actions = ActionWorker(store, registry, clock)
            consoles = ConsoleAdmin(store, clock, endpoint_admin, identity.vault)
            rcon = RconPool()  # one kept connection per game server console
            for key in registry.keys():
                connector = registry.get(key)
                if isinstance(connector, ConsoleActions):
                    connector.use_consoles(consoles.target, rcon)
            pipeline.on_actions = actions.wake
            rewards = RewardService(store, clock, config.general.tz, wake=actions.wake)
            privacy = PrivacyService(
                store,
                clock,
                vault=identity.vault,
                oauth=oauth,
                linked_roles_guild=config.linked_roles.guild_id,
                on_links_changed=scheduler.links_changed,
            )
        except BaseException:
            await store.close()
            raise
        core = cls(
            config,
            clock,
            store,
            metrics,
            registry,
            pipeline,
            endpoints,
            endpoint_admin,
            accounts,
            stats,
            feed_admin,
            steam,
            shares,
            playtime,
            steam_sync,
            scheduler,
            pruner,
            actions,
            identity,
            privacy,
            rewards,
            consoles,
            rcon,
            SquadAdminLists(store, clock),
            roles,
        )
        jobs: list[tuple[str, Job]] = [
            ("the Steam sync", scheduler), ("pruning", pruner), ("the daily reward check", rewards),
        ]  # fmt: skip
        if roles is not None:
            jobs.append(("the Linked Roles updates", roles))
        core.instance_jobs = InstanceJobs(store.instance_lock("instance-jobs"), jobs)
        if config.presence.enabled:
            core.presence = PresenceTracker(store, pipeline, clock, config.presence)
            privacy.presence = core.presence
        metrics.add_collector(lambda: collect_budget(store, clock, shares))
        metrics.add_collector(lambda: _outbox_gauges(store))
        metrics.add_collector(core._store_stats)
        return core

    async def _store_stats(self) -> dict[str, float]:
        jobs = self.instance_jobs
        return {
            **self.store.write_stats(),
            "questlog_discord_connected": 1 if self.discord_state == "connected" else 0,
            "questlog_instance_jobs_here": 1 if jobs and jobs.leading else 0,
        }

    async def stop(self) -> None:
        """Stop background work and close the database (its thread must exit, or the process
        would outlive SIGTERM)."""
        try:
            if self.instance_jobs is not None:
                await self.instance_jobs.stop()  # and gives the instance lock up
            await self.endpoints.stop()
            await self.pruner.stop()
            await self.rewards.stop()
            await self.actions.stop()
            await self.rcon.close()
            if self.roles is not None:
                await self.roles.stop()
            if self.presence is not None:
                await self.presence.stop()  # what the open sessions added is written
            await self.scheduler.stop()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            await self.playtime.close()
            await self.steam.aclose()
            await self.identity.aclose()
        finally:
            await self.store.close()

    async def confirm_link(
        self, endpoint: Endpoint, source: str, confirmation: LinkConfirmation
    ) -> ConfirmStatus:
        status = await self.accounts.confirm_code(
            guild_id=endpoint.guild_id,
            source=self.registry.get(source).link_source or source,
            code=confirmation.code,
            external_id=confirmation.external_id,
            display_name=confirmation.display_name,
        )
        self.metrics.inc("questlog_link_confirm_total", status=status)
        return status

    def routes(self) -> list[tuple[str, str, RouteSpec]]:
        """(connector key, endpoint kind, route) of every HTTP route the web server serves."""
        return self.registry.routes()

    async def accept(
        self,
        source: str,
        endpoint: Endpoint,
        raw: dict[str, Any],
        received_at: datetime,
        timestamped: bool = False,
    ) -> tuple[str, bool | None]:
        """A verified, validated delivery for one of ``source``'s endpoints: stored by the
        ingest path, or, when it confirms a link code typed in game, the link confirmed.
        Returns the reply's status and whether a playtime report changed the stored total."""
        confirmation = self.registry.get(source).link_confirmation(raw)
        if confirmation is not None:
            return await self.confirm_link(endpoint, source, confirmation), None
        result = await self.pipeline.ingest(
            source,
            endpoint.guild_id,
            raw,
            endpoint_id=endpoint.id,
            received_at=received_at,
            timestamped=timestamped,
        )
        if result.status == "accepted" and "playtime_updated" in result.details:
            return result.status, bool(result.details["playtime_updated"])
        return result.status, None

    def touch(self, endpoint: Endpoint) -> None:
        """Record last use (at most once a minute per endpoint; never delays the reply)."""
        if not self.endpoints.should_touch(endpoint):
            return
        task = asyncio.create_task(self.store.endpoints.touch(endpoint.id, self.clock.now()))
        self._background.add(task)
        task.add_done_callback(self._touched)

    def _touched(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record endpoint use: %s", task.exception())
