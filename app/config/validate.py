"""The one validation path for configuration, shared by the YAML loader and the HTTP API.

``validate_config`` collects *every* problem before raising, so a user fixes a config
in one round trip. Each problem names a dotted field path (``rules[2].canonicalize``).

User SQL expressions are the injection surface (DESIGN.md, semantic 7): they are parsed
with sqlglot and accepted only as a single scalar expression over the source table's own
columns. Callers embed the *parsed* tree returned by ``validate_expression`` into
generated SQL, never the raw string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlglot
from pydantic import BaseModel, ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from app.config import functions
from app.config.model import (
    AttributeMapping,
    IdentifierExclusion,
    IdentifierMapping,
    IdrConfig,
    Rule,
    Source,
    SourceTable,
    Strategy,
    SurvivorshipRule,
)
from app.config.store import TABLES
from app.core.errors import ConfigError
from app.core.vocabulary import GOLDEN_ALLOW_EXCLUDED_VALUES
from app.platforms.base import Adapter
from app.platforms.names import has_semicolon as _has_semicolon
from app.platforms.names import parse_table_fqn
from app.platforms.names import short_error as _short
from app.schema import DEFAULT_CONFIG

READ_DIALECT = "duckdb"  # the same as app.platforms.names.READ_DIALECT

# Document key -> row model. ``settings`` is a mapping and is checked separately.
SECTIONS: dict[str, type[BaseModel]] = {key: model for key, (_, model) in TABLES.items()}

# Known settings and the smallest value each accepts.
# Every integer in the configuration fits a 32-bit INTEGER column on every platform.
INT_MAX = 2**31 - 1


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


SETTINGS_MIN: dict[str, int] = {
    "large_cluster_threshold": 1,
    "dry_run_retention_days": 0,
    "dry_run_keep_last": 0,
    "max_cc_rounds": 1,
}

# Known true/false settings.
SETTINGS_BOOL: frozenset[str] = frozenset({GOLDEN_ALLOW_EXCLUDED_VALUES})
_BOOL_TEXT = {"true": "true", "false": "false", "1": "true", "0": "false", "yes": "true", "no": "false"}

_INTEGER = re.compile(r"[+-]?\d+")

# Used when a source's table_fqn has no schema part. Adapters may override by
# defining ``default_schema``; DuckDB's is "main".
_FALLBACK_SCHEMA = "main"

# Scalar functions that read process state or mutate sequences: not allowed in a
# key/identifier/attribute expression even though they are "scalar".
_DENIED_SCALARS = frozenset(
    {"getenv", "current_setting", "getvariable", "set_variable", "nextval", "currval", "setseed"}
)

# Node types that can never appear inside a scalar expression over one row.
_DENIED_NODES: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Query, "subqueries / SELECT are not allowed"),
    (exp.Subquery, "subqueries are not allowed"),
    (exp.Table, "table references are not allowed"),
    (exp.Window, "window functions are not allowed"),
    (exp.AggFunc, "aggregate functions are not allowed"),
    (exp.UDTF, "set-returning functions are not allowed"),
    (exp.Star, "'*' is not allowed"),
    (exp.Columns, "COLUMNS(...) is not allowed"),
    (exp.Placeholder, "parameters/placeholders are not allowed"),
    (exp.Parameter, "parameters/placeholders are not allowed"),
    (exp.Alias, "aliases are not allowed; give only the expression"),
    (exp.Command, "statements are not allowed"),
    (exp.DDL, "statements are not allowed"),
    (exp.DML, "statements are not allowed"),
)

# Non-statement roots that are still not scalar expressions.
_FRAGMENTS = (exp.Star, exp.Alias, exp.Columns, exp.Placeholder, exp.Parameter)


# ---------------------------------------------------------------------- errors
@dataclass
class _Errors:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append({"field": path, "message": message})

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        n = len(self.items)
        head = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        more = f" (and {n - 1} more)" if n > 1 else ""
        raise ConfigError(f"invalid configuration: {head}{more}", errors=list(self.items))


def _loc_path(prefix: str, loc: Iterable[Any]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _pydantic_message(err: Mapping[str, Any]) -> str:
    """A user-facing message for one pydantic error (enum errors list allowed values)."""
    kind = err.get("type")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "enum":
        return f"{value!r} is not allowed; expected one of: {ctx.get('expected', '')}"
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch" and err.get("loc", ())[-1:] == ("reconcile_deletes",):
        return f"{value!r} is not allowed; expected never, every_run or an interval such as 30m, 6h, 7d"
    return str(err.get("msg", "invalid value"))


# ---------------------------------------------------------------------- SQL parsing
@lru_cache(maxsize=1)
def _denied_function_names() -> frozenset[str]:
    """DuckDB function names sqlglot may not recognise as aggregate/table/window functions.

    The canonical dialect is DuckDB, so its catalog is the authority on what a bare
    function name means, whichever warehouse the config later runs on.
    """
    import duckdb  # local: only needed when an unknown function name shows up

    with duckdb.connect(":memory:") as conn:
        rows = conn.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions()").fetchall()
    scalar = {n.lower() for n, t in rows if t in ("scalar", "macro")}
    denied = {n.lower() for n, t in rows if t in ("aggregate", "window", "pragma")}
    # range()/generate_series() exist as scalar (list-returning) too; keep those.
    denied |= {n.lower() for n, t in rows if t in ("table", "table_macro") and n.lower() not in scalar}
    return frozenset(denied | _DENIED_SCALARS)


def _lambda_params(node: exp.Expression) -> set[str]:
    """Names bound by enclosing lambdas (``x -> lower(x)``); they are not columns."""
    names: set[str] = set()
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Lambda):
            names |= {p.name.lower() for p in parent.expressions}
        parent = parent.parent
    return names


def _expression_problems(
    text: str, columns: set[str] | None, platform: str | None = None
) -> tuple[exp.Expression | None, list[str]]:
    if not text or not text.strip():
        return None, ["expression is empty"]
    if _has_semicolon(text):
        return None, ["';' is not allowed: give a single expression, not statements"]
    try:
        parsed = sqlglot.parse(text, read=READ_DIALECT)
    except (ParseError, TokenError) as e:
        return None, [f"not a valid SQL expression: {_short(e)}"]
    stmts = [s for s in parsed if s is not None]
    if len(stmts) != 1:
        return None, ["give exactly one expression"]
    tree = stmts[0]
    scalar_root = isinstance(tree, exp.Condition | exp.Interval) and not isinstance(tree, exp.PropertyEQ)
    # Fragments like '*' or 'x AS y' get their specific message from the walk below.
    if not scalar_root and not isinstance(tree, _FRAGMENTS):
        return None, [f"must be a scalar expression, not a {tree.key.upper()} statement"]

    problems: list[str] = []
    seen: set[str] = set()

    def once(msg: str) -> None:
        if msg not in seen:
            seen.add(msg)
            problems.append(msg)

    unknown: list[str] = []
    for node in tree.walk():
        for kind, msg in _DENIED_NODES:
            if isinstance(node, kind):
                once(msg)
        if isinstance(node, exp.Func):
            # sqlglot knows only some DuckDB functions; check the name against DuckDB's catalog.
            if isinstance(node, exp.Anonymous):
                names = {node.name.lower()}
            else:
                names = {n.lower() for n in type(node).sql_names()}
            denied = sorted(names & _denied_function_names())
            if denied:
                once(f"function {denied[0]}() is not allowed in a scalar expression")
            elif not isinstance(node, exp.Binary | exp.Unary):  # operators (AND, OR, ||) are not calls
                shown, answers = functions.names_of(node)
                if not answers & functions.allowed(platform):
                    once(
                        f"function {shown}() is not allowed: expressions may call pure scalar string, numeric, "
                        f"date and conditional functions only (app/config/functions.py lists them)"
                    )
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                once(
                    f"table-qualified column {node.sql(dialect=READ_DIALECT)!r} is not allowed; "
                    "use the bare column name (struct fields: col['field'])"
                )
                continue
            name = node.name.lower()
            if (
                columns is not None
                and name not in columns
                and name not in _lambda_params(node)
                and name not in unknown
            ):
                unknown.append(name)
    if unknown:
        known = ", ".join(sorted(columns or ())) or "(none)"
        problems.append(f"unknown column(s) {', '.join(unknown)}; the source table has: {known}")
    if not problems and not scalar_root:
        problems.append("must be a single scalar expression")
    if problems:
        return None, problems
    # Comments would be re-emitted into generated SQL: drop them.
    for node in tree.walk():
        node.comments = None
    return tree, []


def validate_expression(expr: str, columns: set[str] | None, *, field: str = "expression") -> exp.Expression:
    """Parse ``expr`` (DuckDB dialect) and return it if it is one safe scalar expression.

    ``columns`` are the source table's column names (any case); ``None`` skips the
    column check (no warehouse at hand). Raises ``ConfigError`` naming ``field``.
    """
    cols = None if columns is None else {c.lower() for c in columns}
    tree, problems = _expression_problems(expr, cols)
    if tree is None:
        errors = [{"field": field, "message": m} for m in problems]
        raise ConfigError(f"{field}: {'; '.join(problems)}", field=field, errors=errors)
    return tree


def _source_columns(adapter: Adapter, table: exp.Table) -> set[str]:
    schema = table.db or getattr(adapter, "default_schema", _FALLBACK_SCHEMA)
    cols = adapter.columns(schema, table.name)
    if not cols and (schema != schema.lower() or table.name != table.name.lower()):
        # Unquoted names are case-insensitive in the warehouse; the catalog may store them lower.
        cols = adapter.columns(schema.lower(), table.name.lower())
    return {c.lower() for c in cols}


# ---------------------------------------------------------------------- document
def _rows(doc: Mapping[str, Any], errs: _Errors) -> dict[str, list[tuple[int, BaseModel]]]:
    """Validate each row on its own so one bad row does not hide the others' problems."""
    out: dict[str, list[tuple[int, BaseModel]]] = {}
    for key, model in SECTIONS.items():
        out[key] = []
        raw = doc.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            errs.add(key, "must be a list")
            continue
        for i, item in enumerate(raw):
            path = f"{key}[{i}]"
            if isinstance(item, BaseModel):
                item = item.model_dump()
            if not isinstance(item, Mapping):
                errs.add(path, "must be a mapping of field: value")
                continue
            try:
                out[key].append((i, model.model_validate(dict(item))))
            except ValidationError as e:
                for err in e.errors():
                    errs.add(_loc_path(path, err["loc"]), _pydantic_message(err))
    return out


