"""Scored messages → alerts: one alert per campaign, each explaining itself.

A campaign is the messages from one source with one subject pattern, split where more than
``CAMPAIGN_GAP`` passes without a message. The alert's score is the median of its members'
scores (one odd message neither makes nor breaks a campaign); its reasons are every rule
that fired on any member, with the evidence of the first member it fired on and how many
members it fired on.

Members are ordered by time, then message id and recipient, everywhere (gaps, "first member",
the top-scoring member), so the same evidence always gives the same alerts. The grouping and
the per-rule counts run in SQL (``campaign_steps``, portable to Spark); Python only fetches
the few evidence rows and builds the alert objects.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from dsguard.engines.plan import Step, drop_duckdb, run_duckdb
from dsguard.evidence.duck import drop_relation, registered
from dsguard.results import Alert, Reason
from dsguard.scoring.score import ALERT_MIN, hit_column, min_score, score_sql, severity_of
from dsguard.severity import Severity
from dsguard.signals.engine import SCORED_TABLE
from dsguard.signals.features import source_ip
from dsguard.signals.rules import Rule, catalogue

CAMPAIGN_GAP_HOURS = 24
MEMBER_ORDER = "ts, network_message_id, recipient"

# Subject → pattern: case-folded, reply prefixes dropped, digits and the recipient's own
# name folded away so personalised lures ("Voicemail for jane.doe #4411") group together.
SUBJECT_PATTERN_SQL = r"""
trim(regexp_replace(regexp_replace(regexp_replace(
    replace(lower(coalesce(subject, '')), split_part(recipient, '@', 1), '{r}'),
    '^((re|fw|fwd|aw|sv)\s*:\s*)+', ''), '[0-9]+', '#', 'g'), '\s+', ' ', 'g'))
"""


def score_messages(con: duckdb.DuckDBPyConnection, columns: set[str]) -> None:
    """Create ``scores``: the scored population with one hit column per rule.

    A view over ``features_scored``, the only table that holds the scored population: the
    rules are cheap expressions (0.08 s over 247k rows), but writing their result as a table
    of 106 columns took 1.3 s at 10M messages, on every daily run too, whatever the day's
    size (benchmarks/HISTORY.md). A view also cannot disagree with the features it scores.
    """
    drop_relation(con, "scores")
    con.execute(f"CREATE VIEW scores AS {score_sql(SCORED_TABLE, columns)}")


def _segments_sql(scores: str) -> str:
    """Flagged rows of ``scores`` with their campaign key, segment and rank in the segment."""
    return f"""
WITH flagged AS (
    SELECT *, {SUBJECT_PATTERN_SQL} AS subject_pattern FROM {scores}
    WHERE score >= {min_score(ALERT_MIN)!r}
),
keyed AS (
    SELECT *, coalesce({source_ip()}, 'no-ip') || '|' || subject_pattern AS gkey FROM flagged
),
gaps AS (
    SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY gkey ORDER BY {MEMBER_ORDER})
                       > INTERVAL {CAMPAIGN_GAP_HOURS} HOUR THEN 1 ELSE 0 END AS brk
    FROM keyed
)
SELECT *, sum(brk) OVER (PARTITION BY gkey ORDER BY {MEMBER_ORDER}
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS segment
FROM gaps"""


def campaign_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every flagged row with its campaign (``gkey``, ``segment``), in member order.

    For small inputs and tests; the pipeline uses ``campaign_alerts``, which does not bring
    member rows into Python.
    """
    cur = con.execute(
        f"SELECT * FROM ({_segments_sql('scores')}) "
        f"ORDER BY gkey, segment, {MEMBER_ORDER}"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def campaign_steps(rules: tuple[Rule, ...], scores: str = "scores") -> list[Step]:
    """SQL steps from ``scores`` to one summary row per campaign (``c_groups``) and the
    ranked members (``c_members``)."""
    per_rule = ",\n    ".join(
        f'count(CASE WHEN "{hit_column(r)}" THEN 1 END) AS "n_{hit_column(r)}",\n    '
        f'min(CASE WHEN "{hit_column(r)}" THEN rn END) AS "first_{hit_column(r)}"'
        for r in rules
    )
    return [
        Step(
            "c_members",
            f"""
SELECT *,
    row_number() OVER (PARTITION BY gkey, segment ORDER BY {MEMBER_ORDER}) AS rn,
    max(score) OVER (PARTITION BY gkey, segment) AS top_score
FROM ({_segments_sql(scores)}) s""",
        ),
        Step(
            "c_groups",
            f"""
SELECT gkey, segment, count(*) AS members,
    median(score) AS score,
    min(CASE WHEN score = top_score THEN rn END) AS top_rn,
    list_sort(list(DISTINCT network_message_id)) AS nmids,
    list_sort(list(DISTINCT sender) FILTER (WHERE sender <> '')) AS senders,
    list_sort(list(DISTINCT {source_ip()}) FILTER (WHERE {source_ip()} <> '')) AS ips,
    list_sort(list(DISTINCT subject) FILTER (WHERE subject <> '')) AS subjects,
    list_sort(list(DISTINCT recipient)) AS recipients,
    min(ts) AS first_seen, max(ts) AS last_seen,
    {per_rule}
FROM c_members GROUP BY gkey, segment""",
        ),
    ]


@dataclass
class Campaign:
    """What an alert is made of: the summary of its members and, per rule that fired, how
    many members it fired on and the first such member's evidence."""

    gkey: str
    members: int
    score: float
    top: dict[str, Any]
    nmids: list[str]
    senders: list[str]
    ips: list[str]
    subjects: list[str]
    recipients: list[str]
    first_seen: datetime
    last_seen: datetime
    fired: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)


def campaign_alerts(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...] | None = None
) -> list[Alert]:
    """``build_alerts(campaign_rows(con))``, with the grouping done in SQL."""
    rules = rules or catalogue()
    steps = campaign_steps(rules)
    run_duckdb(con, steps)
    try:
        cur = con.execute("SELECT * FROM c_groups ORDER BY gkey, segment")
        names = [d[0] for d in cur.description]
        groups = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        campaigns = _campaigns_from_groups(con, groups, rules)
    finally:
        drop_duckdb(con, steps)
    return _sorted([_alert(c, rules) for c in campaigns])


