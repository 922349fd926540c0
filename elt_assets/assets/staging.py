"""The staging layer's assets, one per model in sql/staging/."""

from elt_assets.assets.factory import build_layer_assets

staging_assets = build_layer_assets("staging")
