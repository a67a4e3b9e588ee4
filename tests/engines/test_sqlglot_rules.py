"""The DuckDB → Spark rewrite rules, one test each, and the whole shared SQL transpiling."""

from __future__ import annotations

import pytest

sqlglot = pytest.importorskip("sqlglot")  # the [spark] extra; skipped where not installed

from sqlglot import exp  # noqa: E402

from dsguard.engines.sqlglot_rules import (  # noqa: E402
    UnportableSql,
    count_distinct_window,
    distinct_list,
    no_filter_in_window,
    no_first_match_replace,
    no_groups_frame,
    no_ordered_aggregate,
    no_silent_mismatch,
    rewrite,
    to_spark,
)
from dsguard.scoring.alerts import campaign_steps  # noqa: E402
from dsguard.scoring.score import score_sql  # noqa: E402
from dsguard.signals.engine import plan  # noqa: E402
from dsguard.signals.rules import catalogue  # noqa: E402


def _one(sql: str, rule: object) -> str:
    tree = sqlglot.parse_one(sql, read="duckdb")
    return rewrite(tree, (rule,)).sql(dialect="spark")  # type: ignore[arg-type]


def test_count_distinct_window_becomes_size_of_collect_set() -> None:
    out = _one(
        "SELECT count(DISTINCT r) OVER (PARTITION BY ip ORDER BY ts "
        "RANGE BETWEEN INTERVAL 60 MINUTE PRECEDING AND CURRENT ROW) FROM t",
        count_distinct_window,
    )
    assert "SIZE(COLLECT_SET(r) OVER (PARTITION BY ip ORDER BY ts" in out
    assert "INTERVAL '60' MINUTE PRECEDING" in out and "DISTINCT" not in out


def test_count_distinct_window_leaves_plain_aggregates_alone() -> None:
    out = _one("SELECT count(DISTINCT r) FROM t GROUP BY ip", count_distinct_window)
    assert out == "SELECT COUNT(DISTINCT r) FROM t GROUP BY ip"


def test_distinct_list_becomes_collect_set() -> None:
    out = _one(
        "SELECT list_sort(list(DISTINCT c) FILTER (WHERE c IS NOT NULL)) FROM t", distinct_list
    )
    assert out == "SELECT ARRAY_SORT(COLLECT_SET(c) FILTER(WHERE NOT c IS NULL)) FROM t"


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("SELECT list(x ORDER BY y) FROM t", no_ordered_aggregate),
        ("SELECT count(*) FILTER (WHERE a) OVER (PARTITION BY b) FROM t", no_filter_in_window),
        ("SELECT epoch(ts) FROM t", no_silent_mismatch),
        ("SELECT dayofweek(ts) FROM t", no_silent_mismatch),
        ("SELECT isodow(ts) FROM t", no_silent_mismatch),
        ("SELECT regexp_replace(s, '[0-9]+', '#') FROM t", no_first_match_replace),
    ],
)
def test_guards_reject_what_spark_computes_differently(sql: str, rule: object) -> None:
    with pytest.raises(UnportableSql):
        _one(sql, rule)


def test_first_match_replace_is_fine_when_global_or_anchored() -> None:
    assert "REGEXP_REPLACE" in _one(
        "SELECT regexp_replace(s, '[0-9]+', '#', 'g') FROM t", no_first_match_replace
    )
    assert "REGEXP_REPLACE" in _one(
        "SELECT regexp_replace(s, '^(re:)+', '') FROM t", no_first_match_replace
    )


def test_groups_frame_is_rejected() -> None:
    spec = exp.WindowSpec(kind="GROUPS")
    with pytest.raises(UnportableSql):
        no_groups_frame(spec)


def test_dropped_clauses_fail_loudly() -> None:
    with pytest.raises(sqlglot.errors.UnsupportedError):
        to_spark(
            "SELECT count(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 1 HOUR PRECEDING "
            "AND CURRENT ROW EXCLUDE CURRENT ROW) FROM t"
        )


def test_regex_backslashes_survive_spark_string_escaping() -> None:
    out = to_spark(r"SELECT regexp_matches(s, '\bvm\b|\s+') FROM t")
    assert out == r"SELECT s RLIKE '\\bvm\\b|\\s+' FROM t"


def test_every_shared_step_transpiles() -> None:
    rules = catalogue()
    steps = [*plan(), *campaign_steps(rules)]
    for step in steps:
        to_spark(step.sql)
    columns = {f for r in rules for f in r.fields()}
    sql = to_spark(score_sql("features", columns, rules))
    assert sql.startswith("SELECT s.*") and "`hit_dsg_self_001`" in sql
