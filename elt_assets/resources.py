"""Resources: the warehouse and the landing zone, configured from the environment."""

from __future__ import annotations

import os

import dagster as dg
from dagster_aws.secretsmanager import SecretsManagerResource

from elt_assets.secrets import WAREHOUSE_SECRET_ENV, resolve_warehouse_url, secrets_manager_from_env
from elt_assets.settings import default_warehouse_url, landing_dir
from elt_assets.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse every model is built in (a SQLAlchemy URL)."""

    url: str = ""
    lock_timeout_seconds: float = 600.0
    # A Secrets Manager secret holding the URL, or the password for `url`. It is read when
    # a step connects, so the credentials never enter run config or the UI.
    secret_id: str | None = None
    secrets_manager: SecretsManagerResource | None = None

    def warehouse(self) -> Warehouse:
        url = resolve_warehouse_url(self.url, self.secret_id, self.secrets_manager)
        return Warehouse(url, lock_timeout_seconds=self.lock_timeout_seconds)


class LandingZoneResource(dg.ConfigurableResource):
    """The folder raw files land in: <root>/<table>/<YYYY-MM-DD>.csv or a day folder."""

    root: str


def warehouse_from_env() -> WarehouseResource:
    if os.environ.get(WAREHOUSE_SECRET_ENV):
        return WarehouseResource(
            url=dg.EnvVar("ELT_WAREHOUSE_URL") if os.environ.get("ELT_WAREHOUSE_URL") else "",
            secret_id=dg.EnvVar(WAREHOUSE_SECRET_ENV),
            secrets_manager=secrets_manager_from_env(),
        )
    # With ELT_WAREHOUSE_URL set, pass it as an EnvVar so that the UI shows the variable's
    # name, never a URL that may carry a password.
    if os.environ.get("ELT_WAREHOUSE_URL"):
        return WarehouseResource(url=dg.EnvVar("ELT_WAREHOUSE_URL"))
    return WarehouseResource(url=default_warehouse_url())


def landing_zone_from_env() -> LandingZoneResource:
    if os.environ.get("ELT_LANDING_DIR"):
        return LandingZoneResource(root=dg.EnvVar("ELT_LANDING_DIR"))
    return LandingZoneResource(root=landing_dir())
