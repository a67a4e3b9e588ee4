"""Message trace through Graph, for tenants without Advanced Hunting (the fallback).

``GET /beta/admin/exchange/tracing/messageTraces`` (``ExchangeMessageTrace.Read.All``),
filtered on ``receivedDateTime`` one day at a time (the service allows at most 10 days per
query and keeps 90), paged with ``@odata.nextLink``. Each day is written to
``message_trace_<start>_<end>.csv`` in the ``Get-MessageTraceV2 | Export-Csv`` column family
the bundle reader knows, then recorded in the checkpoint.

What is lost against ``EmailEvents`` (``LOSSES``): authentication verdicts, the inbound
connector, the direction, the envelope sender (P1) and Defender's detection methods. The
Direct Send analysis still sees who sent what to whom from where, but with less certainty.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dsguard.collect.http import ApiClient
from dsguard.collect.state import (
    Period,
    State,
    adopt_orphans,
    gaps,
    iso,
    parse_iso,
    stamp,
    write_atomic,
)

SOURCE = "message_trace"
PERMISSION = (
    "the Microsoft Graph application permission ExchangeMessageTrace.Read.All (with admin "
    "consent)"
)
PATH = "beta/admin/exchange/tracing/messageTraces"
FILE_RE = re.compile(r"^message_trace_(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)\.csv$")
RETENTION = timedelta(days=90)
PAGE_SIZE = 5000
# Get-MessageTraceV2 column ← Graph exchangeMessageTrace property.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Received", "receivedDateTime"),
    ("SenderAddress", "senderAddress"),
    ("RecipientAddress", "recipientAddress"),
    ("Subject", "subject"),
    ("Status", "status"),
    ("FromIP", "fromIP"),
    ("ToIP", "toIP"),
    ("Size", "size"),
    ("MessageId", "messageId"),
    ("MessageTraceId", "id"),
)
LOSSES = (
    "message trace has no SPF/DKIM/DMARC/composite-auth verdicts, no inbound connector, no "
    "direction, no envelope sender (P1) and no Defender detection methods: path "
    "classification and the authentication signals are weaker"
)


def slice_file(bundle: Path, start: datetime, end: datetime) -> Path:
    return bundle / f"message_trace_{stamp(start)}_{stamp(end)}.csv"


def collect_message_trace(
    client: ApiClient,
    bundle: Path,
    state: State,
    width: timedelta,
    progress: Callable[[int, int, str], None],
    warn: Callable[[str], None],
) -> tuple[int, int]:
    """Collect every missing day of the period; returns ``(files written, rows)``."""
    period = state.period
    adopt_orphans(bundle, state, SOURCE, FILE_RE)
    todo = gaps(period, state.slices(SOURCE))
    if todo and todo[0].start < period.end - RETENTION:  # an extended bundle has no such gap
        warn("message trace keeps 90 days: the part of the period older than that is empty")
    total = period.hours
    files = rows = 0

    def covered() -> int:
        secs = sum((e - s).total_seconds() for s, e, _ in state.slices(SOURCE))
        return min(total, int(secs // 3600))

    progress(covered(), total, "")
    for gap in todo:
        cursor = gap.start
        while cursor < gap.end:
            end = min(cursor + width, gap.end)
            traces = _fetch(client, Period(cursor, end))
            n = _write(slice_file(bundle, cursor, end), traces) if traces else 0
            state.add_slice(SOURCE, cursor, end, n)
            files, rows = files + (1 if n else 0), rows + n
            progress(covered(), total, f"{iso(end)[:16]} {rows} rows")
            cursor = end
    state.close_reopened(bundle, SOURCE, lambda s, e: slice_file(bundle, s, e), FILE_RE)
    progress(total, total, f"{rows} rows")
    return files, rows


def _fetch(client: ApiClient, slice_: Period) -> list[dict[str, Any]]:
    """The traces received in ``[start, end)``, each once.

    The filter supports ``ge``/``le`` only, so the end is inclusive on the service side and
    the boundary is enforced here; repeats across pages are dropped.
    """
    params = {
        "$filter": (
            f"receivedDateTime ge {iso(slice_.start)} and receivedDateTime le {iso(slice_.end)}"
        ),
        "$top": str(PAGE_SIZE),
    }
    seen: set[tuple[str, str, str]] = set()
    out: list[dict[str, Any]] = []
    for value, _page in client.pages("GET", PATH, permission=PERMISSION, params=params):
        for item in value:
            if not isinstance(item, dict):
                continue
            received = item.get("receivedDateTime")
            try:
                when: datetime | None = parse_iso(str(received))
            except ValueError:
                when = None  # kept: the service put it here, the reader will say what is wrong
            if when is not None and not slice_.start <= when < slice_.end:
                continue
            key = (str(item.get("id")), str(item.get("recipientAddress")), str(received))
            if key in seen:
                continue
            seen.add(key)
            out.append(item)
    return out


def _write(path: Path, traces: list[dict[str, Any]]) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([column for column, _ in COLUMNS])
    for item in traces:
        writer.writerow(["" if item.get(key) is None else item.get(key) for _, key in COLUMNS])
    write_atomic(path, buf.getvalue())
    return len(traces)
