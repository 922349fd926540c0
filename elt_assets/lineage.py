"""What a model's SQL says about its columns: their names and where each comes from.

sqlglot parses the rendered SQL, with every model's documented columns as the schema
(so `select *` expands), and traces each output column back to the columns of the models
it reads. Computed once, when the code location loads.
"""

from __future__ import annotations

from functools import cache

import dagster as dg
import sqlglot
from sqlglot import exp
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from elt_assets.models import Model, Registry, registry

# The SQL files are written to run on DuckDB and PostgreSQL alike; DuckDB's reader parses
# them, and nothing here depends on the dialect's finer points.
READ_DIALECT = "duckdb"


def schema_of(models: Registry) -> dict[str, dict[str, dict[str, str]]]:
    """Every model's documented columns, as sqlglot's {schema: {table: {column: type}}}."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for model in models.models.values():
        # Types do not matter for names and lineage; sqlglot only needs the column names.
        schema.setdefault(model.schema, {})[model.name] = {column: "text" for column in model.columns}
    return schema


def _qualified_tree(model: Model, models: Registry, schema: dict) -> exp.Expression:
    sql = models.render(model, inline_ephemeral=False).text
    tree = sqlglot.parse_one(sql, read=READ_DIALECT)
    return qualify(tree, schema=schema, dialect=READ_DIALECT, validate_qualify_columns=False)


def output_columns(model: Model, models: Registry | None = None) -> list[str]:
    """The names of the columns the model's final select returns, in order."""
    models = models or registry()
    return list(_qualified_tree(model, models, schema_of(models)).named_selects)


def column_dependencies(model: Model, models: Registry | None = None) -> dict[str, list[tuple[str, str, str]]]:
    """For each output column, the (schema, table, column) it is computed from.

    A column computed from no table column (a literal, a generated day) maps to [].
    """
    models = models or registry()
    schema = schema_of(models)
    tree = _qualified_tree(model, models, schema)
    scope = build_scope(tree)
    dependencies: dict[str, list[tuple[str, str, str]]] = {}
    for column in tree.named_selects:
        root = lineage(column, tree, schema=schema, dialect=READ_DIALECT, scope=scope, trim_selects=False)
        found = set()
        for node in root.walk():
            source = node.source
            if node.downstream or not isinstance(source, exp.Table) or not source.db:
                continue
            found.add((source.db, source.name, exp.to_column(node.name).name))
        dependencies[column] = sorted(found)
    return dependencies


@cache
def column_lineage(model_name: str) -> dg.TableColumnLineage | None:
    """The model's column lineage for its asset's `dagster/column_lineage` metadata."""
    models = registry()
    model = models[model_name]
    if model.materialization == "landing":
        return None
    deps = column_dependencies(model, models)
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey([schema, table]), column_name=name)
                for schema, table, name in sources
            ]
            for column, sources in deps.items()
            if sources
        }
    )
