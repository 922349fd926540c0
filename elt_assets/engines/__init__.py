"""Warehouse engines, one module each, chosen by the warehouse URL's scheme.

Adding an engine: a module here with an `Engine` subclass, and one line in ENGINES.
"""

from __future__ import annotations

from importlib import import_module

from elt_assets.engines.base import Engine, WarehouseError

# URL scheme (SQLAlchemy backend name, or sc for Spark Connect) -> module:class.
ENGINES = {
    "duckdb": "elt_assets.engines.duckdb:DuckDBEngine",
    "postgresql": "elt_assets.engines.postgres:PostgresEngine",
    "sc": "elt_assets.engines.spark:SparkEngine",
}


def engine_name(url: str) -> str:
    """The engine a URL selects ('duckdb', 'postgresql', 'sc'), without connecting."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ENGINES:
        raise WarehouseError(f"no warehouse engine for URLs starting {scheme!r}; known: {', '.join(ENGINES)}")
    return scheme


def engine_class(url: str) -> type[Engine]:
    """The Engine subclass a URL selects (its module is imported only now)."""
    module_name, class_name = ENGINES[engine_name(url)].split(":")
    return getattr(import_module(module_name), class_name)


def engine_for_url(url: str, lock_timeout_seconds: float = 600.0) -> Engine:
    """The engine for a warehouse URL (imported only when chosen)."""
    return engine_class(url)(url, lock_timeout_seconds)