def _settings(raw: Any, errs: _Errors) -> dict[str, str]:
    out: dict[str, str] = {}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        errs.add("settings", "must be a mapping of key: value")
        return out
    for key, value in raw.items():
        path = f"settings.{key}"
        if key in SETTINGS_BOOL:
            text = str(value).lower() if isinstance(value, bool | str) else None
            if text not in _BOOL_TEXT:
                errs.add(path, f"must be true or false, got {value!r}")
            else:
                out[key] = _BOOL_TEXT[text]
            continue
        if key not in SETTINGS_MIN:
            if key in DEFAULT_CONFIG and isinstance(value, str | int) and not isinstance(value, bool):
                # A key `idr init` knows but this module does not check yet: keep it, so a
                # config read back from the warehouse can always be applied again.
                out[key] = str(value)
            else:
                errs.add(path, f"unknown setting; known: {', '.join([*SETTINGS_MIN, *sorted(SETTINGS_BOOL)])}")
            continue
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            digits = value.strip().lstrip("+-").lstrip("0")
            # int() of thousands of digits is refused by Python itself: the bound says it first.
            number = int(value.strip()) if len(digits) <= 12 else (INT_MAX + 1) * (-1 if "-" in value else 1)
        if number is None:
            errs.add(path, f"must be an integer, got {_short_repr(value)}")
        elif number > INT_MAX:
            errs.add(path, f"must be <= {INT_MAX}")
        elif number < SETTINGS_MIN[key]:
            errs.add(path, f"must be >= {SETTINGS_MIN[key]}, got {number}")
        else:
            out[key] = str(number)
    return out


