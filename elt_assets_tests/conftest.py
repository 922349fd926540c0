import os
import shutil
import tempfile
from pathlib import Path

import pytest

from elt_assets_tests.pg_cluster import Cluster, find_bin_dir
from elt_assets_tests.support import copy_sample, fresh_database, run_elt


# CI sets this so that a missing server fails the run instead of skipping its tests.
REQUIRE_POSTGRES = os.environ.get("ELT_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def landing(tmp_path):
    """A private copy of the shipped sample landing zone."""
    return copy_sample(tmp_path / "landing")


@pytest.fixture
def duckdb_url(tmp_path):
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A PostgreSQL server: CI's (ELT_TEST_POSTGRES_URL) or a throwaway one of our own."""
    given = os.environ.get("ELT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's own temporary folder: the server's user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="elt-test-postgres-"))
    cluster = Cluster(root, bin_dir).start()
    try:
        yield cluster.admin_url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_admin_url):
    """A fresh, empty database on the server, dropped after the test."""
    with fresh_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request):
    """The warehouse under test: each test taking it runs on both engines."""
    return request.getfixturevalue("duckdb_url" if request.param == "duckdb" else "postgres_url")


@pytest.fixture(scope="session")
def clean_sample_build(tmp_path_factory):
    """Every asset and check over every sample day, once per session: (landing, url, result).

    Freshness is measured against today, and the sample is from 2023; a lag of ten years
    lets its freshness checks pass like every other check on clean data.
    """
    root = tmp_path_factory.mktemp("clean_sample")
    landing = copy_sample(root / "landing")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ELT_FRESHNESS_LAG_HOURS", str(24 * 365 * 10))
        result = run_elt(landing, url, "2023-06-01", "2023-06-14", raise_on_error=False)
    return landing, url, result
