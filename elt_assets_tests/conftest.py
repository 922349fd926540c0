import warnings

import pytest

from elt_assets_tests.support import copy_sample, run_elt

warnings.filterwarnings("ignore", category=Warning, module="dagster")


@pytest.fixture
def landing(tmp_path):
    """A private copy of the shipped sample landing zone."""
    return copy_sample(tmp_path / "landing")


@pytest.fixture
def warehouse_url(tmp_path):
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


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
