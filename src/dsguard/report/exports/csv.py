"""Alerts and findings as CSV for spreadsheets, with CSV (formula) injection neutralised.

A subject of ``=HYPERLINK("http://x","y")`` is a live formula once Excel or LibreOffice opens
the file. Following the OWASP CSV Injection guidance, every text cell that starts with
``=``, ``+``, ``-``, ``@``, TAB or CR (or with one of them after leading blanks, which some
importers trim; or with their full-width forms, which some IMEs turn into formulas) is
prefixed with a single quote, and every cell is quoted with embedded quotes doubled (the
``csv`` module, ``QUOTE_ALL``). Numbers are written by us, not by senders, and stay numbers.
Control characters other than TAB/LF/CR become U+FFFD, so an ANSI escape cannot recolour a
terminal that ``cat``s the file.

Files are UTF-8 with a byte-order mark, which Excel needs to read UTF-8 correctly, and use
CRLF line ends (RFC 4180). List values (recipients, subjects...) are one per line in a cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from dsguard.report.exports._common import compact_json, finding_uid, iso_utc, scrub
from dsguard.results import Alert, Finding

TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
BOM = "\ufeff"

ALERT_COLUMNS = (
    "id",
    "severity",
    "score",
    "title",
    "path",
    "sender",
    "source_ips",
    "recipients",
    "subjects",
    "message_count",
    "first_seen",
    "last_seen",
    "signals",
    "network_message_ids",
)
FINDING_COLUMNS = (
    "finding_id",
    "check_id",
    "status",
    "severity",
    "resource",
    "title",
    "status_extended",
    "remediation",
    "frameworks",
    "evidence",
)

Cell = str | int | float | None


def neutralise(value: str) -> str:
    """A text cell that no spreadsheet will evaluate as a formula or a DDE command."""
    text = scrub(value).replace("\r\n", "\n")
    stripped = text.lstrip(" \n\u00a0\u3000")
    if text[:1] in TRIGGERS or stripped[:1] in TRIGGERS:
        return "'" + text
    return text


def _cell(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    return neutralise(value)


def _lines(values: Iterable[str]) -> str:
    return "\n".join(values)


def render(columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """The CSV text, header first, every cell neutralised and quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return BOM + buf.getvalue()


def alerts_to_csv(alerts: list[Alert]) -> str:
    return render(
        ALERT_COLUMNS,
        (
            (
                a.id,
                a.severity,
                a.score,
                a.title,
                a.path,
                a.sender,
                _lines(a.source_ips),
                _lines(a.recipients),
                _lines(a.subjects),
                a.message_count,
                iso_utc(a.first_seen),
                iso_utc(a.last_seen),
                _lines(r.signal_id for r in a.reasons),
                _lines(a.network_message_ids),
            )
            for a in alerts
        ),
    )


def findings_to_csv(findings: list[Finding]) -> str:
    return render(
        FINDING_COLUMNS,
        (
            (
                finding_uid(f),
                f.check_id,
                f.status,
                f.severity,
                f.resource,
                f.title,
                f.status_extended,
                f.remediation,
                _lines(f"{k}: {', '.join(v)}" for k, v in sorted(f.frameworks.items())),
                compact_json(f.evidence) if f.evidence else "",
            )
            for f in findings
        ),
    )
