"""The model registry: every table's SQL file and its settings, read from sql/.

Each layer folder (`sql/<schema>/`) holds one `.sql` file per model, named like the table
it builds, and a `_models.yml` with the settings dbt users know from `dbt_project.yml`
and schema files: materialization, the column that partitions the table, descriptions.
Beside a model's file live its other queries, named `<model>.<name>.sql`: `metrics:` are
counts each day's materialization reports (e.g. how many rows it left out), `queries:` are
statements the model's own code runs (the readout's sums and its tables' DDL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2
import yaml

from elt_assets.settings import SQL_DIR
from elt_assets.engines.base import qualified, validate_identifier

LAYERS = ("raw_data", "staging", "core", "analytics")
# "python": the rows are computed by the model's code in elt_assets (the A/B-test readout),
# from the model's SQL and its named queries.
MATERIALIZATIONS = ("landing", "view", "ephemeral", "table", "incremental", "snapshot", "python")
# Layer defaults follow the lecture: staging as views, core and analytics as tables.
LAYER_DEFAULTS = {
    "raw_data": "landing",
    "staging": "view",
    "core": "table",
    "analytics": "table",
}
_LEADING_WITH = re.compile(r"^(\s*(?:--[^\n]*\n\s*)*)with\s", re.IGNORECASE)


@dataclass(frozen=True)
class Model:
    """One table of the warehouse and how it is built."""

    schema: str
    name: str
    materialization: str
    description: str
    partition_column: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    unique_key: str | None = None
    # A day is computed from every earlier day too (see elt_assets.models.build_log).
    depends_on_past: bool = False
    owners: tuple[str, ...] = ()
    # Data tests as written in the schema file, one mapping per test: {"kind": ..., args}.
    # Column-level tests carry their column; elt_assets.checks.data_tests turns them into checks.
    tests: tuple[dict, ...] = ()
    # For landing models: where the files come from (path pattern, formats).
    source: dict = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / self.schema / f"{self.name}.sql"

    def metric_path(self, metric: str) -> Path:
        return SQL_DIR / self.schema / f"{self.name}.{metric}.sql"

    query_path = metric_path  # metrics and queries share the `<model>.<name>.sql` naming

    @property
    def writes_rows(self) -> bool:
        return self.materialization in ("landing", "table", "incremental", "snapshot", "python")


@dataclass(frozen=True)
class RenderedSql:
    """SQL text ready to run with the :window_start/:window_end bind parameters."""

    text: str
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]


class Registry:
    """All models by name, with the Jinja rendering of their SQL (`ref`, `source`, `this`)."""

    def __init__(self, models: Iterable[Model]):
        self.models: dict[str, Model] = {}
        for model in models:
            if model.name in self.models:
                raise ValueError(f"model {model.name!r} is defined twice")
            self.models[model.name] = model
        self._jinja = jinja2.Environment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )

    def __getitem__(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"no model named {name!r}; known: {', '.join(self.models)}") from None

    def in_layer(self, schema: str) -> list[Model]:
        return [model for model in self.models.values() if model.schema == schema]

    def render(self, model: Model, inline_ephemeral: bool = True) -> RenderedSql:
        """The model's SQL with refs resolved; ephemeral upstream models become CTEs.

        With inline_ephemeral=False, a ref to an ephemeral model names it like a table,
        which is what lineage wants (the text does not run then).
        """
        return self._render(model, inline_ephemeral=inline_ephemeral)

    def render_metric(self, model: Model, metric: str) -> RenderedSql:
        return self._render(model, path=model.metric_path(metric))

    def render_query(self, model: Model, name: str) -> RenderedSql:
        return self._render(model, path=model.query_path(name))

    def upstream(self, model: Model) -> list[Model]:
        """The models and sources this model reads directly, as written in its SQL."""
        if model.materialization == "landing":
            return []
        rendered = self._render(model, inline_ephemeral=False)
        names = list(rendered.refs) + [table for _schema, table in rendered.sources]
        return [self[name] for name in dict.fromkeys(names)]

    def _render(
        self,
        model: Model,
        path: Path | None = None,
        inline_ephemeral: bool = True,
        ephemeral_ctes: dict[str, str] | None = None,
    ) -> RenderedSql:
        # Ephemeral models render into CTEs collected by the outermost call, dependencies
        # first, and prepended to its WITH clause (dbt's ephemeral materialization).
        outermost = ephemeral_ctes is None
        ephemeral_ctes = {} if ephemeral_ctes is None else ephemeral_ctes
        path = path or model.sql_path
        refs: list[str] = []
        sources: list[tuple[str, str]] = []

        def ref(name: str) -> str:
            upstream = self[name]
            refs.append(name)
            if upstream.materialization == "ephemeral" and inline_ephemeral:
                cte_name = f"__ephemeral_{upstream.name}"
                if cte_name not in ephemeral_ctes:
                    inner = self._render(upstream, ephemeral_ctes=ephemeral_ctes)
                    ephemeral_ctes[cte_name] = inner.text.strip().rstrip(";")
                return cte_name
            return upstream.qualified_name

        def source(schema: str, table: str) -> str:
            upstream = self[table]
            if upstream.schema != schema:
                raise ValueError(f"{path}: source {schema}.{table} is not a declared source")
            sources.append((schema, table))
            return upstream.qualified_name

        template = self._jinja.from_string(_read(path))
        text = template.render(ref=ref, source=source, this=model.qualified_name)
        if outermost and ephemeral_ctes:
            text = _prepend_ctes(text, ephemeral_ctes)
        return RenderedSql(text=text.strip().rstrip(";") + "\n", refs=tuple(refs), sources=tuple(sources))


def _prepend_ctes(text: str, ctes: dict[str, str]) -> str:
    definitions = ",\n\n".join(f"{name} as (\n{body}\n)" for name, body in ctes.items())
    match = _LEADING_WITH.match(text)
    if match:
        return f"{match.group(1)}with {definitions},\n\n{text[match.end():]}"
    return f"with {definitions}\n\n{text}"


@cache
def _read(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"SQL file {path} does not exist")
    return path.read_text(encoding="utf-8")


def load_registry(sql_dir: Path = SQL_DIR) -> Registry:
    """Read every layer's `_models.yml` and check each model has its SQL file."""
    models = []
    for schema in LAYERS:
        spec_path = sql_dir / schema / "_models.yml"
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        defaults = spec.get("defaults") or {}
        default = defaults.get("materialization", LAYER_DEFAULTS[schema])
        for name, settings in (spec.get("models") or {}).items():
            settings = settings or {}
            columns = settings.get("columns") or {}
            model = Model(
                schema=validate_identifier(schema),
                name=validate_identifier(name),
                materialization=settings.get("materialization", default),
                description=(settings.get("description") or "").strip(),
                partition_column=settings.get("partition_column"),
                columns={
                    validate_identifier(column): _column_description(value)
                    for column, value in columns.items()
                },
                metrics=tuple(settings.get("metrics") or ()),
                queries=tuple(settings.get("queries") or ()),
                unique_key=settings.get("unique_key"),
                depends_on_past=bool(settings.get("depends_on_past", False)),
                owners=tuple(settings.get("owners") or defaults.get("owners") or ()),
                tests=_tests(settings.get("tests"), None, spec_path, name)
                + tuple(
                    test
                    for column, value in columns.items()
                    if isinstance(value, dict)
                    for test in _tests(value.get("tests"), column, spec_path, name)
                ),
                source=dict(settings.get("source") or {}),
            )
            _check_model(model, spec_path)
            models.append(model)
    return Registry(models)


