"""Scored messages → alerts: one alert per campaign, each explaining itself.

A campaign is the messages from one source with one subject pattern, split where more than
``CAMPAIGN_GAP`` passes without a message. The alert's score is the median of its members'
scores (one odd message neither makes nor breaks a campaign); its reasons are every rule
that fired on any member, with the evidence of the first member it fired on and how many
members it fired on.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import duckdb

from dsguard.results import Alert, Reason
from dsguard.scoring.score import ALERT_MIN, hit_column, min_score, score_sql, severity_of
from dsguard.severity import Severity
from dsguard.signals.rules import Rule, catalogue

CAMPAIGN_GAP_HOURS = 24

# Subject → pattern: case-folded, reply prefixes dropped, digits and the recipient's own
# name folded away so personalised lures ("Voicemail for jane.doe #4411") group together.
SUBJECT_PATTERN_SQL = r"""
trim(regexp_replace(regexp_replace(regexp_replace(
    replace(lower(coalesce(subject, '')), split_part(recipient, '@', 1), '{r}'),
    '^((re|fw|fwd|aw|sv)\s*:\s*)+', ''), '[0-9]+', '#', 'g'), '\s+', ' ', 'g'))
"""


def score_messages(con: duckdb.DuckDBPyConnection, columns: set[str]) -> None:
    """Create ``scores``: the scored population with one hit column per rule."""
    con.execute(f"CREATE OR REPLACE TABLE scores AS {score_sql('features', columns)}")


def campaign_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    floor = min_score(ALERT_MIN)
    cur = con.execute(
        f"""
        WITH flagged AS (
            SELECT *, {SUBJECT_PATTERN_SQL} AS subject_pattern FROM scores WHERE score >= ?
        ),
        keyed AS (
            SELECT *, coalesce(sender_ipv4, 'no-ip') || '|' || subject_pattern AS gkey
            FROM flagged
        ),
        gaps AS (
            SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY gkey ORDER BY ts)
                               > INTERVAL {CAMPAIGN_GAP_HOURS} HOUR THEN 1 ELSE 0 END AS brk
            FROM keyed
        )
        SELECT *, sum(brk) OVER (PARTITION BY gkey ORDER BY ts, network_message_id, recipient
                                 ROWS UNBOUNDED PRECEDING) AS segment
        FROM gaps ORDER BY gkey, segment, ts, network_message_id, recipient
        """,
        [floor],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def store_alerts(con: duckdb.DuckDBPyConnection, alerts: list[Alert]) -> None:
    """Keep alerts in the store (``alerts`` and ``alert_messages``) for later stages."""
    con.execute(
        """CREATE OR REPLACE TABLE alerts (id VARCHAR, severity VARCHAR, score DOUBLE,
           title VARCHAR, path VARCHAR, body JSON)"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE alert_messages (alert_id VARCHAR, network_message_id VARCHAR,
           severity VARCHAR, rank INTEGER)"""
    )
    for a in alerts:
        con.execute(
            "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
            [a.id, a.severity, a.score, a.title, a.path, a.model_dump_json()],
        )
    rows = [
        (a.id, n, a.severity, int(Severity.parse(a.severity)))
        for a in alerts
        for n in a.network_message_ids
    ]
    if rows:
        con.executemany("INSERT INTO alert_messages VALUES (?, ?, ?, ?)", rows)


def build_alerts(rows: list[dict[str, Any]], rules: tuple[Rule, ...] | None = None) -> list[Alert]:
    rules = rules or catalogue()
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["gkey"], int(row["segment"]))].append(row)
    alerts = [_alert(members, rules) for members in groups.values()]
    alerts.sort(key=lambda a: (-a.score, a.first_seen, a.id))
    return alerts


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _alert(members: list[dict[str, Any]], rules: tuple[Rule, ...]) -> Alert:
    top = max(members, key=lambda m: m["score"])
    score = statistics.median(m["score"] for m in members)
    reasons: list[Reason] = []
    for rule in rules:
        fired = [m for m in members if m[hit_column(rule)]]
        if not fired:
            continue
        first = fired[0]
        evidence = {f: _jsonable(first.get(f)) for f in rule.evidence}
        evidence["messages"] = f"{len(fired)} of {len(members)}"
        reasons.append(
            Reason(
                signal_id=rule.id,
                title=rule.title,
                family=rule.family,
                weight=rule.weight,
                evidence=evidence,
            )
        )
    reasons.sort(key=lambda r: -r.weight)
    nmids = sorted({m["network_message_id"] for m in members})
    senders = sorted({m["sender"] for m in members if m["sender"]})
    ips = sorted({m["sender_ipv4"] for m in members if m["sender_ipv4"]})
    subjects = sorted({m["subject"] for m in members if m["subject"]})
    digest = hashlib.sha256(
        (members[0]["gkey"] + "|" + nmids[0]).encode("utf-8", "surrogatepass")
    ).hexdigest()
    sev = severity_of(score)
    sender = senders[0] if len(senders) == 1 else None
    return Alert(
        id=f"DSA-{digest[:12]}",
        severity=str(sev),  # type: ignore[arg-type]
        title=_title(top, reasons, len(nmids), senders, ips),
        score=float(score),
        network_message_ids=nmids,
        sender=sender,
        source_ips=ips,
        path=top["path"],
        reasons=reasons,
        first_seen=min(m["ts"] for m in members),
        last_seen=max(m["ts"] for m in members),
        recipients=sorted({m["recipient"] for m in members}),
        subjects=subjects[:20],
        message_count=len(nmids),
    )


def _title(
    top: dict[str, Any], reasons: list[Reason], n: int, senders: list[str], ips: list[str]
) -> str:
    what = {
        "direct_send": "Direct Send",
        "partner_connector": "Connector-borne",
        "onprem_connector": "On-premises-borne",
    }.get(top["path"], "Internal-looking")
    ids = {r.signal_id for r in reasons}
    if "DSG-SELF-001" in ids:
        kind = "self-addressed spoof"
    elif "DSG-AUTH-005" in ids:
        kind = "From-header spoof"
    elif "DSG-IDEN-001" in ids:
        kind = "mail from a sender that does not exist"
    elif "DSG-SRC-006" in ids:
        kind = "registered sender from an unregistered source"
    else:
        kind = "suspicious internal-looking mail"
    who = senders[0] if len(senders) == 1 else f"{len(senders)} senders"
    src = ips[0] if len(ips) == 1 else f"{len(ips)} sources"
    plural = "message" if n == 1 else "messages"
    return f"{what} {kind}: {who} from {src} ({n} {plural})"
