"""A tenant's EmailEvents as ``collect``'s JSON lines give what the same rows as CSV give.

End to end through ``analyze``: ``benchmarks/split_collect.py`` rewrites a small synthetic
tenant's CSV as collect's slices (small ones, so there are many files), and the alerts, the
row accounting and every stored message must match. The DuckDB path reads those files, and
the store checks their keys in batches; nothing here is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import duckdb
import pytest
from tests.spies import returns_of

from dsguard.evidence import store as store_module
from dsguard.pipeline import analyze
from dsguard.sources import emailevents
from dsguard.synth import SynthConfig, generate


def _messages(out: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(out / "evidence.duckdb"), read_only=True) as con:
        return con.execute(
            "SELECT * EXCLUDE (source_file, source_row) FROM messages ORDER BY ALL"
        ).fetchall()


def test_collect_files_analyse_as_the_csv_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    benchmark_script: Callable[[str], ModuleType],
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=40, days=6, seed=17))
    shaped = tmp_path / "collect"
    files = benchmark_script("split_collect").split(bundle, shaped, rows_per_file=700)
    assert files > 10
    layouts = returns_of(monkeypatch, emailevents, "stage_json_lines")
    monkeypatch.setattr(store_module, "BATCH_ROWS", 3_000)  # several batches
    csv = analyze(bundle, tmp_path / "out-csv")
    lines = analyze(shaped, tmp_path / "out-collect")
    assert [layout is not None for layout in layouts] == [True] * files
    assert lines.alerts and [a.model_dump() for a in lines.alerts] == [
        a.model_dump() for a in csv.alerts
    ]
    totals = [(f.source, f.read, f.loaded, f.duplicates, f.rejected) for f in csv.ingest.files]
    shaped_totals: dict[str, list[int]] = {}
    for f in lines.ingest.files:
        counts = shaped_totals.setdefault(f.source, [0, 0, 0, 0])
        for i, n in enumerate((f.read, f.loaded, f.duplicates, f.rejected)):
            counts[i] += n
    for source, *counts in totals:
        if source == "email_events":
            assert shaped_totals[source] == counts
    assert _messages(tmp_path / "out-collect") == _messages(tmp_path / "out-csv")
