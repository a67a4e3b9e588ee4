"""``report.html``: the whole analysis as one self-contained page, for a CISO and an analyst.

It has to open on an air-gapped laptop and survive hostile content, so:

- everything is inline (CSS, a little vanilla JS for sorting, filtering and expanding, and SVG
  charts drawn in ``charts``); nothing is fetched, and a Content-Security-Policy ``<meta>``
  (``default-src 'none'``, script and style allowed only by hash) makes sure of it;
- every value goes through Jinja2 with autoescaping on, plus a ``finalize`` hook that makes
  control and bidi characters visible, because subjects, display names and header values are
  written by attackers; no data reaches JavaScript, so no string is ever parsed as code;
- long lists are capped (``LIMITS``); the page says so and links the JSON outputs beside it.

``collect(ctx)`` gathers a ``ReportModel`` from the pipeline context and the open evidence
store; ``render(model)`` turns it into HTML; ``HtmlReportStage`` does both as a pipeline stage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from dsguard import __version__
from dsguard.outputs import write_text
from dsguard.report import charts
from dsguard.report.charts import (
    CHECK_COLORS,
    PATH_COLORS,
    SEVERITY_COLORS,
    STATUS_COLORS,
    STATUS_LABELS,
    FlowDiagram,
    TimelineEvent,
)
from dsguard.results import Alert, Finding, PathRecord, PhaseResult
from dsguard.signals.features import source_ip

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

REPORT_NAME = "report.html"

# Caps that keep the page usable (and under a few MB) for a tenant with millions of messages.
LIMITS = {
    "alerts": 300,  # alert rows with a full evidence chain
    "samples": 8,  # sample messages shown per alert
    "message_ids": 25,  # network message ids listed per alert
    "recipients": 25,
    "paths": 300,
    "flow_nodes": 12,  # sources and senders drawn per flow diagram column
    "timeline_alerts": 400,
    "ingest_files": 60,
    "breaking_flows": 10,
    "top_risks": 7,
    "field_chars": 300,  # one subject, display name or evidence value
    "findings": 500,  # posture rows
    "uncovered": 200,  # DS-GOV-008 flows
    "exceptions": 300,
}

MAX_TEXT = 4000  # any single interpolated string, as a last safety net

SEVERITY_ORDER = ["critical", "high", "medium", "low", "informational"]
SEVERITY_RANK = {s: len(SEVERITY_ORDER) - i for i, s in enumerate(SEVERITY_ORDER)}
STATUS_ORDER = ["FAIL", "ERROR", "MANUAL", "PASS", "NOT_APPLICABLE"]
STATUS_RANK = {s: len(STATUS_ORDER) - i for i, s in enumerate(STATUS_ORDER)}
ANONYMOUS_PATHS = ("direct_send",)
GOVERNANCE_STATES = ("suspected", "ungoverned", "registered")

# Short column heads for the exception health matrix (full titles are in the hover text).
GOV_SHORT = {
    "DS-GOV-001": "In date",
    "DS-GOV-002": "No use after expiry",
    "DS-GOV-003": "Not expiring soon",
    "DS-GOV-004": "Owner & end date",
    "DS-GOV-005": "Used",
    "DS-GOV-006": "Narrow scope",
    "DS-GOV-007": "No connector overlap",
}
FAMILY_NAMES = {
    "ORG": "Organisation",
    "CON": "Connectors",
    "ETR": "Transport rules",
    "FLT": "Filtering",
    "SPF": "Anti-spoofing",
    "DNS": "DNS auth",
    "APP": "Applications",
    "EXP": "Exposure",
    "GOV": "Governance",
}
VERDICT_LABELS = {
    "exposed": "Exposed",
    "partially_exposed": "Partially exposed",
    "protected": "Protected",
    "unknown": "Unknown",
}
VERDICT_RANK = {"exposed": 3, "partially_exposed": 2, "unknown": 1, "protected": 0}


# --------------------------------------------------------------------------- text hygiene

_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def visible(text: str) -> str:
    """Control and bidi characters shown as ``\\xNN`` / ``\\uNNNN`` text.

    An ANSI escape or a right-to-left override in a subject is evidence; it should be seen,
    not obeyed by the terminal or the text layout.
    """

    def sub(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(sub, text)


def shorten(text: str, limit: int) -> str:
    """Attacker text is capped so one 1 MB subject cannot bloat or break the page."""
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit:,} chars)"


def _finalize(value: Any) -> Any:
    """Jinja ``finalize``: every interpolated plain string is made visible before escaping."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(shorten(value, MAX_TEXT))
    return value


