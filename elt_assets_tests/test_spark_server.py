"""The local Spark Connect server: starts from the CLI, answers, and keeps its catalog in DIR.

Needs Java 17+ and pyspark with Spark Connect (the `spark` extra); without them the test
skips, or fails when ELT_REQUIRE_SPARK=1 (as CI sets it). A server start takes about 30 s
on two cores, so the whole test starts two servers and nothing more.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from elt_assets.engines import spark_server

REQUIRE_SPARK = os.environ.get("ELT_REQUIRE_SPARK") == "1"


@pytest.fixture
def spark_available():
    """Skip without Java or pyspark; fail instead when ELT_REQUIRE_SPARK=1."""
    missing = spark_server.missing_requirement()
    if missing:
        if REQUIRE_SPARK:
            pytest.fail(missing)
        pytest.skip(missing)


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m elt_assets.engines.spark_server ARGS`, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "elt_assets.engines.spark_server", *args],
                          capture_output=True, text=True, timeout=timeout)


def connect(url: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark's note on pandas versions
        from pyspark.sql import SparkSession

        return SparkSession.builder.remote(url).create()


def start(root) -> str:
    result = cli("start", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("sc://127.0.0.1:"), result.stdout
    return url


def test_tables_persist_across_server_restarts(spark_available, tmp_path):
    root = tmp_path / "spark"
    try:
        url = start(root)
        assert cli("status", str(root)).stdout.strip() == url
        # A second start finds the running server instead of starting another.
        again = cli("start", str(root))
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == url

        spark = connect(url)
        try:
            assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
            assert spark.conf.get("spark.sql.sources.partitionOverwriteMode") == "dynamic"
            spark.sql("create database if not exists core")
            spark.sql(
                "create table core.t using parquet partitioned by (d) as "
                "select * from values (1, date '2023-06-01'), (2, date '2023-06-02') as v(n, d)"
            )
        finally:
            spark.stop()

        stopped = cli("stop", str(root))
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert cli("status", str(root)).returncode == 1
        assert not (root / spark_server.PID_FILE).exists()

        spark = connect(start(root))
        try:
            rows = spark.sql("select n, cast(d as string) as d from core.t order by n").collect()
            assert [(row.n, row.d) for row in rows] == [(1, "2023-06-01"), (2, "2023-06-02")]
            assert [row.partition for row in spark.sql("show partitions core.t").collect()] == [
                "d=2023-06-01",
                "d=2023-06-02",
            ]
        finally:
            spark.stop()
    finally:
        cli("stop", str(root))
    assert spark_server.running_pid(root) is None
    nothing = cli("stop", str(root))
    assert nothing.returncode == 0 and "no Spark Connect server was running" in nothing.stdout


def test_missing_requirement_names_the_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert spark_server.missing_requirement() == spark_server.INSTALL_JAVA
    assert spark_server.main(["start", "/nonexistent/spark"]) == 2
