"""Connectors: one subpackage per external source, discovered by :mod:`connectors.registry`."""
