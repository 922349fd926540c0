"""What a model's SQL says about its columns: their names and where each comes from.

sqlglot parses the rendered SQL, with every model's documented columns as the schema
(so `select *` expands), and traces each output column back to the columns of the models
it reads. Parsing every model takes about half a second, paid by every process that
loads the code location (each run, the webserver, the daemon), so the result is kept in
a JSON file named by a digest of the SQL folder and sqlglot's version (ELT_CACHE_DIR,
default .elt_cache/ in the project): any change to a model or a schema file is a new
digest, hence a fresh computation.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from elt_assets.models.registry import Model, Registry, registry
from elt_assets.settings import SQL_DIR, cache_dir

if TYPE_CHECKING:
    from sqlglot import exp

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
    import sqlglot
    from sqlglot.optimizer.qualify import qualify

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
    from sqlglot import exp
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.scope import build_scope

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
    if registry()[model_name].materialization in ("landing", "python"):
        return None
    deps = all_column_dependencies()[model_name]
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


@cache
def all_column_dependencies() -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """column_dependencies of every model but the raw tables, from the cache file if current."""
    path = _cache_path()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        return {
            model: {column: [tuple(source) for source in sources] for column, sources in columns.items()}
            for model, columns in cached.items()
        }
    except (OSError, ValueError, AttributeError):
        pass
    models = registry()
    found = {
        name: column_dependencies(model, models)
        for name, model in models.models.items()
        if model.materialization not in ("landing", "python")
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: a process reading at the same time sees all or nothing.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
            json.dump(found, handle)
        os.replace(handle.name, path)
    except OSError:
        pass  # a read-only checkout computes lineage on every load instead
    return found


def _cache_path() -> Path:
    digest = hashlib.sha256(f"sqlglot {version('sqlglot')}\n".encode())
    for file in sorted(SQL_DIR.rglob("*")):
        if file.suffix in (".sql", ".yml", ".yaml"):
            digest.update(str(file.relative_to(SQL_DIR)).encode() + b"\0" + file.read_bytes() + b"\0")
    folder = cache_dir()
    return folder / f"lineage-{digest.hexdigest()[:16]}.json"
