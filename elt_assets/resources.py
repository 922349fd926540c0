"""Resources: the warehouse and the landing zone, configured from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from elt_assets.landing import LandingZone, LocalLandingZone, S3LandingZone
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
    """Where raw files land: a local folder or s3://bucket/prefix, laid out as
    <root>/<table>/<YYYY-MM-DD>.csv or a day folder of part files."""

    root: str
    # S3 roots are read through dagster-aws's resource; credentials come from the usual
    # AWS chain (environment, profile, instance role), never from this config.
    s3: S3Resource | None = None

    @contextmanager
    def open(self) -> Iterator[LandingZone]:
        """The landing zone; local copies of S3 files are removed when the block ends."""
        if not self.root.startswith("s3://"):
            yield LocalLandingZone(self.root)
            return
        s3 = self.s3 or S3Resource()
        with S3LandingZone(self.root, s3.get_client, endpoint=s3.endpoint_url) as zone:
            yield zone


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


def s3_from_env() -> S3Resource:
    """dagster-aws's S3 resource: endpoint and region from ELT_S3_ENDPOINT_URL / ELT_S3_REGION."""
    settings = {}
    if os.environ.get("ELT_S3_ENDPOINT_URL"):
        settings["endpoint_url"] = dg.EnvVar("ELT_S3_ENDPOINT_URL")
    if os.environ.get("ELT_S3_REGION"):
        settings["region_name"] = dg.EnvVar("ELT_S3_REGION")
    return S3Resource(**settings)


def landing_zone_from_env() -> LandingZoneResource:
    if os.environ.get("ELT_LANDING_DIR"):
        return LandingZoneResource(root=dg.EnvVar("ELT_LANDING_DIR"), s3=s3_from_env())
    return LandingZoneResource(root=landing_dir(), s3=s3_from_env())
