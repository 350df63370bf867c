"""Discovers every connector package under ``connectors/`` and registers it by key."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Mapping

import connectors
from connectors.base import ConfigKey, Connector, EndpointKind, RouteSpec


class Registry:
    def __init__(self) -> None:
        self._classes: dict[str, type[Connector]] = {}
        self._instances: dict[str, Connector] = {}

    def register(self, cls: type[Connector]) -> None:
        key = getattr(cls, "key", None)
        if not isinstance(key, str) or not key:
            raise TypeError(f"{cls.__qualname__} has no 'key'")
        existing = self._classes.get(key)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"connector key {key!r} is used by {existing.__qualname__} and {cls.__qualname__}"
            )
        self._classes[key] = cls

    def discover(self, package: str = connectors.__name__) -> Registry:
        """Import every subpackage of ``package`` and register the Connector subclasses it exports."""
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.ispkg or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(obj, Connector)
                    and obj is not Connector
                    and not inspect.isabstract(obj)
                ):
                    if "key" in obj.__dict__:
                        self.register(obj)
        return self

    def configure(self, secrets: Mapping[str, Mapping[str, str]] | None = None) -> Registry:
        """Create one instance per connector, handing each the secret values it declared."""
        secrets = secrets or {}
        self._instances = {
            key: cls({s.name: v for s in cls.secrets if (v := secrets.get(key, {}).get(s.name))})
            for key, cls in self._classes.items()
        }
        return self

    def get(self, key: str) -> Connector:
        if not self._instances:
            self.configure()
        try:
            return self._instances[key]
        except KeyError:
            raise KeyError(f"no connector registered under {key!r}") from None

    def keys(self) -> list[str]:
        return sorted(self._classes)

    def classes(self) -> Iterator[type[Connector]]:
        yield from (self._classes[k] for k in self.keys())

    def endpoint_kinds(self) -> dict[str, tuple[str, EndpointKind]]:
        """Endpoint kind -> (the connector that serves it, its declaration)."""
        found: dict[str, tuple[str, EndpointKind]] = {}
        for cls in self.classes():
            for kind in cls.endpoint_kinds:
                if kind.name in found:
                    raise ValueError(
                        f"endpoint kind {kind.name!r} is declared by {found[kind.name][0]} and"
                        f" {cls.key}"
                    )
                found[kind.name] = (cls.key, kind)
        return found

    def routes(self) -> list[tuple[str, str, RouteSpec]]:
        """(connector key, endpoint kind, route) for every route every connector serves."""
        return [
            (key, name, route)
            for name, (key, kind) in self.endpoint_kinds().items()
            for route in kind.routes
        ]

    def config_sections(self) -> dict[str, tuple[ConfigKey, ...]]:
        """Config section -> its keys, for every connector that declares some."""
        return {cls.key: tuple(cls.config) for cls in self.classes() if cls.config}

    def event_types(self) -> list[str]:
        return sorted({e.name for cls in self._classes.values() for e in cls.events})

    def default_off_types(self) -> frozenset[str]:
        """Event types a guild's feed posts only when turned on (see EventSpec.default_on)."""
        return frozenset(
            e.name for cls in self._classes.values() for e in cls.events if not e.default_on
        )


def default_registry() -> Registry:
    return Registry().discover().configure()
