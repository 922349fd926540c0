"""The raw_data layer's assets, one per model in sql/raw_data/."""

from elt_assets.assets.factory import build_layer_assets

raw_assets = build_layer_assets("raw_data")