def fmt_value(value: Any, limit: int = 10) -> str:
    """Evidence values as short text: lists joined, dicts as compact JSON, floats rounded."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple | set):
        items = [fmt_value(v) for v in list(value)[:limit]]
        more = len(value) - limit
        return ", ".join(items) + (f" … (+{more})" if more > 0 else "") if items else "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    if isinstance(value, datetime):
        return fmt_dt(value)
    return shorten(str(value), LIMITS["field_chars"])


def fmt_dt(value: datetime | date | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def fmt_int(value: float | int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


# --------------------------------------------------------------------------- the model


@dataclass
class FlowRow:
    """Messages of one (source, path, sender, governance state) combination."""

    source: str
    source_tag: str
    path: str
    sender: str
    status: str
    messages: int


@dataclass
class FlowSet:
    """The rows of one flow diagram: top sources and senders, the rest folded into '~'."""

    rows: list[FlowRow] = field(default_factory=list)
    sources: int = 0
    senders: int = 0
    messages: int = 0


@dataclass
class SampleMessage:
    ts: datetime | None
    recipient: str
    display_name: str
    subject: str
    source: str
    dmarc: str
    network_message_id: str


@dataclass
class BreakingFlow:
    """A non-suspected anonymous own-domain flow that RejectDirectSend would stop today."""

    sender: str
    source: str
    status: str
    exception: str
    messages: int


@dataclass
class ReportModel:
    """Everything the page shows; ``collect`` fills it, tests may build one by hand."""

    tenant: str
    domains: list[str] = field(default_factory=list)
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: str = __version__
    period: tuple[date, date] | None = None
    alerts: list[Alert] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    paths: list[PathRecord] = field(default_factory=list)
    exceptions: list[Any] = field(default_factory=list)  # dsguard.tenant.ExceptionRule
    days: list[date] = field(default_factory=list)
    daily: dict[str, list[int]] = field(default_factory=dict)
    flows_anonymous: FlowSet = field(default_factory=FlowSet)
    flows_all: FlowSet = field(default_factory=FlowSet)
    breaking: list[BreakingFlow] = field(default_factory=list)
    samples: dict[str, list[SampleMessage]] = field(default_factory=dict)
    display_names: dict[str, list[str]] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- collection


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """A query that may meet a store without a table (a partial run): empty, not a crash.
    Only a missing table is forgiven; any other error is a bug and must not blank a chart."""
    try:
        return con.execute(sql, list(params)).fetchall()
    except duckdb.CatalogException:
        return []


# Every chart counts messages, but ``features`` has one row per message *and recipient*, and
# grouping its millions of rows by message is the report's one expensive step. So it is done
# once, into a small temporary table of message counts per combination of what the charts
# group by (``FLOW_COUNTS``); each chart then sums that table instead of re-reading ``features``.
FLOW_COUNTS = "_report_flow_counts"
_ATTRS = "_report_attrs"
_KEYED = "_report_keyed_counts"
_SAMPLE_ROWS = "_report_sample_rows"
_TEMP_TABLES = (FLOW_COUNTS, _ATTRS, _KEYED, _SAMPLE_ROWS)
ANONYMOUS_SQL = "('direct_send', 'anonymous_external')"

# The per-row values the charts group messages by, under the names the queries use.
_ROWS_SQL = f"""
SELECT f.network_message_id, f.day,
    coalesce(f.p1_internal, false) AS p1_internal,
    coalesce(f.covered_in_date, false) AS in_date,
    coalesce({source_ip("f")}, '(no IP)') AS src,
    f.path,
    coalesce(f.sender, '(none)') AS sender,
    coalesce(
        nullif(array_to_string(f.exception_source_ids, ', '), ''),
        CASE WHEN f.ip_office THEN 'office egress'
             WHEN f.ip_connector_range THEN 'connector range'
             WHEN len(f.spf_domains) > 0 THEN 'in SPF of ' || f.spf_domains[1]
        END, '') AS src_tag,
    array_to_string(f.covering_ids, ', ') AS covering
