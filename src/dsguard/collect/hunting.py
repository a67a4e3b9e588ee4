"""``EmailEvents`` from Defender Advanced Hunting (Graph ``POST /security/runHuntingQuery``).

Why slices: one query may return at most so many rows and run at most three minutes
(detection-signals.md §5.5), and a truncated answer looks like a complete one. So the period
is walked in time slices, each query asks for at most ``row_cap`` rows, and a slice whose
answer is full (or that the service says exceeded its limits) is halved and asked again.
Quiet slices let the next slice grow back. Each finished slice is written at once to
``email_events_<start>_<end>.jsonl`` (one row per line, as the service returned it) and
recorded in the checkpoint; slices are half-open ``[start, end)``, so none overlap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dsguard.collect.errors import AccessDenied, ApiError, CollectError
from dsguard.collect.http import ApiClient
from dsguard.collect.state import (
    Period,
    State,
    adopt_orphans,
    gaps,
    iso,
    stamp,
    write_json_lines,
)

SOURCE = "hunting"
PERMISSION = (
    "the Microsoft Graph application permission ThreatHunting.Read.All (with admin consent)"
)
PATH = "v1.0/security/runHuntingQuery"
FILE_RE = re.compile(r"^email_events_(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)\.jsonl$")
# Advanced Hunting keeps 30 days of data (detection-signals.md §5.1).
RETENTION = timedelta(days=30)
# What the service says when the tenant has no Advanced Hunting for email (Microsoft's own
# Zero Trust assessment test 41116 reads these the same way).
_UNLICENSED = re.compile(r"(?i)not licensed|license|plan 2|defender for office 365")
_NO_TABLE = re.compile(
    r"(?i)unknown table|unknown schema|failed to resolve (table|column)[^.]*emailevents"
    r"|emailevents[^.]*(not found|unavailable)"
)
_TOO_BIG = re.compile(
    r"(?i)exceed|limit|time ?out|timed out|too (large|many|big)|cancel+ed|result size"
)


class HuntingUnavailable(CollectError):
    """Advanced Hunting cannot serve ``EmailEvents`` for this tenant (no licence, no table)."""


@dataclass(frozen=True)
class SliceRule:
    """How the period is cut: the first width, the smallest width, and the row cap."""

    initial: timedelta = timedelta(days=1)
    minimum: timedelta = timedelta(minutes=1)
    row_cap: int = 10_000


def query(start: datetime, end: datetime, cap: int) -> str:
    """The KQL for one slice; ``take`` makes a truncated answer recognisable (it is full)."""
    return (
        "EmailEvents\n"
        f"| where Timestamp >= datetime({iso(start)}) and Timestamp < datetime({iso(end)})\n"
        f"| take {cap}"
    )


def slice_file(bundle: Path, start: datetime, end: datetime) -> Path:
    return bundle / f"email_events_{stamp(start)}_{stamp(end)}.jsonl"


def results_of(doc: Any) -> list[Any]:
    """The rows of a ``huntingQueryResults`` answer (``results``/``Results``)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if str(key).lower() == "results" and isinstance(value, list):
                return value
    raise CollectError(
        "runHuntingQuery answered without a 'results' list; rerun the same command to try again"
    )


def collect_email_events(
    client: ApiClient,
    bundle: Path,
    state: State,
    rule: SliceRule,
    progress: Callable[[int, int, str], None],
    warn: Callable[[str], None],
) -> tuple[int, int]:
    """Collect every missing slice of the period; returns ``(files written, rows)``.

    Raises ``HuntingUnavailable`` before anything is written when the tenant has no
    Advanced Hunting for email, so the caller can fall back to message trace.
    """
    period = state.period
    adopt_orphans(bundle, state, SOURCE, FILE_RE)
    todo = gaps(period, state.slices(SOURCE))
    if todo and todo[0].start < period.end - RETENTION:  # an extended bundle has no such gap
        warn(
            "Advanced Hunting keeps 30 days of EmailEvents: the part of the period older "
            "than that comes back empty"
        )
    total_hours = period.hours
    files = rows = 0

    def covered() -> int:
        secs = sum((e - s).total_seconds() for s, e, _ in state.slices(SOURCE))
        return min(total_hours, int(secs // 3600))

    width = rule.initial
    progress(covered(), total_hours, "")
    for gap in todo:
        cursor = gap.start
        while cursor < gap.end:
            end = min(cursor + width, gap.end)
            got = _run_slice(client, Period(cursor, end), rule.row_cap)
            if got is None or len(got) >= rule.row_cap:
                if end - cursor > rule.minimum:
                    width = _halve(end - cursor, rule.minimum)
                    progress(covered(), total_hours, f"splitting {iso(cursor)} ({width})")
                    continue
                if got is None:
                    raise CollectError(
                        f"Advanced Hunting cannot answer even a {rule.minimum} slice at "
                        f"{iso(cursor)} within its limits; rerun later"
                    )
                warn(
                    f"EmailEvents {iso(cursor)}..{iso(end)}: {len(got)} rows fill the row cap "
                    "even at the smallest slice; rows beyond the cap are missing"
                )
            # An empty slice needs no file (the reader would warn about it); the checkpoint
            # records it all the same.
            n = write_json_lines(slice_file(bundle, cursor, end), got) if got else 0
            state.add_slice(SOURCE, cursor, end, n)
            files, rows = files + (1 if n else 0), rows + n
            progress(covered(), total_hours, f"{iso(end)[:16]} {rows} rows")
            cursor = end
            if n < rule.row_cap // 4 and width < rule.initial:
                width = min(width * 2, rule.initial)
    state.close_reopened(bundle, SOURCE, lambda s, e: slice_file(bundle, s, e), FILE_RE)
    progress(total_hours, total_hours, f"{rows} rows")
    return files, rows


def _halve(width: timedelta, minimum: timedelta) -> timedelta:
    half = timedelta(seconds=max(int(width.total_seconds() // 2), 1))
    return max(half, minimum)


def _run_slice(client: ApiClient, slice_: Period, cap: int) -> list[Any] | None:
    """The rows of one slice, or ``None`` when the service says the query was too big."""
    body = {
        "Query": query(slice_.start, slice_.end, cap),
        "Timespan": f"{iso(slice_.start)}/{iso(slice_.end)}",
    }
    try:
        doc = client.request("POST", PATH, permission=PERMISSION, json_body=body, timeout=240)
    except AccessDenied as exc:
        if exc.status == 403 and _UNLICENSED.search(exc.service_message):
            raise HuntingUnavailable(
                f"Advanced Hunting is not licensed for this tenant ({exc.service_message})"
            ) from None
        raise
    except ApiError as exc:
        if exc.status == 400 and _NO_TABLE.search(exc.service_message):
            raise HuntingUnavailable(
                f"Advanced Hunting has no EmailEvents table here ({exc.service_message})"
            ) from None
        if exc.status == 400 and _TOO_BIG.search(exc.service_message):
            return None
        raise
    return results_of(doc)
