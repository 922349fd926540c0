"""Resources: the warehouse and the landing zone, configured from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from elt_assets import settings
from elt_assets.engines import Engine, engine_for_url
from elt_assets.landing.zone import LandingZone, LocalLandingZone, S3LandingZone
from elt_assets.secrets import resolve_warehouse_url, secrets_manager_from_env


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse every model is built in (a SQLAlchemy URL; the scheme picks the engine)."""

    url: str = ""
    lock_timeout_seconds: float = 600.0
    # A Secrets Manager secret holding the URL, or the password for `url`. It is read when
    # a step connects, so the credentials never enter run config or the UI.
    secret_id: str | None = None
    secrets_manager: SecretsManagerResource | None = None

    def engine(self) -> Engine:
        url = resolve_warehouse_url(self.url, self.secret_id, self.secrets_manager)
        return engine_for_url(url, lock_timeout_seconds=self.lock_timeout_seconds)


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
    """The warehouse as the environment sets it. Set variables reach the resource as
    EnvVars, so the UI shows their names, never a URL that may carry a password."""
    url = dg.EnvVar(settings.WAREHOUSE_URL_ENV) if settings.warehouse_url_setting() else ""
    if settings.warehouse_secret_id():
        return WarehouseResource(
            url=url, secret_id=dg.EnvVar(settings.WAREHOUSE_SECRET_ENV), secrets_manager=secrets_manager_from_env()
        )
    return WarehouseResource(url=url or settings.default_warehouse_url())


def s3_from_env() -> S3Resource:
    """dagster-aws's S3 resource: endpoint and region from ELT_S3_ENDPOINT_URL / ELT_S3_REGION."""
    options = {}
    if settings.s3_endpoint_url():
        options["endpoint_url"] = dg.EnvVar("ELT_S3_ENDPOINT_URL")
    if settings.s3_region():
        options["region_name"] = dg.EnvVar("ELT_S3_REGION")
    return S3Resource(**options)


def landing_zone_from_env() -> LandingZoneResource:
    root = dg.EnvVar(settings.LANDING_DIR_ENV) if settings.landing_dir_setting() else settings.landing_dir()
    return LandingZoneResource(root=root, s3=s3_from_env())