FROM features f"""
# A message's source, path, sender, source tag and covering exceptions: the same for all its
# recipients in practice; where they differ, one recipient's values stand for the message.
ATTRS = "src, path, sender, src_tag, covering"
_STATUS_SQL = f"""CASE WHEN suspected THEN 'suspected'
         WHEN path NOT IN {ANONYMOUS_SQL} THEN 'trusted'
         WHEN in_date THEN 'registered'
         ELSE 'ungoverned' END"""
_SUSPECTED_SQL = "network_message_id IN (SELECT network_message_id FROM alert_messages)"

# Fast path: each message carries one 64-bit hash of its attribute strings instead of five
# strings (strings in a per-message aggregate cost most of the time), and the hashes are
# joined back to the few distinct attribute combinations afterwards. Two combinations with
# one hash would merge their counts, so a collision falls back to the exact query.
KEY_SQL = f"hash({ATTRS})"


def _fast_sql(key: str) -> tuple[str, str, str, str]:
    """Attribute table, keyed counts, collision test, final join: SQL built per call so a test
    can force collisions through ``KEY_SQL``."""
    return (
        f"""CREATE OR REPLACE TEMP TABLE {_ATTRS} AS
            SELECT {key} AS k, {ATTRS} FROM ({_ROWS_SQL}) GROUP BY ALL""",
        f"""CREATE OR REPLACE TEMP TABLE {_KEYED} AS
            WITH m AS (
                SELECT network_message_id, any_value({key}) AS k, min(day) AS day,
                    bool_or(p1_internal) AS p1_internal, bool_or(in_date) AS in_date
                FROM ({_ROWS_SQL}) GROUP BY network_message_id)
            SELECT k, day, p1_internal, in_date, {_SUSPECTED_SQL} AS suspected, count(*) AS n
            FROM m GROUP BY ALL""",
        f"SELECT count(*) <> count(DISTINCT k) FROM {_ATTRS}",
        f"""CREATE OR REPLACE TEMP TABLE {FLOW_COUNTS} AS
            SELECT {ATTRS}, day, p1_internal, {_STATUS_SQL} AS status, n
            FROM {_KEYED} JOIN {_ATTRS} USING (k)""",
    )


# Exact path (and the definition the fast one reproduces): one row per message, then counted.
EXACT_COUNTS_SQL = f"""CREATE OR REPLACE TEMP TABLE {FLOW_COUNTS} AS
    WITH m AS (
        SELECT network_message_id, any_value(src) AS src, any_value(path) AS path,
            any_value(sender) AS sender, any_value(src_tag) AS src_tag,
            any_value(covering) AS covering, min(day) AS day,
            bool_or(p1_internal) AS p1_internal, bool_or(in_date) AS in_date
        FROM ({_ROWS_SQL}) GROUP BY network_message_id)
    SELECT {ATTRS}, day, p1_internal, {_STATUS_SQL} AS status, count(*) AS n
    FROM (SELECT *, {_SUSPECTED_SQL} AS suspected FROM m) GROUP BY ALL"""


def _flow_counts(con: duckdb.DuckDBPyConnection) -> bool:
    """Build ``FLOW_COUNTS``: messages per (attributes, day, P1 internal, governance state)."""
    attrs, keyed, collision, joined = _fast_sql(KEY_SQL)
    try:
        con.execute(attrs)
        con.execute(keyed)
        row = con.execute(collision).fetchone()
        con.execute(EXACT_COUNTS_SQL if row and row[0] else joined)
    except duckdb.Error:
        return False
    return True


def _daily(con: duckdb.DuckDBPyConnection) -> tuple[list[date], dict[str, list[int]]]:
    rows = _rows(con, f"""
        SELECT day, status, sum(n) FROM {FLOW_COUNTS}
        WHERE path IN {ANONYMOUS_SQL} GROUP BY ALL ORDER BY day""")
    if not rows:
        return [], {}
    first, last = min(r[0] for r in rows), max(r[0] for r in rows)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    series = {k: [0] * len(days) for k in GOVERNANCE_STATES}
    for day, status, n in rows:
        if status in series:
            series[status][index[day]] += int(n)
    return days, series


def _flows(con: duckdb.DuckDBPyConnection, anonymous_only: bool) -> FlowSet:
    where = "path <> 'authenticated'" if anonymous_only else "true"
    top = LIMITS["flow_nodes"]
    # Ties are broken by name so the diagram is the same on every run.
    rows = _rows(con, f"""WITH
        m AS (SELECT * FROM {FLOW_COUNTS} WHERE {where}),
        top_src AS (SELECT src FROM m GROUP BY src ORDER BY sum(n) DESC, src LIMIT {top}),
        top_snd AS (SELECT sender FROM m GROUP BY sender ORDER BY sum(n) DESC, sender
                    LIMIT {top})
        SELECT CASE WHEN src IN (SELECT src FROM top_src) THEN src ELSE '~' END AS s,
            max(src_tag) AS tag, path,
            CASE WHEN sender IN (SELECT sender FROM top_snd) THEN sender ELSE '~' END AS r,
            status, sum(n) AS n
        FROM m GROUP BY s, path, r, status ORDER BY n DESC, s, path, r, status""")
    totals = _rows(con, f"""
        SELECT count(DISTINCT src), count(DISTINCT sender), sum(n) FROM {FLOW_COUNTS}
        WHERE {where}""")
    out = FlowSet()
    if totals:
        out.sources, out.senders, out.messages = (int(v or 0) for v in totals[0])
    out.rows = [FlowRow(s, tag or "", p, r, st, int(n)) for s, tag, p, r, st, n in rows]
    return out


def _breaking(con: duckdb.DuckDBPyConnection) -> list[BreakingFlow]:
    rows = _rows(con, f"""
        SELECT sender, src, status, max(covering), sum(n) AS n FROM {FLOW_COUNTS}
        WHERE path = 'direct_send' AND p1_internal AND status <> 'suspected'
        GROUP BY sender, src, status ORDER BY n DESC, sender, src, status
        LIMIT {LIMITS["breaking_flows"]}""")
    return [BreakingFlow(s, ip, st, cov or "", int(n)) for s, ip, st, cov, n in rows]


def _samples(
    con: duckdb.DuckDBPyConnection, alert_ids: list[str]
) -> tuple[dict[str, list[SampleMessage]], dict[str, list[str]]]:
    if not alert_ids:
        return {}, {}
    # The shown alerts' rows, read from ``features`` once for both the samples and the names.
    # Alerts are raised on scored rows, whose table is small; the wide text columns (subjects,
    # display names) of the authenticated majority are not stored in ``features``.
    _rows(con, f"""
        CREATE OR REPLACE TEMP TABLE {_SAMPLE_ROWS} AS
        SELECT am.alert_id, f.ts, f.recipient, f.sender_display_name, f.subject,
            f.source_ip, f.auth_dmarc, f.network_message_id
        FROM alert_messages am JOIN features f USING (network_message_id)
        WHERE am.alert_id IN (SELECT unnest(?::VARCHAR[]))""", [alert_ids])
    rows = _rows(con, f"""
        SELECT alert_id, ts, recipient, sender_display_name, subject, source_ip, auth_dmarc,
            network_message_id
        FROM {_SAMPLE_ROWS}
        QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY ts, recipient)
            <= {LIMITS["samples"]}
        ORDER BY alert_id, ts, recipient""")
    samples: dict[str, list[SampleMessage]] = defaultdict(list)
    for aid, ts, rcpt, name, subject, ip, dmarc, nmid in rows:
        cap = LIMITS["field_chars"]
        samples[aid].append(SampleMessage(ts, shorten(rcpt or "", cap), shorten(name or "", cap),
                                          shorten(subject or "", cap), ip or "", dmarc or "",
                                          nmid))
    names = _rows(con, f"""
        SELECT alert_id, list(DISTINCT sender_display_name ORDER BY sender_display_name)
        FROM {_SAMPLE_ROWS} WHERE sender_display_name <> ''
        GROUP BY alert_id""")
    cap = LIMITS["field_chars"]
    return dict(samples), {aid: [shorten(n, cap) for n in list(ns or [])[:5]]
                           for aid, ns in names}


def _period(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    rows = _rows(con, "SELECT min(day), max(day) FROM features")
    if rows and rows[0][0] is not None:
        return rows[0][0], rows[0][1]
    return None


def _tenant_label(domains: Sequence[str]) -> str:
    for d in domains:
        if "onmicrosoft" not in d:
            return d
    return domains[0] if domains else "unknown tenant"


def collect(ctx: Any) -> ReportModel:
    """The report model from an ``AnalysisContext`` whose evidence store is still open."""
    con = ctx.store.con
    tenant = ctx.tenant
    domains = list(getattr(tenant, "accepted_domains", []) or [])
    alerts = sorted(ctx.alerts, key=lambda a: (-SEVERITY_RANK.get(a.severity, 0), -a.score,
                                               a.first_seen))
    shown = [a.id for a in alerts[: LIMITS["alerts"]]]
    samples, names = _samples(con, shown)
    _flow_counts(con)
    days, daily = _daily(con)
    model = ReportModel(
        tenant=_tenant_label(domains),
        domains=domains,
        period=_period(con),
        alerts=alerts,
        findings=list(ctx.findings),
        phases=sorted(ctx.phases, key=lambda p: p.phase),
        paths=sorted(ctx.paths, key=lambda p: -p.messages),
        exceptions=list(getattr(tenant, "exceptions", []) or []),
        days=days,
        daily=daily,
        flows_anonymous=_flows(con, anonymous_only=True),
        flows_all=_flows(con, anonymous_only=False),
        breaking=_breaking(con),
        samples=samples,
        display_names=names,
        outputs=sorted(n for n in ctx.outputs if n != REPORT_NAME),
        notes=list(getattr(tenant, "notes", []) or []),
    )
    for table in _TEMP_TABLES:
        _rows(con, f"DROP TABLE IF EXISTS {table}")
    if ctx.ingest is not None:
        model.ingest = {
            "read": ctx.ingest.read,
            "loaded": ctx.ingest.loaded,
            "duplicates": ctx.ingest.duplicates,
            "rejected": ctx.ingest.rejected,
            "files": [f.model_dump() for f in ctx.ingest.files],
        }
    return model


# --------------------------------------------------------------------------- views


def _worst(statuses: Iterable[str]) -> str | None:
    seen = list(statuses)
    return max(seen, key=lambda s: STATUS_RANK.get(s, 0)) if seen else None


def _family(check_id: str) -> str:
    parts = check_id.split("-")
    return parts[1] if len(parts) > 2 else check_id


def exposure_view(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """One card per accepted domain from the DS-EXP-001 findings (the combined verdict)."""
    cards = []
    for f in findings:
        if f.check_id != "DS-EXP-001":
            continue
        ev = f.evidence
        verdict = str(ev.get("verdict") or ("unknown" if f.status != "FAIL" else "exposed"))
        factors = ev.get("factors") or {}
        cards.append({
            "domain": str(ev.get("domain") or f.resource),
            "verdict": verdict,
            "verdict_label": VERDICT_LABELS.get(verdict, verdict),
            "severity": f.severity,
            "summary": str(ev.get("summary") or f.status_extended),
            "envelope": str(ev.get("envelope_path") or "unknown"),
            "header": str(ev.get("header_path") or "unknown"),
            "reasons": [str(r) for r in ev.get("reasons") or []],
            "factors": [
                {"name": str(k).replace("_", " "), "meaning": str(v.get("meaning", "")),
                 "check": str(v.get("check_id", ""))}
                for k, v in factors.items() if isinstance(v, dict)
            ],
            "missing": [str(m) for m in ev.get("missing_inputs") or []],
        })
    cards.sort(key=lambda c: (-VERDICT_RANK.get(c["verdict"], 0), c["domain"]))
    return cards


def alert_kind(alert: Alert) -> str:
    """The campaign kind an alert's (code-written) title starts with."""
    return alert.title.split(":", 1)[0].strip() or "Alert"


