"""Alerts and findings as CEF:0 lines, for SIEMs fed by syslog (ArcSight, QRadar, Sentinel's
CEF connector, syslog-ng/rsyslog forwarders).

One event per line, no syslog header: the forwarder adds its own. Escaping follows the
ArcSight "Implementing ArcSight CEF" rules, which differ between the two halves of a line:

* **header** fields (``Vendor|Product|Version|SignatureID|Name|Severity``): ``\\`` → ``\\\\``
  and ``|`` → ``\\|``; a header cannot hold a line break, so CR/LF become spaces;
* **extension** values (``key=value ...``): ``\\`` → ``\\\\`` and ``=`` → ``\\=`` (``|`` is
  literal there); LF → ``\\n`` and CR → ``\\r``, the spec's multi-line encoding.

That is what keeps an attacker's subject from forging a field: ``x cs1=evil`` arrives as
``x cs1\\=evil``, ``a|b`` in a header as ``a\\|b``, and a newline cannot start a second event.
Other control characters (ANSI escapes, NUL) are replaced by U+FFFD in both halves.
Values are cut to the dictionary's documented lengths before escaping, so an escape pair is
never split.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime

from dsguard.report.exports._common import (
    PRODUCT,
    VENDOR,
    VERSION,
    compact_json,
    epoch_ms,
    finding_uid,
    one_line,
    scrub,
    truncate,
)
from dsguard.results import Alert, Finding

# CEF severity is 0-10; 0-3 low, 4-6 medium, 7-8 high, 9-10 very high.
CEF_SEVERITY = {"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
# A passed or not-applicable check carries its check's severity in OCSF and CSV, but a SIEM
# alerts on the CEF severity column alone, so those lines say 0 (the outcome field says why).
QUIET_STATUSES = frozenset({"PASS", "NOT_APPLICABLE"})

# Field lengths from the CEF key dictionary (characters).
LIMITS = {
    "msg": 1023,
    "suser": 1023,
    "duser": 1023,
    "externalId": 40,
    "cat": 1023,
    "outcome": 63,
    "src": 40,
    "c6a2": 40,
}
CUSTOM_STRING_LIMIT = 4000  # cs1..cs6
HEADER_LIMIT = 512


def escape_header(value: object) -> str:
    """A CEF header field: one line, ``\\`` and ``|`` escaped."""
    text = truncate(one_line(str(value)), HEADER_LIMIT)
    return text.replace("\\", "\\\\").replace("|", "\\|")


def escape_extension(value: object) -> str:
    """A CEF extension value: ``\\`` and ``=`` escaped, line breaks as ``\\n``/``\\r``."""
    text = scrub(str(value)).replace("\t", " ")
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def line(signature: str, name: str, severity: int, extension: Iterable[tuple[str, object]]) -> str:
    """One CEF:0 event. ``extension`` is ``(key, value)`` pairs; ``None`` and empty values
    are left out, long values cut to the key's limit."""
    header = "|".join(
        escape_header(v) for v in ("CEF:0", VENDOR, PRODUCT, VERSION, signature, name)
    )
    parts: list[str] = []
    for key, value in extension:
        if value is None or value == "":
            continue
        limit = CUSTOM_STRING_LIMIT if key[:2] == "cs" and key[2:].isdigit() else LIMITS.get(key)
        text = str(value)
        if limit is not None:
            text = truncate(text, limit)
        parts.append(f"{key}={escape_extension(text)}")
    return f"{header}|{severity}|{' '.join(parts)}"


def custom(key: str, label: str, value: object) -> list[tuple[str, object]]:
    """A labelled custom field (``cs1Label=subject cs1=...``), or nothing when empty."""
    if value is None or value == "":
        return []
    return [(f"{key}Label", label), (key, value)]


def _split_ips(ips: list[str]) -> tuple[str | None, str | None]:
    """The first IPv4 (``src``) and first IPv6 (``c6a2``) source address."""
    v4 = v6 = None
    for raw in ips:
        try:
            ip = ipaddress.ip_address(raw.strip())
        except ValueError:
            continue
        if ip.version == 4 and v4 is None:
            v4 = str(ip)
        elif ip.version == 6 and v6 is None:
            v6 = str(ip)
    return v4, v6


def alert_line(alert: Alert) -> str:
    """One alert. ``rt``/``start``/``end`` are the messages' times (ms since the epoch)."""
    v4, v6 = _split_ips(alert.source_ips)
    return line(
        f"alert:{alert.path}",
        alert.title,
        CEF_SEVERITY[alert.severity],
        [
            ("rt", epoch_ms(alert.last_seen)),
            ("start", epoch_ms(alert.first_seen)),
            ("end", epoch_ms(alert.last_seen)),
            ("externalId", alert.id),
            ("cat", alert.path),
            ("deviceDirection", 0),
            ("cnt", alert.message_count),
            ("src", v4),
            *custom("c6a2", "sourceIPv6", v6),
            ("suser", alert.sender),
            ("duser", ", ".join(alert.recipients)),
            ("msg", "; ".join(f"{r.signal_id} {r.title}" for r in alert.reasons)),
            *custom("cn1", "score", round(alert.score)),
            *custom("cs1", "subject", "\n".join(alert.subjects)),
            *custom("cs2", "path", alert.path),
            *custom("cs3", "signals", ",".join(r.signal_id for r in alert.reasons)),
            *custom("cs4", "networkMessageIds", ",".join(alert.network_message_ids)),
            *custom("cs5", "sourceIps", ",".join(alert.source_ips)),
        ],
    )


def finding_line(finding: Finding, generated_at: datetime) -> str:
    """One finding, stamped with the time the analysis produced it."""
    severity = 0 if finding.status in QUIET_STATUSES else CEF_SEVERITY[finding.severity]
    frameworks = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(finding.frameworks.items()))
    return line(
        finding.check_id,
        finding.title,
        severity,
        [
            ("rt", epoch_ms(generated_at)),
            ("externalId", finding_uid(finding)),
            ("cat", "posture"),
            ("outcome", finding.status),
            ("msg", finding.status_extended or finding.title),
            *custom("cs1", "resource", finding.resource),
            *custom("cs2", "frameworks", frameworks),
            *custom("cs3", "remediation", finding.remediation),
            *custom("cs4", "severity", finding.severity),
            *custom("cs5", "evidence", compact_json(finding.evidence) if finding.evidence else ""),
        ],
    )


def alerts_to_cef(alerts: list[Alert]) -> str:
    return "".join(alert_line(a) + "\n" for a in alerts)


def findings_to_cef(findings: list[Finding], generated_at: datetime) -> str:
    return "".join(finding_line(f, generated_at) + "\n" for f in findings)
