"""The analytics layer's assets, one per model in sql/analytics/."""

from elt_assets.assets.factory import build_layer_assets

analytics_assets = build_layer_assets("analytics")
