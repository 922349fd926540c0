"""Every asset the warehouse holds, in lineage order: raw, staging, core, analytics."""

from elt_assets.assets.analytics import analytics_assets
from elt_assets.assets.core import core_assets
from elt_assets.assets.raw import raw_assets
from elt_assets.assets.readout import ab_test_readout
from elt_assets.assets.staging import staging_assets

warehouse_assets = [*raw_assets, *staging_assets, *core_assets, *analytics_assets, ab_test_readout]
