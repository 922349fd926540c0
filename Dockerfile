# The code-location image: the elt-assets wheel and a Dagster gRPC code server on port 4000.
# The webserver and the daemon run elsewhere (their own image or pods) and reach this
# server through a grpc_server entry in their workspace.yaml (docs/running.md).
#
#   docker build -t elt-assets .
#   docker run -p 4000:4000 -e ELT_WAREHOUSE_URL=... elt-assets
#
# Nothing secret is baked in: the warehouse URL, AWS credentials and the instance's
# PostgreSQL settings come from the environment (or Secrets Manager) at run time.

# ---- build: the wheel, with sql/, seeds/ and dagster.yaml bundled by setup.py
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md dagster.yaml ./
COPY elt_assets ./elt_assets
COPY sql ./sql
COPY seeds ./seeds
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime: the installed wheel only, no source tree
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels

# A non-root user owning the instance folder and the working directory, where the embedded
# defaults (data/landing, data/warehouse.duckdb, .elt_cache) go when no ELT_* variable
# names another place. The instance file holds env: references, no credentials.
RUN useradd --create-home --uid 10001 dagster \
    && mkdir -p "$DAGSTER_HOME" /opt/dagster/app \
    && chown -R dagster:dagster /opt/dagster
COPY --chown=dagster:dagster dagster.yaml $DAGSTER_HOME/dagster.yaml
WORKDIR /opt/dagster/app
USER dagster

EXPOSE 4000
# 0.0.0.0: inside a container the server must listen on every interface, or the webserver
# and daemon in other containers cannot reach it (the port is published, not the host's
# loopback). Outside a container keep the default, localhost.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "elt_assets.definitions"]
