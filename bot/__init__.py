"""Questlog core: configuration, storage, ingest pipeline, services and the CLI."""

__version__ = "0.1.0"