Fetch = Callable[[list[tuple[str, int, int]], list[str]], dict[tuple[str, int, int], dict]]


def _duckdb_fetch(con: duckdb.DuckDBPyConnection) -> Fetch:
    """Evidence rows of ``c_members`` by (gkey, segment, rank), from DuckDB."""

    def fetch(
        wanted: list[tuple[str, int, int]], cols: list[str]
    ) -> dict[tuple[str, int, int], dict[str, Any]]:
        keys = pa.table(
            {
                "gkey": pa.array([w[0] for w in wanted], pa.string()),
                "segment": pa.array([w[1] for w in wanted], pa.int64()),
                "rn": pa.array([w[2] for w in wanted], pa.int64()),
            }
        )
        with registered(con, "_c_wanted", keys):
            select = "".join(f', m."{c}"' for c in cols)
            cur = con.execute(
                f"""SELECT m.gkey, m.segment, m.rn{select}
                    FROM c_members m JOIN _c_wanted w
                        ON w.gkey = m.gkey AND w.segment = m.segment AND w.rn = m.rn"""
            )
            return {
                (r[0], int(r[1]), int(r[2])): dict(zip(cols, r[3:], strict=True))
                for r in cur.fetchall()
            }

    return fetch


def _campaigns_from_groups(
    con: duckdb.DuckDBPyConnection, groups: list[dict[str, Any]], rules: tuple[Rule, ...]
) -> list[Campaign]:
    have = {r[0] for r in con.execute("DESCRIBE c_members").fetchall()}
    return assemble_campaigns(groups, rules, have, _duckdb_fetch(con))


def assemble_campaigns(
    groups: list[dict[str, Any]], rules: tuple[Rule, ...], have: set[str], fetch: Fetch
) -> list[Campaign]:
    """Campaigns from ``c_groups`` rows: fetch the few evidence rows (top member, first
    member per rule) with ``fetch`` and put each campaign together."""
    wanted: set[tuple[str, int, int]] = set()
    for g in groups:
        wanted.add((g["gkey"], int(g["segment"]), int(g["top_rn"])))
        for r in rules:
            first = g[f"first_{hit_column(r)}"]
            if first is not None:
                wanted.add((g["gkey"], int(g["segment"]), int(first)))
    fields = sorted({"path", *(f for r in rules for f in r.evidence)})
    cols = [f for f in fields if f in have]
    rows = fetch(sorted(wanted), cols) if wanted else {}
    out = []
    for g in groups:
        seg = int(g["segment"])
        c = Campaign(
            gkey=g["gkey"],
            members=int(g["members"]),
            score=float(g["score"]),
            top=rows[(g["gkey"], seg, int(g["top_rn"]))],
            nmids=list(g["nmids"]),
            senders=list(g["senders"] or []),
            ips=list(g["ips"] or []),
            subjects=list(g["subjects"] or []),
            recipients=list(g["recipients"]),
            first_seen=g["first_seen"],
            last_seen=g["last_seen"],
        )
        for r in rules:
            first = g[f"first_{hit_column(r)}"]
            if first is not None:
                c.fired[r.id] = (int(g[f"n_{hit_column(r)}"]), rows[(g["gkey"], seg, int(first))])
        out.append(c)
    return out


