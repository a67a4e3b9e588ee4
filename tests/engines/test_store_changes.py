"""What the store tells the detect stage: a journal of changes to the evidence tables, and
unchanged files skipped without being read again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dsguard.bundle import discover
from dsguard.evidence.store import EvidenceStore
from dsguard.scoring.alerts import build_alerts, campaign_alerts, campaign_rows

AddDays = Callable[[Path, Path, str], Path]


def _journal(store: EvidenceStore) -> list[tuple[object, ...]]:
    return store.con.execute("SELECT tbl, op, rows FROM ingest_changes ORDER BY seq").fetchall()


def test_ingest_journals_inserts_with_their_time_range(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    all_days, days = daily
    bundle = add_days(all_days, tmp_path / "b", days[1])
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest(discover(bundle), root=bundle)
        first = _journal(store)
        assert {t for t, op, _ in first if op == "insert"} >= {"messages", "signins"}
        (n,) = store.con.execute("SELECT count(*) FROM messages").fetchone() or (0,)
        assert sum(r for t, _, r in first if t == "messages") == n
        lo, hi = store.con.execute(
            "SELECT min(min_ts), max(max_ts) FROM ingest_changes WHERE tbl = 'messages'"
        ).fetchone() or (None, None)
        assert (lo, hi) == store.con.execute("SELECT min(ts), max(ts) FROM messages").fetchone()
        # the same files again: nothing read, nothing journalled
        summary = store.ingest(discover(bundle), root=bundle)
        assert all(f.skipped for f in summary.files)
        assert _journal(store) == first
        # one more day: only its rows
        add_days(all_days, bundle, days[2])
        store.ingest(discover(bundle), root=bundle)
        added = _journal(store)[len(first) :]
        assert [t for t, op, _ in added if op == "insert"].count("messages") == 1


def test_sql_campaigns_equal_the_python_reference(
    daily: tuple[Path, list[str]], tmp_path: Path, add_days: AddDays
) -> None:
    from dsguard.pipeline import analyze

    all_days, days = daily
    bundle = add_days(all_days, tmp_path / "b", days[-1])
    analyze(bundle, tmp_path / "out")
    with EvidenceStore(tmp_path / "out" / "evidence.duckdb") as store:
        fast = campaign_alerts(store.con)
        slow = build_alerts(campaign_rows(store.con))
    assert fast and [a.model_dump() for a in fast] == [a.model_dump() for a in slow]
