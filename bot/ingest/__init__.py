"""The one ingest path every source calls: dedupe, effects, normalize, milestones, feed.

What the web layer needs of the core's types is named here, so it depends on neither the
connectors nor the storage package."""

from bot.ingest.pipeline import IgnoredDelivery, IngestResult, SchemaError, WebhookContext
from bot.storage import Endpoint, StorageError
from connectors.base import RouteSpec as Route

__all__ = [
    "Endpoint",
    "IgnoredDelivery",
    "IngestResult",
    "Route",
    "SchemaError",
    "StorageError",
    "WebhookContext",
]