def _column_description(value: str | dict | None) -> str:
    """A column is `name: description`, or `name: {description: ..., tests: [...]}`."""
    if isinstance(value, dict):
        value = value.get("description")
    return (value or "").strip()


def _tests(entries: list | None, column: str | None, spec_path: Path, model: str) -> tuple[dict, ...]:
    """Schema-file tests as {"kind": ..., **args}: `- not_null` or `- unique: {columns: [...]}`."""
    tests = []
    for entry in entries or ():
        if isinstance(entry, str):
            kind, args = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            kind, args = next(iter(entry.items()))
            args = dict(args or {})
        else:
            raise ValueError(f"{spec_path}: model {model}: a test is a name or a one-key mapping, not {entry!r}")
        if column is not None:
            args.setdefault("column", column)
        tests.append({"kind": kind, **args})
    return tuple(tests)


def _check_model(model: Model, spec_path: Path) -> None:
    where = f"{spec_path}: model {model.name}"
    if model.materialization not in MATERIALIZATIONS:
        raise ValueError(f"{where}: materialization must be one of {MATERIALIZATIONS}")
    if model.writes_rows and not model.partition_column:
        raise ValueError(f"{where}: a {model.materialization} model needs a partition_column")
    if model.materialization == "snapshot" and not model.unique_key:
        raise ValueError(f"{where}: a snapshot model needs a unique_key")
    if not model.sql_path.exists():
        raise ValueError(f"{where}: missing SQL file {model.sql_path}")
    for name in (*model.metrics, *model.queries):
        validate_identifier(name)
        if not model.query_path(name).exists():
            raise ValueError(f"{where}: missing query file {model.query_path(name)}")


@cache
def registry() -> Registry:
    """The project's registry, read once per process."""
    return load_registry()
