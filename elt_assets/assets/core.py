"""The core layer's assets, one per model in sql/core/."""

from elt_assets.assets.factory import build_layer_assets

core_assets = build_layer_assets("core")
