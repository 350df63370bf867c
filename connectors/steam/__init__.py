"""Steam: the Steam Web API client and the Steam connector declaration."""

from connectors.steam.client import (
    DEFAULT_BASE_URL,
    SUMMARIES_BATCH_SIZE,
    CallBudget,
    MemoryBudget,
    OwnedGame,
    PlayerSummary,
    SteamClient,
)
from connectors.steam.connector import SteamConnector
from connectors.steam.errors import (
    InvalidKey,
    NotConfigured,
    PrivateProfile,
    RateLimited,
    SteamError,
    Unavailable,
    VanityNotFound,
)
from connectors.steam.openid import DEFAULT_OPENID_URL, Assertion, OpenIDError, SteamOpenID

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_OPENID_URL",
    "SUMMARIES_BATCH_SIZE",
    "Assertion",
    "CallBudget",
    "InvalidKey",
    "MemoryBudget",
    "NotConfigured",
    "OpenIDError",
    "OwnedGame",
    "PlayerSummary",
    "PrivateProfile",
    "RateLimited",
    "SteamClient",
    "SteamConnector",
    "SteamError",
    "SteamOpenID",
    "Unavailable",
    "VanityNotFound",
]