def _raw_values(doc: Mapping[str, Any], section: str, key: str) -> set[str]:
    raw = doc.get(section)
    if not isinstance(raw, list):
        return set()
    return {r[key] for r in raw if isinstance(r, Mapping) and isinstance(r.get(key), str)}


def _duplicates(
    rows: list[tuple[int, Any]], section: str, attr: str, key: Any, what: str, errs: _Errors
) -> None:
    first: dict[Any, int] = {}
    for i, row in rows:
        k = key(row)
        if k is None:
            continue
        if k in first:
            errs.add(f"{section}[{i}].{attr}", f"duplicate {what} {k!r} (also {section}[{first[k]}])")
        else:
            first[k] = i


def validate_config(doc: Mapping[str, Any] | IdrConfig, adapter: Adapter | None = None) -> IdrConfig:
    """Validate a whole configuration document; raise ``ConfigError`` listing every problem.

    With an ``adapter``, source tables and the columns that expressions and watermark
    columns reference are checked against the warehouse.
    """
    errs = _Errors()
    platform = adapter.platform if adapter is not None else None  # whose function allow-list
    if isinstance(doc, IdrConfig):
        doc = doc.model_dump()
    if not isinstance(doc, Mapping):
        errs.add("", "the configuration must be a mapping with keys: " + ", ".join([*SECTIONS, "settings"]))
        errs.raise_if_any()
    for key in doc:
        if key not in SECTIONS and key != "settings":
            errs.add(str(key), f"unknown section; expected one of: {', '.join([*SECTIONS, 'settings'])}")

    rows = _rows(doc, errs)
    settings = _settings(doc.get("settings"), errs)

    sources: list[tuple[int, SourceTable]] = rows["sources"]  # type: ignore[assignment]
    _duplicates(sources, "sources", "table_id", lambda r: r.table_id, "table_id", errs)
    # Reference targets come from the raw rows too, so one invalid row (say a bad
    # canonicalize) does not cascade into "unknown identifier_type" errors elsewhere.
    table_ids = {s.table_id for _, s in sources} | _raw_values(doc, "sources", "table_id")

    # Columns per table_id; None = unknown (no adapter, or the table itself is bad).
    columns: dict[str, set[str] | None] = {}
    for i, src in sources:
        path = f"sources[{i}]"
        columns.setdefault(src.table_id, None)
        try:
            table = parse_table_fqn(src.table_fqn)
        except ConfigError as e:
            errs.add(f"{path}.table_fqn", e.message)
            table = None
        cols: set[str] | None = None
        if table is not None and adapter is not None:
            cols = _source_columns(adapter, table) or None
            if cols is not None:
                columns[src.table_id] = cols
            elif src.is_active:
                # An inactive source is never read, so its table may be gone; it is
                # checked again when it is re-activated.
                errs.add(f"{path}.table_fqn", f"table {src.table_fqn!r} does not exist in the warehouse")
        _check_expr(src.entity_key_expr, cols, f"{path}.entity_key_expr", errs, platform)
        if src.deleted_flag_expr is not None:
            _check_expr(src.deleted_flag_expr, cols, f"{path}.deleted_flag_expr", errs, platform)
        if src.watermark_column is not None:
            wm = src.watermark_column.strip().lower()
            if not wm:
                errs.add(f"{path}.watermark_column", "must not be empty")
            elif cols is not None and wm not in cols:
                errs.add(
                    f"{path}.watermark_column",
                    f"column {src.watermark_column!r} does not exist in {src.table_fqn}",
                )

    def ref_table(section: str, i: int, table_id: str) -> bool:
        if table_id not in table_ids:
            errs.add(f"{section}[{i}].table_id", f"unknown table_id {table_id!r}; define it under sources")
            return False
        return True

    trust: list[tuple[int, Source]] = rows["source_trust"]  # type: ignore[assignment]
    _duplicates(trust, "source_trust", "table_id", lambda r: r.table_id, "table_id", errs)
    for i, s in trust:
        ref_table("source_trust", i, s.table_id)

    rules: list[tuple[int, Rule]] = rows["rules"]  # type: ignore[assignment]
    _duplicates(rules, "rules", "rule_id", lambda r: r.rule_id, "rule_id", errs)
    _duplicates(
        rules,
        "rules",
        "identifier_type",
        lambda r: r.identifier_type if r.is_active else None,
        "active rule for identifier_type",
        errs,
    )
    rule_types = {r.identifier_type for _, r in rules} | _raw_values(doc, "rules", "identifier_type")

    def ref_type(section: str, i: int, identifier_type: str) -> None:
        if identifier_type not in rule_types:
            errs.add(
                f"{section}[{i}].identifier_type",
                f"no rule for identifier_type {identifier_type!r}; define it under rules",
            )

    mappings: list[tuple[int, IdentifierMapping]] = rows["identifier_mappings"]  # type: ignore[assignment]
    for i, m in mappings:
        known = ref_table("identifier_mappings", i, m.table_id)
        ref_type("identifier_mappings", i, m.identifier_type)
        cols = columns.get(m.table_id) if known else None
        _check_expr(m.identifier_value_expr, cols, f"identifier_mappings[{i}].identifier_value_expr", errs, platform)

    exclusions: list[tuple[int, IdentifierExclusion]] = rows["exclusions"]  # type: ignore[assignment]
    for i, x in exclusions:
        ref_type("exclusions", i, x.identifier_type)

    attrs: list[tuple[int, AttributeMapping]] = rows["attribute_mappings"]  # type: ignore[assignment]
    _duplicates(
        attrs,
        "attribute_mappings",
        "attribute_name",
        lambda r: (r.table_id, r.attribute_name),
        "(table_id, attribute_name)",
        errs,
    )
    for i, a in attrs:
        known = ref_table("attribute_mappings", i, a.table_id)
        cols = columns.get(a.table_id) if known else None
        _check_expr(a.attribute_expr, cols, f"attribute_mappings[{i}].attribute_expr", errs, platform)
    attribute_names = {a.attribute_name for _, a in attrs} | _raw_values(
        doc, "attribute_mappings", "attribute_name"
    )

    surv: list[tuple[int, SurvivorshipRule]] = rows["survivorship_rules"]  # type: ignore[assignment]
    _duplicates(
        surv, "survivorship_rules", "attribute_name", lambda r: r.attribute_name, "attribute_name", errs
    )
    for i, s in surv:
        path = f"survivorship_rules[{i}]"
        if s.attribute_name not in attribute_names:
            errs.add(
                f"{path}.attribute_name",
                f"attribute {s.attribute_name!r} is not mapped under attribute_mappings",
            )
        if s.source_priority_list is not None:
            entries = [e.strip() for e in s.source_priority_list.split(",")]
            if any(not e for e in entries):
                errs.add(
                    f"{path}.source_priority_list", "must be comma-separated table_ids with no empty entry"
                )
            bad = [e for e in entries if e and e not in table_ids]
            if bad:
                errs.add(f"{path}.source_priority_list", f"unknown table_id(s): {', '.join(bad)}")
        elif s.strategy == Strategy.SOURCE_PRIORITY and not trust:
            errs.add(
                f"{path}.source_priority_list",
                "SOURCE_PRIORITY needs a source_priority_list (or source_trust ranks)",
            )
        if s.recency_field is not None and s.recency_field not in attribute_names:
            errs.add(f"{path}.recency_field", f"recency_field {s.recency_field!r} is not a mapped attribute")

    errs.raise_if_any()
    return IdrConfig.model_validate(
        {key: [r for _, r in rows[key]] for key in SECTIONS} | {"settings": settings}
    )


def _check_expr(text: str, cols: set[str] | None, path: str, errs: _Errors, platform: str | None = None) -> None:
    _, problems = _expression_problems(text, cols, platform)
    for msg in problems:
        errs.add(path, msg)
