"""Verified identities: who a member is on Discord and Steam, proven by signing in (OAuth2,
OpenID 2.0), and the Linked Roles values Questlog publishes for them."""

from bot.identity.flows import (
    DISCORD_CALLBACK,
    DISCORD_START,
    LINKED_ROLES_ENTRY,
    STEAM_CALLBACK,
    STEAM_START,
    IdentityService,
    Offer,
    Page,
    Redirect,
    oauth_client,
)

__all__ = [
    "DISCORD_CALLBACK",
    "DISCORD_START",
    "LINKED_ROLES_ENTRY",
    "STEAM_CALLBACK",
    "STEAM_START",
    "IdentityService",
    "Offer",
    "Page",
    "Redirect",
    "oauth_client",
]
