"""``features`` is written in two parts (scored rows, then authenticated rows without the
scored-only joins, into their own narrow table); the view must show exactly what storing the
one-statement ``f_features`` shows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dsguard.pipeline import analyze
from dsguard.signals import engine
from dsguard.signals.features import FEATURE_PARTS, final_sql
from dsguard.synth import SynthConfig, generate


def _features(out: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(out / "evidence.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM features ORDER BY ALL").fetchall()


def test_two_part_write_equals_the_single_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=30, days=6, seed=3))
    analyze(bundle, tmp_path / "parts")
    parts = _features(tmp_path / "parts")

    def one_statement(con: duckdb.DuckDBPyConnection) -> None:
        engine.store_features(con, "f_features")

    monkeypatch.setattr(engine, "_write_features", one_statement)
    analyze(bundle, tmp_path / "single")
    single = _features(tmp_path / "single")
    assert parts == single
    with duckdb.connect(str(tmp_path / "single" / "evidence.duckdb"), read_only=True) as con:
        paths = {r[0] for r in con.execute("SELECT DISTINCT path FROM features").fetchall()}
    assert "authenticated" in paths and paths - {"authenticated"}, paths


def test_authenticated_rows_keep_their_path_and_coverage_facts_only(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=30, days=6, seed=3))
    analyze(bundle, tmp_path / "out")
    with duckdb.connect(str(tmp_path / "out" / "evidence.duckdb"), read_only=True) as con:
        kept = [r[0] for r in con.execute(f"DESCRIBE {engine.AUTHENTICATED_TABLE}").fetchall()]
        assert kept == list(engine.AUTHENTICATED_COLUMNS)
        # The message detail of authenticated rows is in ``messages``, not repeated here.
        rows = con.execute(
            """SELECT path = 'authenticated', count(*), count(subject), count(sender_ipv4),
                   count(p1_internal)
               FROM features GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        (scored, n, subjects, ips, p1), (auth, m, auth_subjects, auth_ips, auth_p1) = rows
        assert not scored and auth and n and m
        assert subjects > 0 and auth_subjects == 0
        assert ips > 0 and auth_ips > 0 and p1 == n and auth_p1 == m
        (total,) = con.execute(
            f"SELECT (SELECT count(*) FROM {engine.SCORED_TABLE}) "
            f"+ (SELECT count(*) FROM {engine.AUTHENTICATED_TABLE})"
        ).fetchone()
        assert total == n + m


def test_a_store_whose_features_and_scores_are_still_tables_is_rebuilt(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=30, days=6, seed=3))
    analyze(bundle, tmp_path / "out")
    before = _features(tmp_path / "out")
    alerts = (tmp_path / "out" / "alerts.jsonl").read_text()
    with duckdb.connect(str(tmp_path / "out" / "evidence.duckdb")) as con:  # the old layout
        for name in ("features", "scores"):
            con.execute(f"CREATE TABLE old_{name} AS SELECT * FROM {name}")
            con.execute(f"DROP VIEW {name}")
            con.execute(f"ALTER TABLE old_{name} RENAME TO {name}")
        con.execute("UPDATE detect_state SET value = 'old' WHERE key = 'fingerprint'")
    ctx = analyze(bundle, tmp_path / "out")
    assert ctx.feature_run.mode == "full"
    assert _features(tmp_path / "out") == before
    assert (tmp_path / "out" / "alerts.jsonl").read_text() == alerts
    with duckdb.connect(str(tmp_path / "out" / "evidence.duckdb"), read_only=True) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {"features", "scores"} <= views


def test_unknown_part_is_refused() -> None:
    assert FEATURE_PARTS == ("scored", "authenticated")
    with pytest.raises(ValueError, match="unknown part"):
        final_sql("NULL AS x", "everything")
