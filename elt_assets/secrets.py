"""Credentials from the environment (default) or from AWS Secrets Manager.

The lecture's MWAA keeps Airflow connections in Secrets Manager; here the warehouse URL
(or just its password) and the Dagster instance's PostgreSQL credentials can live there.
Secrets are read at the moment a connection is made, through dagster-aws's Secrets
Manager resource, and are never put in config, logs or metadata: only the secret's id
and masked URLs are shown.

A secret's value may be:
  - a SQLAlchemy URL (`postgresql+psycopg2://user:password@host:5432/db`),
  - a JSON object in the shape RDS writes (`username`, `password`, `host`, `port`,
    `dbname`) or with a `url` key; missing parts come from the base URL,
  - a bare password, put into the base URL (ELT_WAREHOUSE_URL).
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping

import sqlalchemy as sa
from dagster_aws.secretsmanager import SecretsManagerResource

from elt_assets import settings
from elt_assets.settings import INSTANCE_SECRET_ENV, WAREHOUSE_SECRET_ENV


# Query parameters of a URL that carry credentials (libpq's password and sslpassword,
# tokens and keys of other drivers): masked wherever a URL is shown.
_SECRET_PARAMETERS = ("password", "sslpassword", "token", "secret", "key", "credential")


def masked_url(url: str) -> str:
    """The URL with its password and every credential-like query parameter masked."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"
    query = {
        name: "***" if any(word in name.lower() for word in _SECRET_PARAMETERS) else value
        for name, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


class SecretError(RuntimeError):
    """A secret could not be read or understood; the message names the secret, never its value."""


def secrets_manager_from_env() -> SecretsManagerResource:
    """dagster-aws's resource; endpoint and region from ELT_SECRETS_ENDPOINT_URL / ELT_SECRETS_REGION."""
    options = {}
    if settings.secrets_endpoint_url():
        options["endpoint_url"] = settings.secrets_endpoint_url()
    if settings.secrets_region():
        options["region_name"] = settings.secrets_region()
    return SecretsManagerResource(**options)


def read_secret(secrets_manager: SecretsManagerResource, secret_id: str) -> str:
    """The secret's string value."""
    try:
        response = secrets_manager.get_client().get_secret_value(SecretId=secret_id)
    except Exception as error:  # botocore raises many unrelated types for one failed call
        reason = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
        raise SecretError(f"cannot read secret {secret_id!r} from Secrets Manager: {reason}") from None
    value = response.get("SecretString")
    if not value:
        raise SecretError(f"secret {secret_id!r} holds no string value")
    return value


def url_from_secret(value: str, base_url: str | None, secret_id: str) -> str:
    """Combine a secret's value with the base URL into a full SQLAlchemy URL."""
    text = value.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            raise SecretError(f"secret {secret_id!r} starts like JSON but is not valid JSON") from None
        if fields.get("url"):
            return str(fields["url"])
        if not base_url:
            raise SecretError(f"secret {secret_id!r} has no url; set ELT_WAREHOUSE_URL as the base URL")
        url = sa.make_url(base_url)
        return url.set(
            username=fields.get("username", url.username),
            password=fields.get("password", url.password),
            host=fields.get("host", url.host),
            port=int(fields["port"]) if fields.get("port") else url.port,
            database=fields.get("dbname", fields.get("database", url.database)),
        ).render_as_string(hide_password=False)
    if "://" in text:
        return text
    if not base_url:
        raise SecretError(f"secret {secret_id!r} holds a password only; set ELT_WAREHOUSE_URL as the base URL")
    return sa.make_url(base_url).set(password=text).render_as_string(hide_password=False)


def resolve_warehouse_url(
    url: str, secret_id: str | None, secrets_manager: SecretsManagerResource | None = None
) -> str:
    """The warehouse URL: `url` itself, or completed from the secret when one is named."""
    if not secret_id:
        if not url:
            raise SecretError(f"no warehouse URL: set ELT_WAREHOUSE_URL or {WAREHOUSE_SECRET_ENV}")
        return url
    value = read_secret(secrets_manager or secrets_manager_from_env(), secret_id)
    return url_from_secret(value, url or None, secret_id)


def warehouse_url_from_env() -> str:
    """The warehouse URL every command and step uses: from ELT_WAREHOUSE_SECRET_ID (completed
    by ELT_WAREHOUSE_URL), else ELT_WAREHOUSE_URL, else the embedded default."""
    secret_id = settings.warehouse_secret_id()
    base = settings.warehouse_url_setting() or ("" if secret_id else settings.default_warehouse_url())
    return resolve_warehouse_url(base, secret_id or None)


def apply_instance_secret(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Fill DAGSTER_PG_* from the secret named by ELT_DAGSTER_PG_SECRET_ID, if set.

    dagster.yaml reads its PostgreSQL settings from the environment, so commands that
    open the instance (and `elt-assets with-secrets -- dagster-daemon run`) call this
    first. Variables already set win. Returns whether a secret was read.
    """
    secret_id = environ.get(INSTANCE_SECRET_ENV)
    if not secret_id:
        return False
    value = read_secret(secrets_manager_from_env(), secret_id)
    try:
        fields = json.loads(value)
    except json.JSONDecodeError:
        fields = {"password": value}
    if not isinstance(fields, dict):
        raise SecretError(f"secret {secret_id!r} is neither a JSON object nor a password")
    names = {"host": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USER",
             "password": "DAGSTER_PG_PASSWORD", "dbname": "DAGSTER_PG_DB"}
    for key, variable in names.items():
        if fields.get(key) is not None and not environ.get(variable):
            environ[variable] = str(fields[key])
    return True
