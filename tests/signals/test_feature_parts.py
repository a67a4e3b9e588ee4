"""``features`` is written in two parts (scored rows, then authenticated rows without the
scored-only joins); the table must hold exactly what the one-statement ``f_features`` holds."""

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
        con.execute("INSERT INTO features SELECT * FROM f_features")

    monkeypatch.setattr(engine, "_write_features", one_statement)
    analyze(bundle, tmp_path / "single")
    single = _features(tmp_path / "single")
    assert parts == single
    paths = {row[17] for row in single}  # the ``path`` column
    assert "authenticated" in paths and paths - {"authenticated"}, paths


def test_unknown_part_is_refused() -> None:
    assert FEATURE_PARTS == ("scored", "authenticated")
    with pytest.raises(ValueError, match="unknown part"):
        final_sql("NULL AS x", "everything")
