"""The benchmark's pandas implementation must do the same detections as dsguard, or the ratio
in ``benchmarks/README.md`` compares different work. Same per-row scores and campaign count on
a small synthetic tenant; nothing here is timed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from dsguard.pipeline import analyze
from dsguard.synth import SynthConfig, generate


def test_pandas_scores_every_row_as_dsguard_does(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    pytest.importorskip("pandas")
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=60, days=8, seed=11))
    ctx = analyze(bundle, tmp_path / "out")
    with duckdb.connect(str(tmp_path / "out" / "evidence.duckdb"), read_only=True) as con:
        ours = {
            (n, r): round(s, 6)
            for n, r, s in con.execute(
                "SELECT network_message_id, recipient, score FROM scores"
            ).fetchall()
        }
    result = benchmark_script("pandas_detect").run(bundle)
    theirs = {
        (n, r): round(float(s), 6)
        for n, r, s in result["scores"].itertuples(index=False, name=None)
    }
    assert len(ours) > 100 and any(s > 0 for s in ours.values())
    assert theirs == ours
    assert result["campaigns"] == len(ctx.alerts)
