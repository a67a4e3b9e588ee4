"""DuckDB SQL → Spark SQL: sqlglot plus the small set of AST rules we own.

The feature, scoring and campaign SQL is written once, in DuckDB's dialect, inside a portable
subset (``docs/spark.md``). sqlglot translates most of it; what it gets wrong, it gets wrong in
one of two ways, and each rule here handles one case (and has its own unit test):

* **rewrites**: constructs sqlglot passes through that Spark rejects or computes differently
  (``COUNT(DISTINCT x) OVER`` → ``SIZE(COLLECT_SET(x) OVER``; ``list(DISTINCT x)`` →
  ``COLLECT_SET(x)``);
* **guards**: constructs that would transpile *silently wrong* (seconds-truncating ``epoch``,
  off-by-one ``dayofweek``, ``ORDER BY`` inside an aggregate, ``FILTER`` in a window,
  first-match-only ``regexp_replace``). They raise ``UnportableSql`` so the mistake is
  found when the SQL is written, not in a cluster's results.

``to_spark`` also asks sqlglot to raise on anything it cannot express
(``unsupported_level=ErrorLevel.RAISE``), so a dropped clause (``EXCLUDE CURRENT ROW``) fails
loudly too.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import ErrorLevel, exp


class UnportableSql(ValueError):
    """The SQL uses a construct that Spark would compute differently; names the construct."""


Rule = Callable[[exp.Expression], exp.Expression]


# ----------------------------------------------------------------------------- rewrites
def count_distinct_window(node: exp.Expression) -> exp.Expression:
    """``COUNT(DISTINCT x) OVER w`` → ``SIZE(COLLECT_SET(x) OVER w)``.

    Spark rejects DISTINCT in window aggregates (``DISTINCT_WINDOW_FUNCTION_UNSUPPORTED``).
    The rewrite is for Spark only: on DuckDB the set form is several times slower.
    """
    if (
        isinstance(node, exp.Window)
        and isinstance(node.this, exp.Count)
        and isinstance(node.this.this, exp.Distinct)
    ):
        args = node.this.this.expressions
        if len(args) != 1:
            raise UnportableSql("COUNT(DISTINCT a, b) OVER (...) has no Spark equivalent")
        window = node.copy()
        window.set("this", exp.Anonymous(this="COLLECT_SET", expressions=[args[0].copy()]))
        return exp.Anonymous(this="SIZE", expressions=[window])
    return node


def distinct_list(node: exp.Expression) -> exp.Expression:
    """``list(DISTINCT x)`` → ``COLLECT_SET(x)`` (sqlglot writes ``COLLECT_LIST(DISTINCT x)``,
    which not every Spark version accepts). Order is unspecified on both engines; shared SQL
    sorts such lists (``list_sort``) before anyone reads them."""
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Distinct):
        args = node.this.expressions
        if len(args) == 1:
            return exp.Anonymous(this="COLLECT_SET", expressions=[args[0].copy()])
    return node


# ----------------------------------------------------------------------------- guards
def no_ordered_aggregate(node: exp.Expression) -> exp.Expression:
    """``list(x ORDER BY y)``: sqlglot drops the ORDER BY for Spark."""
    if isinstance(node, exp.ArrayAgg | exp.GroupConcat) and isinstance(node.this, exp.Order):
        raise UnportableSql(f"ordered aggregate {node.sql('duckdb')!r} loses its order on Spark")
    return node


def no_filter_in_window(node: exp.Expression) -> exp.Expression:
    """``agg FILTER (WHERE ...) OVER``: Spark 3.5 rejects it; use ``CASE`` inside the agg."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Filter):
        raise UnportableSql("FILTER in a window aggregate; use CASE WHEN inside the aggregate")
    return node


_SILENT = {
    exp.TimeToUnix: "epoch(ts) truncates to whole seconds on Spark (use interval frames)",
    exp.DayOfWeek: "dayofweek is 0-based on DuckDB and 1-based on Spark",
    exp.DayOfWeekIso: "isodow transpiles to a wrong expression on Spark",
}


def no_silent_mismatch(node: exp.Expression) -> exp.Expression:
    """Functions sqlglot maps to a Spark function with different results."""
    for kind, why in _SILENT.items():
        if isinstance(node, kind):
            raise UnportableSql(why)
    return node


def no_first_match_replace(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``regexp_replace`` without ``'g'`` replaces the first match only; Spark's
    replaces all. Harmless only when the pattern is anchored at the start."""
    if isinstance(node, exp.RegexpReplace):
        mods = node.args.get("modifiers")
        pattern = node.expression
        global_ = isinstance(mods, exp.Literal) and "g" in mods.this
        anchored = isinstance(pattern, exp.Literal) and pattern.this.startswith("^")
        if not global_ and not anchored:
            raise UnportableSql(
                f"regexp_replace without 'g' on an unanchored pattern ({pattern.sql()}): "
                "DuckDB replaces the first match, Spark all of them"
            )
    return node


def no_groups_frame(node: exp.Expression) -> exp.Expression:
    """``GROUPS`` frames do not exist on Spark."""
    if isinstance(node, exp.WindowSpec) and str(node.args.get("kind") or "").upper() == "GROUPS":
        raise UnportableSql("GROUPS window frames do not exist on Spark")
    return node


RULES: tuple[Rule, ...] = (
    no_ordered_aggregate,
    no_filter_in_window,
    no_silent_mismatch,
    no_first_match_replace,
    no_groups_frame,
    count_distinct_window,
    distinct_list,
)


def rewrite(tree: exp.Expression, rules: tuple[Rule, ...] = RULES) -> exp.Expression:
    """Apply every rule to every node (guards raise, rewrites replace)."""
    for rule in rules:
        tree = tree.transform(rule, copy=False)
    return tree


def to_spark(sql: str) -> str:
    """DuckDB SQL (one statement) as Spark SQL, or ``UnportableSql``/a sqlglot error."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = rewrite(tree)
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
