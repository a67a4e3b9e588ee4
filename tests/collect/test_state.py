"""The checkpoint: periods, gaps, and refusing to mix two collections in one bundle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dsguard.collect import STATE_FILE, CollectError
from dsguard.collect.state import Period, State, gaps, iso, remove_partials, write_atomic

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def test_gaps_are_what_no_slice_covers() -> None:
    period = Period(h(0), h(10))
    assert gaps(period, []) == [period]
    assert gaps(period, [(h(0), h(10), 5)]) == []
    done = [(h(2), h(3), 1), (h(0), h(1), 1), (h(3), h(5), 0), (h(8), h(12), 0)]
    assert gaps(period, done) == [Period(h(1), h(2)), Period(h(5), h(8))]


def test_state_keeps_its_period_and_refuses_another_collection(tmp_path: Path) -> None:
    state, resumed = State.open(tmp_path, tenant="T1", days=2, end=h(48))
    assert not resumed and state.period == Period(h(0), h(48))
    state.add_slice("hunting", h(0), h(24), 7)
    state.add_slice("hunting", h(0), h(24), 7)  # recorded once
    again, resumed = State.open(tmp_path, tenant="t1", days=2, end=h(99))
    assert resumed and again.period == Period(h(0), h(48))  # the first run's period
    assert again.slices("hunting") == [(h(0), h(24), 7)]
    with pytest.raises(CollectError, match="another --out folder"):
        State.open(tmp_path, tenant="T2", days=2, end=h(48))
    with pytest.raises(CollectError, match="rerun with --days 2"):
        State.open(tmp_path, tenant="T1", days=3, end=h(48))
    (tmp_path / STATE_FILE).write_text("{ damaged")
    with pytest.raises(CollectError, match="damaged"):
        State.open(tmp_path, tenant="T1", days=2, end=h(48))


def test_partial_files_are_cleaned_and_atomic_writes_leave_none(tmp_path: Path) -> None:
    write_atomic(tmp_path / "exchange" / "x.json", "[]\n")
    assert (tmp_path / "exchange" / "x.json").read_text() == "[]\n"
    (tmp_path / "email_events_a.jsonl.part").write_text("half")
    (tmp_path / "exchange" / "y.json.part").write_text("half")
    assert remove_partials(tmp_path) == 2
    assert not list(tmp_path.rglob("*.part"))


def test_iso_is_utc_with_z() -> None:
    assert iso(h(1)) == "2026-03-01T01:00:00Z"
    assert iso(h(1) + timedelta(microseconds=5)) == "2026-03-01T01:00:00.000005Z"


def test_extend_reopens_the_last_slices_and_deletes_only_slice_files(tmp_path: Path) -> None:
    import json
    import re

    def name(s: datetime, e: datetime) -> Path:
        return tmp_path / f"email_events_{s:%Y%m%dT%H%M%SZ}_{e:%Y%m%dT%H%M%SZ}.jsonl"

    pattern = re.compile(r"^email_events_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.jsonl$")
    state, _ = State.open(tmp_path, tenant="T1", days=2, end=h(48))
    for s, e in ((0, 24), (24, 40), (40, 48)):
        state.add_slice("hunting", h(s), h(e), 1)
        name(h(s), h(e)).write_text("{}\n")
    state.finish("exchange:accepted_domains", rows=1)
    state.finish("signins:0", rows=1)
    assert state.extend(h(48), timedelta(hours=6), {"hunting": name}) is None  # not later
    assert state.extend(h(60), timedelta(hours=6), {"hunting": name}) == h(48)
    # [40, 48) ends after 48 - 6: reopened; [24, 40) ends before: kept.
    assert state.slices("hunting") == [(h(0), h(24), 1), (h(24), h(40), 1)]
    assert state.reopened("hunting") == {name(h(40), h(48)).name}
    assert state.unit("exchange:accepted_domains") is None and state.unit("signins:0")
    assert [b["id"] for b in state.signin_batches()] == ["", "20260303T120000Z"]
    # A checkpoint that names something else is not obeyed.
    outside = tmp_path / "exchange" / "accepted_domains.json"
    outside.parent.mkdir()
    outside.write_text("[]")
    data = json.loads((tmp_path / STATE_FILE).read_text())
    data["reopened"]["hunting"].append("exchange/accepted_domains.json")
    (tmp_path / STATE_FILE).write_text(json.dumps(data))
    again, _ = State.open(tmp_path, tenant="T1", days=9, end=h(60), extend=True)
    again.add_slice("hunting", h(40), h(44), 1)
    name(h(40), h(44)).write_text("{}\n")
    again.close_reopened(tmp_path, "hunting", name, pattern)
    assert not name(h(40), h(48)).exists() and name(h(40), h(44)).exists()
    assert outside.exists() and not again.reopened("hunting")
