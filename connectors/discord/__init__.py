"""Discord as a source of verified identities: OAuth2 (Login with Discord), a member's
connections, and Linked Roles. An HTTP client only: this package imports neither discord.py
nor aiohttp (the bot's own gateway and REST traffic stay in bot/gateway)."""

from connectors.discord.connector import DiscordConnector
from connectors.discord.oauth import (
    DEFAULT_AUTHORIZE_URL,
    SCOPES,
    Connection,
    DiscordOAuth,
    DiscordOAuthError,
    DiscordUser,
    MetadataRecord,
    OAuthError,
    RateLimited,
    Tokens,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "DEFAULT_AUTHORIZE_URL",
    "SCOPES",
    "Connection",
    "DiscordConnector",
    "DiscordOAuth",
    "DiscordOAuthError",
    "DiscordUser",
    "MetadataRecord",
    "OAuthError",
    "RateLimited",
    "Tokens",
    "Unauthorized",
    "Unavailable",
]
