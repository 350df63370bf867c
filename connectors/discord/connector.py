"""The Discord connector's declaration: verified identities through OAuth2 (no webhooks, no
sync of its own). Its keys live in the core's ``[discord]`` section, beside the bot token."""

from __future__ import annotations

from connectors.base import Capabilities, Connector, RateLimits


class DiscordConnector(Connector):
    key = "discord"
    name = "Discord"
    capabilities = Capabilities(
        requires_auth=True,
        # Role-connection updates: Discord's per-route limits apply; Questlog pushes a member's
        # values at most once per 10 minutes.
        rate_limits=RateLimits(requests_per_minute=None),
    )
