"""The one-pass phase replay gives exactly what replaying each phase on its own over the whole
``features`` table gives (the original formulation, kept here as the specification)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from dsguard.evidence.snapshot import Snapshot
from dsguard.evidence.store import EvidenceStore
from dsguard.governance.simulation import PHASES, REJECT_DIRECT_SEND_TODAY, simulate
from dsguard.pipeline import analyze
from dsguard.scoring.score import SUSPICIOUS_AT
from dsguard.synth import SynthConfig, generate
from dsguard.tenant import build_tenant, register


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("sim")
    generate(root / "bundle", SynthConfig(users=60, days=20, seed=5))
    analyze(root / "bundle", root / "out")
    with EvidenceStore(root / "out" / "evidence.duckdb") as store:
        register(store.con, build_tenant(Snapshot(store.con)))
        yield store.con


def _reference(con: duckdb.DuckDBPyConnection, predicate: str) -> dict[str, Any]:
    """One phase replayed over every row, as the simulation did before it was batched."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _ref AS
        SELECT f.network_message_id, f.sender_mail_from, f.sender_from,
               coalesce(f.sender_ipv4, f.sender_ipv6) AS source,
               coalesce({predicate}, false) AS rejected
        FROM features f"""
    )

    def distinct(col: str) -> list[str]:
        rows = con.execute(
            f"SELECT DISTINCT {col} FROM _ref WHERE rejected AND {col} IS NOT NULL ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    row = con.execute(
        "SELECT count(DISTINCT network_message_id) FROM _ref WHERE rejected"
    ).fetchone()
    unstopped = con.execute(
        """SELECT DISTINCT a.network_message_id FROM alert_messages a
           WHERE a.rank >= ? AND NOT EXISTS (
               SELECT 1 FROM _ref s WHERE s.network_message_id = a.network_message_id
               AND s.rejected)
           ORDER BY 1""",
        [int(SUSPICIOUS_AT)],
    ).fetchall()
    out = {
        "rejected_messages": row[0] if row else 0,
        "rejected_p1_senders": distinct("lower(sender_mail_from)"),
        "rejected_p2_senders": distinct("lower(sender_from)"),
        "rejected_sources": distinct("source"),
        "unstopped_suspicious": [r[0] for r in unstopped],
    }
    con.execute("DROP TABLE _ref")
    return out


def _count_rejected(con: duckdb.DuckDBPyConnection, predicate: str, nmids: list[str]) -> int:
    row = con.execute(
        f"""SELECT count(DISTINCT network_message_id) FROM features f
            WHERE list_contains(?, network_message_id) AND coalesce({predicate}, false)""",
        [nmids],
    ).fetchone()
    return int(row[0]) if row else 0


def _check(con: duckdb.DuckDBPyConnection) -> list[Any]:
    phases = simulate(con)
    predicates = {0: REJECT_DIRECT_SEND_TODAY, **{p.number: p.rejects for p in PHASES}}
    assert [p.phase for p in phases] == [0, 1, 2, 3, 4]
    for result in phases:
        expected = _reference(con, predicates[result.phase])
        got = result.model_dump(include=set(expected))
        assert got == expected, result.phase
    last = phases[-1]
    assert last.unstopped_suspicious
    kept = _count_rejected(con, predicates[3], last.unstopped_suspicious)
    assert last.notes[-1].endswith(f"would still stop {kept} of them.")
    # The working table does not outlive the call.
    temp = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_sim'"
    ).fetchone()
    assert temp == (0,)
    return phases


def test_batched_replay_matches_each_phase_replayed_alone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    phases = _check(con)
    # The data exercises what the rewrite must keep: rejections and misses.
    assert all(p.rejected_messages for p in phases)


def test_suspicious_mail_no_phase_sees(con: duckdb.DuckDBPyConnection) -> None:
    """Alerted messages that are not Direct Send (or not in ``features`` at all) pass every
    phase, and the phase 4 note must not count them as stopped by the transport rule."""
    con.begin()
    try:
        con.execute(
            """INSERT INTO alert_messages
               SELECT 'A-extra', network_message_id, 'high', 4 FROM (
                   SELECT DISTINCT network_message_id FROM features
                   WHERE path = 'authenticated' ORDER BY 1 LIMIT 3)
               UNION ALL SELECT 'A-extra', 'not-in-features', 'high', 4"""
        )
        last = _check(con)[-1]
        assert "not-in-features" in last.unstopped_suspicious
        assert not last.notes[-1].endswith(f"stop {len(last.unstopped_suspicious)} of them.")
    finally:
        con.rollback()
