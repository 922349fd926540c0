"""What a model's SQL says about its columns: their names and where each comes from;
and, for the asset pages, the files that define a model.

sqlglot parses the rendered SQL, with every model's documented columns as the schema
(so `select *` expands), and traces each output column back to the columns of the models
it reads. Parsing every model takes about half a second, paid by every process that
loads the code location (each run, the webserver, the daemon), so the result is kept in
a JSON file named by a digest of the SQL folder and sqlglot's version (ELT_CACHE_DIR,
default .elt_cache/ in the project): any change to a model or a schema file is a new
digest, hence a fresh computation.

Open-source Dagster does not draw `dagster/column_lineage` (only Dagster+ does), so each
column's sources are also written into its description, which every asset page shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from elt_assets.models.registry import LAYERS, Model, Registry, registry
from elt_assets.settings import SQL_DIR, cache_dir

if TYPE_CHECKING:
    from sqlglot import exp

SCHEMA_FILE = "_models.yml"
# Marks where a column's description names the columns it is computed from.
UPSTREAM_ARROW = "←"

# Dagster marks code references as beta and warns on each one made; the assets' links to
# their files are a deliberate choice, so the warning is silenced for these two classes.
warnings.filterwarnings("ignore", message="Class `(LocalFileCodeReference|CodeReferencesMetadataValue)`")

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


def columns_with_upstream(model: Model, lineage: dg.TableColumnLineage | None) -> dg.TableSchema:
    """The model's documented columns, each description ending with the columns it is
    computed from ("The user. ← staging.src_user_event.user_id")."""
    deps = lineage.deps_by_column if lineage else {}
    columns = []
    for name, text in model.columns.items():
        sources = ", ".join(_column_reference(dep) for dep in deps.get(name, ()))
        description = " ".join(part for part in (text, sources and f"{UPSTREAM_ARROW} {sources}") if part)
        columns.append(dg.TableColumn(name=name, description=description or None))
    return dg.TableSchema(columns=columns)


def _column_reference(dep: dg.TableColumnDep) -> str:
    """A warehouse column as schema.table.column; a landing file's as landing/table.column."""
    path = dep.asset_key.path
    return f"{'.'.join(path) if path[0] in LAYERS else '/'.join(path)}.{dep.column_name}"


def code_references(model: Model, *files: Path, source: bool = False) -> dg.CodeReferencesMetadataValue:
    """`dagster/code_references` of a model's asset: its SQL file and its metrics' queries,
    its entry in the layer's schema file, then any other files (its Python code). A Python
    model's own statements (`queries:`) are left to its code: ten links would bury the rest.

    With source=True, for the landing files' asset: the entry's `source:` block, then the
    raw table's DDL, whose columns every landing file must carry.
    """
    spec = model.sql_path.parent / SCHEMA_FILE
    # The UI writes "Open <label> in editor" and shortens long labels in the middle.
    spec_label = f"{model.schema}/{SCHEMA_FILE}"

    def reference(path: Path, label: str, line_number: int | None = None) -> dg.LocalFileCodeReference:
        return dg.LocalFileCodeReference(file_path=str(path), line_number=line_number, label=label)

    sql = reference(model.sql_path, model.sql_path.name)
    if source:
        references = [reference(spec, spec_label, _line_of(spec, model.name, "source")), sql]
    else:
        references = [
            sql,
            *(reference(model.metric_path(metric), model.metric_path(metric).name) for metric in model.metrics),
            reference(spec, spec_label, _line_of(spec, model.name)),
        ]
    references += [reference(path, path.name) for path in files]
    return dg.CodeReferencesMetadataValue(code_references=references)


def _line_of(spec: Path, model_name: str, key: str | None = None) -> int | None:
    """The 1-based line of a model's entry under `models:`, or of `key:` directly inside it."""
    # (line number, indentation, key) of every line that is not blank or a comment
    keys = [
        (number, len(line) - len(line.lstrip()), line.strip().split(":")[0])
        for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    models = next((index for index, (_, depth, name) in enumerate(keys) if depth == 0 and name == "models"), None)
    if models is None or models + 1 >= len(keys):
        return None
    entries = keys[models + 1 :]
    entry_depth = entries[0][1]
    for index, (number, depth, name) in enumerate(entries):
        if depth != entry_depth or name != model_name:
            continue
        inside = entries[index + 1 :]
        child_depth = inside[0][1] if inside else None
        for inner_number, inner_depth, inner_name in inside:
            if inner_depth <= entry_depth:
                break  # the next entry: the key is not in this one
            if key is not None and inner_depth == child_depth and inner_name == key:
                return inner_number
        return number
    return None
