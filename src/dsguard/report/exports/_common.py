"""What every export shares: stable ids, severity scales and text hygiene.

Subjects, display names, addresses and header values come from whoever sent the mail. The
JSON exports keep them verbatim (JSON quoting makes them inert and analysts need the exact
bytes); the line- and cell-based formats (CEF, CSV) must neutralise them, and do so here.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from dsguard import __version__
from dsguard.results import Finding

PRODUCT = "dsguard"
VENDOR = "dsguard project"
VERSION = __version__
SEVERITIES = ("informational", "low", "medium", "high", "critical")

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators some log shippers and
# terminals treat as line breaks. Tab, LF and CR are handled by each format on its own.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
REPLACEMENT = "\ufffd"


def scrub(text: str) -> str:
    """``text`` with every control character but TAB, LF and CR replaced by U+FFFD, so an
    ANSI escape or a NUL arrives visibly damaged instead of acting on a terminal or parser."""
    return _CONTROLS.sub(REPLACEMENT, text)


def one_line(text: str) -> str:
    """``text`` on one line: controls scrubbed, CR, LF and TAB turned into spaces."""
    return scrub(text).replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the form Azure Monitor and most SIEMs parse."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def compact_json(value: Any) -> str:
    """One-line JSON for a cell or a CEF field (non-JSON values such as dates as text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def finding_uid(finding: Finding) -> str:
    """A stable id for a finding (check and resource), the same in every export and run, so
    a SIEM can follow one finding across analyses."""
    digest = hashlib.sha256(f"{finding.check_id}\x00{finding.resource}".encode()).hexdigest()
    return f"DSF-{digest[:12]}"
