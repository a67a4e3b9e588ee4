"""Incremental scoring: analysing a period and then one more day gives exactly what a full
rerun over the whole period gives (alerts, features, scores), while computing only the new
day; anything that would make the baselines wrong falls back to a full run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dsguard.pipeline import AnalysisContext, analyze

AddDays = Callable[[Path, Path, str], Path]


def _table(out: Path, name: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(out / "evidence.duckdb"), read_only=True) as con:
        return con.execute(
            f"SELECT * FROM {name} ORDER BY network_message_id, recipient"
        ).fetchall()


# The baselines, in a form that does not depend on how many runs appended to them.
BASELINES = {
    "bl_days": "SELECT DISTINCT * FROM bl_days",
    "bl_sender_hours": "SELECT sk, hour_of_day, sum(n) FROM bl_sender_hours GROUP BY ALL",
    "bl_pairs": "SELECT sk, recipient, sum(n) FROM bl_pairs GROUP BY ALL",
    "bl_sources": "SELECT DISTINCT * FROM bl_sources",
    "bl_identity": "SELECT sender, sum(auth_sent), sum(total_sent) FROM bl_identity GROUP BY ALL",
    "bl_receivers": "SELECT DISTINCT * FROM bl_receivers",
    "bl_first_day": "SELECT * FROM bl_first_day",
}


def _baselines(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(out / "evidence.duckdb"), read_only=True) as con:
        return {
            name: [
                row
                for row in con.execute(f"{sql} ORDER BY ALL").fetchall()
                if not (name in ("bl_sender_hours", "bl_pairs") and row[-1] == 0)
            ]
            for name, sql in BASELINES.items()
        }


def _same_results(a: Path, b: Path) -> None:
    assert (a / "alerts.jsonl").read_text() == (b / "alerts.jsonl").read_text()
    assert _table(a, "features") == _table(b, "features")
    assert _table(a, "scores") == _table(b, "scores")
    assert _baselines(a) == _baselines(b)


def _mode(ctx: AnalysisContext) -> str:
    return ctx.feature_run.mode


@pytest.fixture(scope="module")
def month_then_day(
    daily: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, list[AnalysisContext]]:
    from tests.engines.conftest import bundle_until  # module-scoped: no function fixture

    all_days, days = daily
    root = tmp_path_factory.mktemp("incremental")
    bundle = bundle_until(all_days, root / "bundle", days[-2])
    out = root / "out"
    runs = [analyze(bundle, out)]
    bundle_until(all_days, bundle, days[-1])
    runs.append(analyze(bundle, out))
    return bundle, out, runs


def test_month_then_one_more_day_equals_a_full_rerun(
    month_then_day: tuple[Path, Path, list[AnalysisContext]], tmp_path: Path
) -> None:
    bundle, out, (month, plus_day) = month_then_day
    assert _mode(month) == "full"
    assert _mode(plus_day) == "incremental", plus_day.feature_run.reason
    # only the new day was computed
    assert 0 < plus_day.feature_run.new_rows < month.feature_run.new_rows / 4
    full = analyze(bundle, tmp_path / "full")
    assert _mode(full) == "full"
    assert full.alerts, "the tenant should raise alerts"
    _same_results(out, tmp_path / "full")


def test_day_by_day_equals_a_full_rerun(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    modes = []
    for last in days[-4:]:
        add_days(all_days, bundle, last)
        modes.append(_mode(analyze(bundle, out)))
    assert modes == ["full", "incremental", "incremental", "incremental"]
    analyze(bundle, tmp_path / "full")
    _same_results(out, tmp_path / "full")


def test_rerun_without_new_data_only_refreshes(
    month_then_day: tuple[Path, Path, list[AnalysisContext]], tmp_path: Path
) -> None:
    bundle, out, _ = month_then_day
    before = (out / "alerts.jsonl").read_text()
    again = analyze(bundle, out)
    assert _mode(again) == "refresh"
    assert (out / "alerts.jsonl").read_text() == before


def _without_then_with(
    bundle: Path, out: Path, held: Path
) -> tuple[AnalysisContext, AnalysisContext]:
    """Analyse ``bundle`` without the file ``held``, then again once it has arrived."""
    kept = held.read_bytes()
    held.unlink()
    before = analyze(bundle, out)
    held.write_bytes(kept)
    return before, analyze(bundle, out)


def test_a_late_day_rewinds_to_that_day(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-1])
    # a day near the end arrives late
    month, late = _without_then_with(bundle, out, bundle / f"email_events_{days[-3]}.csv")
    assert _mode(late) == "incremental", late.feature_run.reason
    assert f"recomputed from {days[-3]}" in late.feature_run.reason
    assert "rewind" in late.feature_run.seconds
    # the last three days were computed, not the period
    assert 0 < late.feature_run.new_rows < month.feature_run.new_rows / 2
    analyze(bundle, tmp_path / "full")
    _same_results(out, tmp_path / "full")


def _move_tail(bundle: Path, day: str, after: str, minutes: int) -> int:
    """Move every other message of the last ``minutes`` of ``day`` from its file into
    ``after``'s file, as an export cut by arrival time leaves them:
    an event ingested after midnight lands in the next day's file, one of the same minutes
    ingested sooner does not. Returns how many rows moved."""
    src, dst = bundle / f"email_events_{day}.csv", bundle / f"email_events_{after}.csv"
    cut = f"{day}T{(24 * 60 - minutes) // 60:02d}:{(24 * 60 - minutes) % 60:02d}"
    late = "Timestamp >= ? AND hash(NetworkMessageId) % 2 = 0"
    rel = "read_csv(?, all_varchar = true)"
    opts = "(HEADER, QUOTE '\"', ESCAPE '\"')"
    tmp_src, tmp_dst = src.with_suffix(".tmp"), dst.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM {rel} WHERE NOT ({late})) TO '{tmp_src}' {opts}", [str(src), cut]
    )
    con.execute(
        f"""COPY (SELECT * FROM {rel} WHERE {late}
                  UNION ALL SELECT * FROM {rel}) TO '{tmp_dst}' {opts}""",
        [str(src), cut, str(dst)],
    )
    row = con.execute(f"SELECT count(*) FROM {rel} WHERE {late}", [str(src), cut]).fetchone()
    tmp_src.replace(src)
    tmp_dst.replace(dst)
    return int(row[0]) if row else 0


def test_rows_from_the_day_before_rewind_to_that_day(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    """A daily export cut by arrival time holds the last minutes of the day before."""
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-1])
    assert _move_tail(bundle, days[-2], days[-1], minutes=180) > 0
    month, late = _without_then_with(bundle, out, bundle / f"email_events_{days[-1]}.csv")
    assert _mode(late) == "incremental", late.feature_run.reason
    assert f"recomputed from {days[-2]}" in late.feature_run.reason
    assert 0 < late.feature_run.new_rows < month.feature_run.new_rows / 3
    full = analyze(bundle, tmp_path / "full")
    assert full.alerts
    _same_results(out, tmp_path / "full")
    # and the next day extends the rewound baselines as usual
    again = analyze(bundle, out)
    assert _mode(again) == "refresh"
    _same_results(out, tmp_path / "full")


def test_late_rows_that_replace_message_trace_rows_rewind(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    """A message-trace export of the last days came first; the EmailEvents rows of its
    messages arrive later and replace the poorer trace rows (deleted, then inserted)."""
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-1])
    # The trace reports another source address than EmailEvents, so a replaced row leaves
    # baselines behind unless the rewind takes them out.
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT * REPLACE ('203.0.113.77' AS FromIP)
                      FROM read_csv(?, all_varchar = true))
                TO '{bundle / "message_trace.csv"}' (HEADER, QUOTE '"', ESCAPE '"')""",
            [str(all_days.parent / "bundle" / "message_trace.csv")],
        )
    assert _move_tail(bundle, days[-2], days[-1], minutes=180) > 0
    _, late = _without_then_with(bundle, out, bundle / f"email_events_{days[-1]}.csv")
    with duckdb.connect(str(out / "evidence.duckdb"), read_only=True) as con:
        (replaced,) = con.execute(
            "SELECT count(*) FROM ingest_changes WHERE tbl = 'messages' AND op = 'delete'"
        ).fetchone() or (0,)
    assert replaced, "the day's EmailEvents rows should replace message-trace rows"
    assert _mode(late) == "incremental", late.feature_run.reason
    assert "recomputed from" in late.feature_run.reason
    analyze(bundle, tmp_path / "full")
    _same_results(out, tmp_path / "full")


def test_rows_before_the_first_analysed_day_fall_back_to_a_full_run(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-1])
    _, late = _without_then_with(bundle, out, bundle / f"email_events_{days[0]}.csv")
    assert _mode(late) == "full" and "first analysed day" in late.feature_run.reason
    analyze(bundle, tmp_path / "full")
    _same_results(out, tmp_path / "full")


def test_tenant_change_falls_back_to_a_full_run(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-2])
    analyze(bundle, out)
    add_days(all_days, bundle, days[-1])
    registry = bundle / "exceptions.yaml"
    registry.write_text(registry.read_text().replace("EX-001", "EX-101"))
    changed = analyze(bundle, out)
    assert _mode(changed) == "full" and "tenant" in changed.feature_run.reason
    analyze(bundle, tmp_path / "full")
    _same_results(out, tmp_path / "full")