def alerts_from_campaigns(campaigns: list[Campaign], rules: tuple[Rule, ...]) -> list[Alert]:
    """The alerts, in their published order (score, then first seen, then id)."""
    return _sorted([_alert(c, rules) for c in campaigns])


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
    body = pa.table(
        {
            "id": pa.array([a.id for a in alerts], pa.string()),
            "severity": pa.array([a.severity for a in alerts], pa.string()),
            "score": pa.array([a.score for a in alerts], pa.float64()),
            "title": pa.array([a.title for a in alerts], pa.string()),
            "path": pa.array([a.path for a in alerts], pa.string()),
            "body": pa.array([a.model_dump_json() for a in alerts], pa.string()),
        }
    )
    pairs = [(a, n) for a in alerts for n in a.network_message_ids]
    members = pa.table(
        {
            "alert_id": pa.array([a.id for a, _ in pairs], pa.string()),
            "network_message_id": pa.array([n for _, n in pairs], pa.string()),
            "severity": pa.array([a.severity for a, _ in pairs], pa.string()),
            "rank": pa.array([int(Severity.parse(a.severity)) for a, _ in pairs], pa.int32()),
        }
    )
    for table, data in (("alerts", body), ("alert_messages", members)):
        with registered(con, "_alerts_arrow", data):
            con.execute(f"INSERT INTO {table} SELECT * FROM _alerts_arrow")


def build_alerts(rows: list[dict[str, Any]], rules: tuple[Rule, ...] | None = None) -> list[Alert]:
    """Alerts from ``campaign_rows`` (member rows in member order), in Python."""
    rules = rules or catalogue()
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["gkey"], int(row["segment"]))].append(row)
    return _sorted([_alert(_campaign(members, rules), rules) for members in groups.values()])


def _campaign(members: list[dict[str, Any]], rules: tuple[Rule, ...]) -> Campaign:
    c = Campaign(
        gkey=members[0]["gkey"],
        members=len(members),
        score=statistics.median(m["score"] for m in members),
        top=max(members, key=lambda m: m["score"]),
        nmids=sorted({m["network_message_id"] for m in members}),
        senders=_distinct(m["sender"] for m in members),
        ips=_distinct(m["sender_ipv4"] or m.get("sender_ipv6") for m in members),
        subjects=_distinct(m["subject"] for m in members),
        recipients=sorted({m["recipient"] for m in members}),
        first_seen=min(m["ts"] for m in members),
        last_seen=max(m["ts"] for m in members),
    )
    for rule in rules:
        fired = [m for m in members if m[hit_column(rule)]]
        if fired:
            c.fired[rule.id] = (len(fired), fired[0])
    return c


def _distinct(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v})


def _sorted(alerts: list[Alert]) -> list[Alert]:
    alerts.sort(key=lambda a: (-a.score, a.first_seen, a.id))
    return alerts


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _alert(c: Campaign, rules: tuple[Rule, ...]) -> Alert:
    reasons: list[Reason] = []
    for rule in rules:
        if rule.id not in c.fired:
            continue
        count, first = c.fired[rule.id]
        evidence = {f: _jsonable(first.get(f)) for f in rule.evidence}
        evidence["messages"] = f"{count} of {c.members}"
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
    digest = hashlib.sha256(
        (c.gkey + "|" + c.nmids[0]).encode("utf-8", "surrogatepass")
    ).hexdigest()
    sev = severity_of(c.score)
    sender = c.senders[0] if len(c.senders) == 1 else None
    return Alert(
        id=f"DSA-{digest[:12]}",
        severity=str(sev),  # type: ignore[arg-type]
        title=_title(c.top, reasons, len(c.nmids), c.senders, c.ips),
        score=float(c.score),
        network_message_ids=c.nmids,
        sender=sender,
        source_ips=c.ips,
        path=c.top["path"],
        reasons=reasons,
        first_seen=c.first_seen,
        last_seen=c.last_seen,
        recipients=c.recipients,
        subjects=c.subjects[:20],
        message_count=len(c.nmids),
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
