"""`elt-assets compile`: each model's plan for a window, printed instead of run.

Like `dbt compile`, with the window's bind parameters written as literals so the text runs
unchanged in the warehouse. The plan is the one a run executes (elt_assets.models.plan),
built against the warehouse's catalog in a transaction that is rolled back: compiling
writes nothing.
"""

from __future__ import annotations

from datetime import date
from elt_assets.engines import engine_for_url
from elt_assets.engines.duckdb import DuckDBEngine
from elt_assets.landing import raw_load
from elt_assets.landing.zone import LandingError
from elt_assets.models.plan import plan_model
from elt_assets.models.registry import Model, Registry


def models_in_build_order(models: Registry, names: list[str] | None = None) -> list[Model]:
    """The named models (default: all), each after the models it reads."""
    wanted = {models[_model_name(name)].name for name in names} if names else set(models.models)
    ordered: list[Model] = []
    seen: set[str] = set()

    def visit(model: Model) -> None:
        if model.name in seen:
            return
        seen.add(model.name)
        for upstream in models.upstream(model):
            visit(upstream)
        if model.name in wanted:
            ordered.append(model)

    for model in models.models.values():
        visit(model)
    return ordered


def _model_name(name: str) -> str:
    """`fact_user_event` or `core.fact_user_event`."""
    return name.split(".", 1)[1] if "." in name else name


def compile_models(
    warehouse_url: str,
    models: Registry,
    names: list[str] | None,
    first_day: date,
    end_day: date,
    landing_root: str | None = None,
) -> list[tuple[Model, str]]:
    """Each selected model's plan as a script, in build order, against the warehouse's catalog."""
    engine = engine_for_url(warehouse_url)
    # A warehouse that is not there yet (a DuckDB file not created) has an empty catalog:
    # plan against an empty in-memory one rather than create it.
    catalog = engine if engine.exists() else DuckDBEngine("duckdb:///:memory:")
    compiled = []
    try:
        with catalog.transaction(read_only=True) as session:
            for model in models_in_build_order(models, names):
                notes: list[str] = []
                files = None
                if model.materialization == "landing" and landing_root is not None:
                    try:
                        files = raw_load.files_for_window(landing_root, model.name, first_day, end_day)
                    except LandingError as error:
                        notes.append(f"the load would fail: {error}")
                plan = plan_model(catalog, session, models, model, first_day, end_day, files)
                plan.notes += notes
                compiled.append((model, plan.script(engine)))
    finally:
        catalog.dispose()
        engine.dispose()
    return compiled
