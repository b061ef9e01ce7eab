"""Functions a configuration expression may call: pure scalar functions only (string,
numeric, date, conditional), per platform. No sleep, no error(), no table functions, no
file, network or process access, nothing that reads or changes state.

Names are the canonical (DuckDB-dialect) spelling a configuration is written in; sqlglot
transpiles them for the other platforms. COMMON holds on every platform; EXTRA adds what
one platform also offers.
"""

from __future__ import annotations

from sqlglot import exp

COMMON: frozenset[str] = frozenset(
    {
        # string
        "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim", "replace", "regexp_replace",
        "regexp_extract", "regexp_matches", "regexp_like", "split_part", "substring", "substr", "left", "right",
        "concat", "concat_ws", "length", "char_length", "character_length", "lpad", "rpad", "reverse",
        "translate", "strpos", "position", "str_position", "instr", "starts_with", "ends_with", "contains",
        "repeat", "md5", "sha256", "initcap", "ascii", "chr",
        # numeric
        "abs", "round", "floor", "ceil", "ceiling", "sign", "mod", "greatest", "least", "power", "pow", "sqrt",
        "ln", "log", "exp", "trunc",
        # date and time (of the value, never of the clock)
        "date_trunc", "timestamp_trunc", "date_part", "extract", "year", "month", "day", "strftime", "time_to_str",
        "strptime", "str_to_time", "str_to_date", "to_date", "make_date", "date_diff", "datediff", "date_add",
        "date_sub", "ts_or_ds_to_date", "unix_to_time", "time_str_to_time", "dayofweek", "dayofyear",
        # lists (values of one row; lambdas are pure)
        "array", "list_value", "transform", "list_transform", "filter", "list_filter", "array_filter",
        "array_to_string", "array_join", "list_extract", "array_length", "array_size", "len", "list_concat",
        "array_concat", "list_contains", "array_contains", "flatten", "array_distinct", "list_distinct",
        "list_sort", "array_sort", "sort_array", "split", "string_split", "str_split", "string_to_array",
        # conditional and conversion
        "coalesce", "ifnull", "nvl", "nullif", "if", "iif", "case", "cast", "try_cast", "safe_cast",
    }
)  # fmt: skip

EXTRA: dict[str, frozenset[str]] = {
    "duckdb": frozenset({"strip_accents", "nfc_normalize", "strlen", "prefix", "suffix", "list_extract"}),
    "snowflake": frozenset(),
    "bigquery": frozenset(),
    "spark": frozenset(),
    "databricks": frozenset(),
}


def allowed(platform: str | None) -> frozenset[str]:
    """The functions of ``platform``; None: the canonical dialect's (DuckDB)."""
    return COMMON | EXTRA.get(platform or "duckdb", frozenset())


def names_of(node: exp.Func) -> tuple[str, set[str]]:
    """(the name to show, every name the node answers to)."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        return name, {name}
    names = {n.lower() for n in type(node).sql_names()} | {type(node).key.lower()}
    return type(node).sql_names()[0].lower(), names