def top_risks(model: ReportModel, exposure: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a CISO should read first, worst first: exposure, campaigns, governance, posture."""
    risks: list[dict[str, Any]] = []
    exposed = [c for c in exposure if c["verdict"] in ("exposed", "partially_exposed")]
    if exposed:
        sev = max((c["severity"] for c in exposed), key=lambda s: SEVERITY_RANK.get(s, 0))
        names = ", ".join(c["domain"] for c in exposed[:4]) + (" …" if len(exposed) > 4 else "")
        risks.append({
            "severity": sev,
            "headline": f"{len(exposed)} of {len(exposure)} accepted domains can be spoofed "
                        "into our mailboxes by Direct Send",
            "detail": names,
            "anchor": "#exposure",
        })
    kinds: dict[str, list[Alert]] = defaultdict(list)
    for a in model.alerts:
        kinds[alert_kind(a)].append(a)
    ranked = sorted(kinds.items(), key=lambda kv: (
        -max(SEVERITY_RANK.get(a.severity, 0) for a in kv[1]),
        -sum(a.message_count for a in kv[1])))
    for kind, group in ranked[:3]:
        worst = max(group, key=lambda a: (SEVERITY_RANK.get(a.severity, 0), a.score))
        msgs = sum(a.message_count for a in group)
        first = min(a.first_seen for a in group)
        last = max(a.last_seen for a in group)
        risks.append({
            "severity": worst.severity,
            "headline": f"{kind}: {len(group)} alert{'s' if len(group) != 1 else ''}, "
                        f"{msgs:,} message{'s' if msgs != 1 else ''}",
            "detail": f"{fmt_dt(first)} to {fmt_dt(last)} UTC · worst: {worst.severity}, "
                      f"{worst.sender or 'several senders'} from "
                      f"{', '.join(worst.source_ips[:2]) or 'unknown sources'}",
            "anchor": "#alerts",
        })
    gov_expired = [f for f in model.findings if f.check_id == "DS-GOV-002" and f.status == "FAIL"]
    if gov_expired:
        risks.append({
            "severity": "high",
            "headline": f"{len(gov_expired)} expired exception(s) still carry mail",
            "detail": "; ".join(f.status_extended for f in gov_expired[:3]),
            "anchor": "#exceptions",
        })
    uncovered = [f for f in model.findings if f.check_id == "DS-GOV-008" and f.status == "FAIL"]
    if uncovered:
        msgs = sum(int(f.evidence.get("messages") or 0) for f in uncovered)
        risks.append({
            "severity": "medium",
            "headline": f"{len(uncovered)} Direct Send flow(s) with {msgs:,} messages are "
                        "covered by no exception",
            "detail": "they break when RejectDirectSend goes on; register or stop each",
            "anchor": "#exceptions",
        })
    posture = [f for f in model.findings if f.status == "FAIL"
               and not f.check_id.startswith(("DS-GOV", "DS-EXP"))
               and SEVERITY_RANK.get(f.severity, 0) >= SEVERITY_RANK["high"]]
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in posture:
        by_check[f.check_id].append(f)
    grouped = sorted(by_check.values(), key=lambda fs: (
        -max(SEVERITY_RANK.get(f.severity, 0) for f in fs), fs[0].check_id))
    for fs in grouped[:3]:
        worst_f = max(fs, key=lambda f: SEVERITY_RANK.get(f.severity, 0))
        detail = f"{worst_f.resource}: {worst_f.status_extended}"
        if len(fs) > 1:
            detail = f"{len(fs)} resources: " + ", ".join(f.resource for f in fs[:4])
        risks.append({
            "severity": worst_f.severity,
            "headline": f"{worst_f.check_id}: {worst_f.title}",
            "detail": detail,
            "anchor": "#posture",
        })
    risks.sort(key=lambda r: -SEVERITY_RANK.get(r["severity"], 0))
    return risks[: LIMITS["top_risks"]]


def _flow_diagram(flows: FlowSet, label: str) -> Markup:
    """Sources → path kind → senders, bands coloured by governance state."""
    d = FlowDiagram()
    src_total: Counter[str] = Counter()
    snd_total: Counter[str] = Counter()
    tags: dict[str, str] = {}
    for r in flows.rows:
        src_total[r.source] += r.messages
        snd_total[r.sender] += r.messages
        if r.source_tag:
            tags.setdefault(r.source, r.source_tag)
    named_src = len([s for s in src_total if s != "~"])
    named_snd = len([s for s in snd_total if s != "~"])
    for r in flows.rows:
        if r.source == "~":
            src_label = f"{max(0, flows.sources - named_src):,} other sources"
        else:
            tag = tags.get(r.source, "")
            src_label = f"{r.source} · {tag}" if tag else r.source
        snd_label = (f"{max(0, flows.senders - named_snd):,} other senders"
                     if r.sender == "~" else r.sender)
        src_key, path_key, snd_key = f"s:{r.source}", f"p:{r.path}", f"r:{r.sender}"
        if r.source == "~":
            src_key = "~s"
        if r.sender == "~":
            snd_key = "~r"
        d.node(src_key, src_label, 0, "#5d6b7e",
               f"{src_label}: {src_total[r.source]:,} messages")
        d.node(path_key, r.path.replace("_", " "), 1, PATH_COLORS.get(r.path, "#8b95a5"))
        d.node(snd_key, snd_label, 2, "#5d6b7e",
               f"{snd_label}: {snd_total[r.sender]:,} messages")
        color = STATUS_COLORS.get(r.status, "#8b95a5")
        state = STATUS_LABELS.get(r.status, r.status)
        d.link(src_key, path_key, r.messages, color,
               f"{src_label} → {r.path}: {state}")
        d.link(path_key, snd_key, r.messages, color,
               f"{r.path} → {snd_label}: {state}")
    # Totals per band in the hover text, now that repeated rows are summed.
    for lk in d.links:
        lk.tip = f"{lk.tip} ({lk.value:,.0f} messages)"
    return charts.sankey(d, ["Source address", "Path", "Sender (envelope or From)"], label)


def _timeline(alerts: Sequence[Alert]) -> Markup:
    shown = list(alerts[: LIMITS["timeline_alerts"]])
    kinds = Counter(alert_kind(a) for a in shown)
    lanes = [k for k, _ in kinds.most_common()]
    events = [
        TimelineEvent(
            lane=alert_kind(a),
            start=a.first_seen,
            end=a.last_seen,
            size=max(1, a.message_count),
            color=SEVERITY_COLORS.get(a.severity, "#8b95a5"),
            tip=f"{a.severity.upper()} · {a.title} · {fmt_dt(a.first_seen)} to "
                f"{fmt_dt(a.last_seen)} UTC",
        )
        for a in shown
    ]
    return charts.timeline(lanes, events, "Alerts on a timeline, one lane per campaign kind")


def coverage_view(findings: Sequence[Finding]) -> dict[str, Any]:
    """Framework → requirement → check status, from the framework files and the findings."""
    from dsguard.frameworks import FrameworkError, load_frameworks

    by_check: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        by_check[f.check_id].append(f.status)
    check_status = {c: _worst(s) or "NOT_RUN" for c, s in by_check.items()}
    try:
        frameworks = load_frameworks()
    except FrameworkError as exc:
        return {"frameworks": [], "matrix": [], "framework_keys": [], "error": str(exc),
                "chart": None}
    out = []
    matrix: dict[str, dict[str, list[str]]] = defaultdict(dict)
    summary_rows: list[tuple[str, dict[str, int]]] = []
    for key, fw in frameworks.items():
        reqs = []
        counts: Counter[str] = Counter()
        for req in fw.requirements:
            checks = [{"id": c, "status": check_status.get(c, "NOT_RUN")} for c in req.checks]
            if not checks:
                state = "GAP"
            else:
                order = ["FAIL", "ERROR", "MANUAL", "NOT_RUN", "PASS", "NOT_APPLICABLE"]
                state = min((c["status"] for c in checks), key=order.index)
            counts[state] += 1
            for c in req.checks:
                matrix[c].setdefault(key, []).append(req.id)
            reqs.append({"id": req.id, "title": req.title, "checks": checks, "state": state,
                         "uncertain": req.uncertain, "notes": req.notes,
                         "legacy": req.legacy_ids})
        out.append({"key": key, "name": fw.name, "version": fw.version, "requirements": reqs,
                    "counts": dict(counts)})
        summary_rows.append((fw.name if len(fw.name) < 28 else key, dict(counts)))
    colors = {"PASS": CHECK_COLORS["PASS"], "FAIL": CHECK_COLORS["FAIL"],
              "MANUAL": CHECK_COLORS["MANUAL"], "ERROR": CHECK_COLORS["ERROR"],
              "NOT_RUN": "#cfd6df", "NOT_APPLICABLE": CHECK_COLORS["NOT_APPLICABLE"],
              "GAP": "#eef1f5"}
    chart = charts.stacked_hbars(summary_rows, colors, "Framework requirements by status",
                                 width=960, label_width=260, bar_height=20)
    rows = [{"check": c, "status": check_status.get(c, "NOT_RUN"), "cells": matrix[c]}
            for c in sorted(matrix)]
    return {"frameworks": out, "matrix": rows, "framework_keys": list(frameworks), "chart": chart,
            "error": ""}


def exceptions_view(model: ReportModel) -> dict[str, Any]:
    """Registry rows with their DS-GOV-001..007 results, plus the uncovered flows."""
    by_res: dict[str, dict[str, Finding]] = defaultdict(dict)
    other: list[Finding] = []
    uncovered: list[Finding] = []
    for f in model.findings:
        if not f.check_id.startswith("DS-GOV"):
            continue
        if f.check_id == "DS-GOV-008":
            uncovered.append(f)
        elif f.check_id in GOV_SHORT:
            by_res[f.resource][f.check_id] = f
        else:
            other.append(f)
    cols = [c for c in GOV_SHORT if any(c in r for r in by_res.values())]
    ids = [e.id for e in model.exceptions] + sorted(set(by_res) - {e.id for e in
                                                                   model.exceptions})
    rules = {e.id: e for e in model.exceptions}
    rows = []
    for ex_id in ids:
        results = by_res.get(ex_id, {})
        rule = rules.get(ex_id)
        usage = results.get("DS-GOV-005")
        failing = [f for f in results.values() if f.status == "FAIL"]
        rows.append({
            "id": ex_id,
            "owner": getattr(rule, "owner", None) or "—",
            "expires": fmt_value(getattr(rule, "expires", None)),
            "sources": list(getattr(rule, "sources", []) or []),
            "senders": list(getattr(rule, "senders", []) or []),
            "messages": usage.evidence.get("messages") if usage else None,
            "cells": [results.get(c) for c in cols],
            "failing": failing,
            "health": "attention" if failing else "healthy",
        })
    uncovered.sort(key=lambda f: -int(f.evidence.get("messages") or 0))
    return {"cols": [(c, GOV_SHORT[c]) for c in cols],
            "rows": rows[: LIMITS["exceptions"]], "rows_total": len(rows),
            "uncovered": uncovered[: LIMITS["uncovered"]], "uncovered_total": len(uncovered),
            "other": other[: LIMITS["findings"]],
            "healthy": sum(1 for r in rows if r["health"] == "healthy")}


def _posture_chart(findings: Sequence[Finding]) -> Markup:
    fam: dict[str, Counter[str]] = defaultdict(Counter)
    for f in findings:
        if f.check_id.startswith("DS-GOV"):
            continue
        fam[FAMILY_NAMES.get(_family(f.check_id), _family(f.check_id))][f.status] += 1
    rows = sorted(fam.items(), key=lambda kv: (-kv[1].get("FAIL", 0), kv[0]))
    return charts.stacked_hbars([(k, dict(v)) for k, v in rows], CHECK_COLORS,
                                "Posture results by family and status", width=440,
                                label_width=110)


def build_view(model: ReportModel) -> dict[str, Any]:
    """Everything the template shows, derived once so the template stays declarative."""
    exposure = exposure_view(model.findings)
    posture = [f for f in model.findings if not f.check_id.startswith("DS-GOV")]
    posture.sort(key=lambda f: (-STATUS_RANK.get(f.status, 0),
                                -SEVERITY_RANK.get(f.severity, 0), f.check_id, f.resource))
    sev_counts = Counter(a.severity for a in model.alerts)
    anon_total = sum(sum(v) for v in model.daily.values())
    state_totals = {k: sum(v) for k, v in model.daily.items()}
    phase0 = next((p for p in model.phases if p.phase == 0), None)
    rds = next((f for f in model.findings if f.check_id == "DS-ORG-001"), None)
    verdicts = Counter(c["verdict"] for c in exposure)
    worst = max(exposure, key=lambda c: VERDICT_RANK.get(c["verdict"], 0)) if exposure else None
    exceptions = exceptions_view(model)
    fails = [f for f in posture if f.status == "FAIL"]
    shown_alerts = model.alerts[: LIMITS["alerts"]]
    reason_peak = max((r.weight for a in shown_alerts for r in a.reasons), default=1.0) or 1.0
    return {
        "m": model,
        "limits": LIMITS,
        "exposure": exposure,
        "verdicts": verdicts,
        "worst": worst,
        "rds": rds,
        "risks": top_risks(model, exposure),
        "phase0": phase0,
        "phases": model.phases,
        "anon_total": anon_total,
        "state_totals": state_totals,
        "sev_counts": sev_counts,
        "severity_order": SEVERITY_ORDER,
        "alerts": shown_alerts,
        "reason_peak": reason_peak,
        "paths": model.paths[: LIMITS["paths"]],
        "posture": posture[: LIMITS["findings"]],
        "posture_total": len(posture),
        "posture_fail": len(fails),
        "fix_first": fails[:6],
        "families": sorted({_family(f.check_id) for f in posture}),
        "family_names": FAMILY_NAMES,
        "exceptions": exceptions,
        "coverage": coverage_view(model.findings),
        "ingest_files": (model.ingest.get("files") or [])[: LIMITS["ingest_files"]],
        "status_labels": STATUS_LABELS,
        "status_colors": STATUS_COLORS,
        "charts": {
            "trend": charts.stacked_days(
                model.days, model.daily, STATUS_COLORS, STATUS_LABELS,
                "Internal-looking anonymous mail per day, by governance state"),
            "severity": charts.hbars(
                [(s, sev_counts.get(s, 0), SEVERITY_COLORS[s]) for s in SEVERITY_ORDER],
                "Alerts by severity", width=460, label_width=110),
            "posture": _posture_chart(model.findings),
            "timeline": _timeline(model.alerts),
            "flows_anonymous": _flow_diagram(
                model.flows_anonymous,
                "Mail flow of internal-looking mail that is not authenticated"),
            "flows_all": _flow_diagram(model.flows_all, "Mail flow of all internal-looking mail"),
        },
    }


# --------------------------------------------------------------------------- rendering


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        # Jinja's own join returns Markup, which would skip ``finalize``; this one returns
        # plain text, so joined addresses are made visible and escaped like everything else.
        join=lambda items, sep="": sep.join(str(i) for i in items),
        dt=fmt_dt,
        num=fmt_int,
        val=fmt_value,
        sevrank=lambda s: SEVERITY_RANK.get(s, 0),
        statusrank=lambda s: STATUS_RANK.get(s, 0),
        family=_family,
        kind=alert_kind,
        slug=lambda s: re.sub(r"[^a-z0-9]+", "-", str(s).lower()).strip("-"),
        weightbar=_weight_bar,
    )
    return env


@functools.lru_cache(maxsize=1024)
def _weight_bar(weight: float, peak: float) -> Markup:
    """A tiny bar beside a reason's weight: negative weights (trust) are drawn in green.

    Cached: a page has thousands of reasons but only a few distinct weights, and building
    the same SVG again for each was a third of the rendering time.
    """
    w = 60 * min(1.0, abs(weight) / (peak or 1))
    color = "#2f9e6e" if weight < 0 else "#c8334a"
    return charts.el("svg", {"xmlns": "http://www.w3.org/2000/svg", "viewBox": "0 0 60 8",
                             "class": "wbar", "aria_hidden": "true"},
                     charts.el("rect", {"x": 0, "y": 0, "width": 60, "height": 8, "rx": 2,
                                        "fill": "#eef1f5"}),
                     charts.el("rect", {"x": 0, "y": 0, "width": max(w, 1.0), "height": 8,
                                        "rx": 2, "fill": color}))


def render(model: ReportModel) -> str:
    """The complete HTML page for ``model``."""
    css = (STATIC / "report.css").read_text(encoding="utf-8")
    js = (STATIC / "report.js").read_text(encoding="utf-8")
    if "</" in js or "</" in css:
        raise ValueError("inline CSS/JS must not contain '</'")
    csp = "; ".join([
        "default-src 'none'",
        f"style-src {_csp_hash(css)}",
        f"script-src {_csp_hash(js)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    template = environment().get_template("report.html.j2")
    return template.render(v=build_view(model), css=Markup(css), js=Markup(js), csp=csp)


def write_report(ctx: Any) -> Path:
    """Collect, render and write ``OUT/report.html`` atomically."""
    return write_text(ctx.out / REPORT_NAME, render(collect(ctx)))


class HtmlReportStage:
    """The last stage: one self-contained page over everything the earlier stages stored."""

    name = "report"

    def run(self, ctx: Any) -> None:
        ctx.progress(self.name, 0, 1, REPORT_NAME)
        ctx.outputs[REPORT_NAME] = write_report(ctx)
        ctx.progress(self.name, 1, 1, "")
