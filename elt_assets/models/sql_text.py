"""SQL text with its bind parameters written in as literals: what `compile` prints and a
check's query shows, ready to paste into a SQL client."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

# Statements are rendered by SQLAlchemy's generic dialect: it finds bind parameters
# exactly as execution does, and (unlike the psycopg dialects) leaves `%` alone.
_DIALECT = sa.engine.default.DefaultDialect()


def sql_literal(value: Any) -> str:
    """A value as a SQL literal that DuckDB and PostgreSQL read as the bound value would be."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        # A typed literal, so that expressions see a date, as with a bound date.
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


class _Literal(sa.types.UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "literal"

    def literal_processor(self, dialect: sa.engine.Dialect):
        return sql_literal


def render_literals(text: str, params: dict[str, Any]) -> str:
    """The SQL text with every bind parameter replaced by its value as a literal."""
    clause = sa.text(text)
    names = set(clause.compile(dialect=_DIALECT).params)
    missing = names - params.keys()
    if missing:
        raise ValueError(f"no value for bind parameter(s) {', '.join(sorted(missing))}")
    clause = clause.bindparams(*(sa.bindparam(name, params[name], type_=_Literal()) for name in names))
    return str(clause.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))
