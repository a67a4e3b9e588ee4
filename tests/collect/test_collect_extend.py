"""``collect --extend``: a finished bundle moved on to a later end, as a daily job does it.

The fake tenant gains mail after the first collection: new rows after the old end, and a row
*before* the old end that Advanced Hunting only showed later (how late is unverified, hence
the recheck window). The extended bundle must hold every row of the longer period exactly
once, and analysing it again must cost the new part only, with the alerts of a full run.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collect.fake_tenant import (
    END,
    PASS,
    PRIMARY,
    START,
    FakeTenant,
    Fault,
    _parse,
    _row,
    make_message_traces,
    parse_query_slice,
    path_is,
)
from collect.test_collect_e2e import HUNTING, INVOKE, SIGNINS, assert_clean, bundle_events, keys
from dsguard.collect import STATE_FILE, CollectError, SliceRule, collect
from dsguard.collect.state import RECHECK, State

NEW_END = END + timedelta(hours=12)
LATE = END - timedelta(hours=1)  # inside the default recheck window
# Well before it: the recheck reopens whole slices, so it reaches back at least RECHECK
# (to the start of the slice holding "old end - RECHECK"), not exactly RECHECK.
TOO_LATE = END - timedelta(days=2)


def grow(tenant: FakeTenant, *, too_late: bool = False) -> None:
    """Mail (and a sign-in) the tenant shows after the first collection."""
    n = 9000
    rows = [
        _row(n, LATE, f"alex.wilber@{PRIMARY}", f"lee.gu@{PRIMARY}", "Intra-org", "10.0.0.5", PASS),
        _row(n + 1, END + timedelta(hours=2), f"megan.bowen@{PRIMARY}", f"ceo@{PRIMARY}",
             "Inbound", "198.51.100.9", PASS),
        _row(n + 2, END + timedelta(hours=11), f"adele.vance@{PRIMARY}", f"lee.gu@{PRIMARY}",
             "Intra-org", "10.0.0.5", PASS),
        # after the new end: never collected
        _row(n + 3, NEW_END, f"adele.vance@{PRIMARY}", f"lee.gu@{PRIMARY}", "Intra-org",
             "10.0.0.5", PASS),
    ]  # fmt: skip
    if too_late:
        rows.append(_row(n + 4, TOO_LATE, f"nestor.wilke@{PRIMARY}", f"lee.gu@{PRIMARY}",
                         "Intra-org", "10.0.0.5", PASS))  # fmt: skip
    tenant.events.extend(rows)
    tenant.traces.extend(make_message_traces(rows))
    signin = dict(tenant.signins[0])
    signin.update(id="new-window-signin", userPrincipalName=f"megan.bowen@{PRIMARY}",
                  createdDateTime=(END + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
    tenant.signins.append(signin)


def expected(tenant: FakeTenant, end: Any = NEW_END) -> Any:
    return keys([r for r in tenant.events if START <= _parse(r["Timestamp"]) < end])


def test_extend_collects_the_new_part_and_the_last_hours_again(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    assert collect(make_config(), credential).complete
    grow(tenant)
    asked = len(tenant.log)
    invokes = len(tenant.requests(INVOKE))
    result = collect(make_config(end=NEW_END, extend=True, days=1), credential)
    assert result.complete, result.errors
    assert result.extended_from == END and result.period.end == NEW_END
    bundle = result.out
    rows = bundle_events(bundle)
    assert keys(rows) == expected(tenant)  # the late row and the new part, nothing beyond
    assert max(keys(rows).values()) == 1  # reopened files were replaced, not doubled
    # Only the recheck window and the new part were asked for.
    for entry in tenant.log[asked:]:
        if HUNTING in entry.path:
            start, end, _ = parse_query_slice(entry)
            assert end > END - RECHECK, (start, end)
    # Configuration is the tenant's now, so it is collected again.
    assert len(tenant.requests(INVOKE)) > invokes
    # Sign-ins of the new window, in a file of their own, for the senders it showed.
    new_signins = [e for e in tenant.log[asked:] if SIGNINS in e.path]
    assert new_signins
    assert all(e.args["$filter"].startswith(
        f"createdDateTime ge {(END - RECHECK).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        for e in new_signins)  # fmt: skip
    stamp = NEW_END.strftime("%Y%m%dT%H%M%SZ")
    files = sorted(p.name for p in bundle.glob(f"signins_{stamp}_*"))
    assert files and "new-window-signin" in "".join((bundle / f).read_text() for f in files)
    assert (bundle / "signins_0000.jsonl").is_file()  # the first period's stay
    state = json.loads((bundle / STATE_FILE).read_text())
    assert not state["reopened"].get("hunting") and state["extensions"][0]["to"].startswith(
        NEW_END.strftime("%Y-%m-%dT%H:%M")
    )
    assert_clean(bundle)
    # The same command again (the end not later) asks for nothing.
    before = len(tenant.log)
    again = collect(make_config(end=NEW_END, extend=True), credential)
    assert again.complete and again.extended_from is None
    assert len(tenant.log) == before


def test_a_row_older_than_the_recheck_window_stays_missing(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    """The recheck is a bound: a row Advanced Hunting shows days late is not collected
    (the bundle cannot know; the docs say so)."""
    assert collect(make_config(), credential).complete
    grow(tenant, too_late=True)
    result = collect(make_config(end=NEW_END, extend=True), credential)
    assert result.complete, result.errors
    missing = expected(tenant) - keys(bundle_events(result.out))
    (too_late,) = [r for r in tenant.events if _parse(r["Timestamp"]) == TOO_LATE]
    assert list(missing) == [(too_late["NetworkMessageId"], too_late["RecipientEmailAddress"])]


def test_extension_stopped_midway_resumes_without_duplicates_or_gaps(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    assert collect(make_config(), credential).complete
    grow(tenant)
    tenant.faults.append(Fault(path_is(HUNTING), "drop", times=None, after=2))
    narrow = SliceRule(row_cap=50, initial=timedelta(hours=2))  # several slices to stop among
    first = collect(make_config(end=NEW_END, extend=True, slices=narrow), credential)
    assert not first.complete and first.sources["mail"].status == "failed"
    tenant.faults.clear()
    # The reopened files are still there and hold the old rows: never adopted as collected.
    state, _ = State.open(first.out, tenant=first.tenant, days=3, end=NEW_END, extend=True)
    assert state.reopened("hunting") and len(state.slices("hunting")) > 1
    later = NEW_END + timedelta(hours=1)
    second = collect(make_config(end=later, extend=True), credential)
    assert second.complete, second.errors
    assert second.extended_from == NEW_END
    rows = bundle_events(second.out)
    assert keys(rows) == expected(tenant, later)
    assert max(keys(rows).values()) == 1
    assert_clean(second.out)


def test_extend_with_message_trace(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    assert collect(make_config(mail_source="trace"), credential).complete
    grow(tenant)
    result = collect(make_config(end=NEW_END, extend=True, mail_source="trace"), credential)
    assert result.complete, result.errors
    files = sorted(result.out.glob("message_trace_*.csv"))
    rows = [r for f in files for r in csv.DictReader(f.open(encoding="utf-8", newline=""))]
    got = Counter((r["MessageTraceId"], r["RecipientAddress"]) for r in rows)
    assert got == expected(tenant)  # the late row once, the new day, nothing beyond


def test_extend_on_an_empty_folder_is_the_first_collection(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    """A daily job runs one command from the first day on."""
    result = collect(make_config(extend=True), credential)
    assert result.complete and not result.resumed and result.extended_from is None
    assert keys(bundle_events(result.out)) == expected(tenant, END)


def test_recheck_needs_extend(make_config: Any, credential: Any) -> None:
    with pytest.raises(CollectError, match="--extend only"):
        collect(make_config(recheck=timedelta(hours=1)), credential)


def test_extended_bundle_is_analysed_incrementally_with_the_alerts_of_a_full_run(
    tenant: FakeTenant, make_config: Any, credential: Any, tmp_path: Path
) -> None:
    from dsguard.pipeline import analyze

    config = make_config()
    assert collect(config, credential).complete
    out = tmp_path / "daily"
    analyze(config.out, out)
    grow(tenant)
    assert collect(make_config(end=NEW_END, extend=True), credential).complete
    ctx = analyze(config.out, out)
    assert ctx.feature_run is not None and ctx.feature_run.mode != "full", ctx.feature_run
    full = analyze(config.out, tmp_path / "full")
    assert full.feature_run is not None and full.feature_run.mode == "full"
    ours = (out / "alerts.jsonl").read_text()
    assert ours and ours == (tmp_path / "full" / "alerts.jsonl").read_text()
