import warnings

import pytest

from elt_assets_tests.support import copy_sample

warnings.filterwarnings("ignore", category=Warning, module="dagster")


@pytest.fixture
def landing(tmp_path):
    """A private copy of the shipped sample landing zone."""
    return copy_sample(tmp_path / "landing")


@pytest.fixture
def warehouse_url(tmp_path):
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
