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


def _same_results(a: Path, b: Path) -> None:
    assert (a / "alerts.jsonl").read_text() == (b / "alerts.jsonl").read_text()
    assert _table(a, "features") == _table(b, "features")
    assert _table(a, "scores") == _table(b, "scores")


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


def test_older_data_falls_back_to_a_full_run(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    add_days(all_days, bundle, days[-1])
    hole = bundle / f"email_events_{days[3]}.csv"
    kept = hole.read_bytes()
    hole.unlink()
    analyze(bundle, out)
    hole.write_bytes(kept)  # a day in the middle arrives late
    late = analyze(bundle, out)
    assert _mode(late) == "full" and "older" in late.feature_run.reason
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
