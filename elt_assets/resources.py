"""Resources: the warehouse and the landing zone, configured from the environment."""

from __future__ import annotations

import os

import dagster as dg

from elt_assets.settings import default_warehouse_url, landing_dir
from elt_assets.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse every model is built in (a SQLAlchemy URL)."""

    url: str
    lock_timeout_seconds: float = 600.0

    def warehouse(self) -> Warehouse:
        return Warehouse(self.url, lock_timeout_seconds=self.lock_timeout_seconds)


class LandingZoneResource(dg.ConfigurableResource):
    """The folder raw files land in: <root>/<table>/<YYYY-MM-DD>.csv or a day folder."""

    root: str


def warehouse_from_env() -> WarehouseResource:
    # With ELT_WAREHOUSE_URL set, pass it as an EnvVar so that the UI shows the variable's
    # name, never a URL that may carry a password.
    if os.environ.get("ELT_WAREHOUSE_URL"):
        return WarehouseResource(url=dg.EnvVar("ELT_WAREHOUSE_URL"))
    return WarehouseResource(url=default_warehouse_url())


def landing_zone_from_env() -> LandingZoneResource:
    if os.environ.get("ELT_LANDING_DIR"):
        return LandingZoneResource(root=dg.EnvVar("ELT_LANDING_DIR"))
    return LandingZoneResource(root=landing_dir())
