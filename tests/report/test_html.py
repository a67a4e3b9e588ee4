"""report.html without a browser: escaping of hostile text, the CSP, self-containment, caps,
and the evidence-store queries on a tiny hand-made store."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from markupsafe import Markup

from dsguard.report import charts
from dsguard.report import html as report_html
from dsguard.report.html import (
    LIMITS,
    FlowRow,
    FlowSet,
    HtmlReportStage,
    ReportModel,
    SampleMessage,
    collect,
    render,
    visible,
)
from dsguard.results import Alert, Finding, PathRecord, PhaseResult, Reason

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
ANSI = "\x1b[31m"
RLO = "\u202e"
T0 = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def _alert(i: int = 0, *, subject: str = f"{SCRIPT} Payslip", sender: str = "ceo@contoso.example",
           severity: str = "critical") -> Alert:
    return Alert(
        id=f"DSA-{i:012x}",
        severity=severity,  # type: ignore[arg-type]
        title=f"Direct Send From-header spoof: {sender} from 192.0.2.80 (1 message)",
        score=120.0 - i * 0.01,
        network_message_ids=[f"nmid-{i}"],
        sender=sender,
        source_ips=["192.0.2.80"],
        path="direct_send",
        reasons=[
            Reason(signal_id="DSG-AUTH-005", title="Envelope and From domains differ",
                   family="authentication", weight=15.0,
                   evidence={"subject": subject, "sender_from": sender, "n": 3}),
            Reason(signal_id="DSG-TRUST-001", title="Registered source", family="source",
                   weight=-10.0, evidence={"flags": [IMG, "x"]}),
        ],
        first_seen=T0 + timedelta(hours=i),
        last_seen=T0 + timedelta(hours=i, minutes=5),
        recipients=[f"victim{i}@contoso.example"],
        subjects=[subject],
        message_count=1,
    )


def hostile_model() -> ReportModel:
    """A tiny analysis in which every attacker-controlled field carries a payload."""
    alert = _alert(sender=f"{IMG}@contoso.example")
    findings = [
        Finding(check_id="DS-EXP-001", status="FAIL", severity="critical",
                resource="contoso.example", title="Direct Send exposure",
                evidence={"domain": "contoso.example", "verdict": "exposed",
                          "envelope_path": "open", "header_path": "open",
                          "summary": "Exposed: anyone can send as contoso.example",
                          "reasons": ["DMARC is not enforcing"],
                          "factors": {"dmarc": {"meaning": "p=none", "check_id": "DS-DNS-003"}}},
                frameworks={"cis_m365": ["6.5.5"]}),
        Finding(check_id="DS-ORG-001", status="FAIL", severity="medium",
                resource="RejectDirectSend", title="Direct Send is rejected",
                remediation="Set-OrganizationConfig -RejectDirectSend $true",
                frameworks={"cis_m365": ["6.5.5"]}),
        Finding(check_id="DS-ETR-001", status="FAIL", severity="high",
                resource=f"rule {SCRIPT}", title="No SCL -1 bypass",
                status_extended=f"rule named {IMG} sets SCL -1",
                remediation=f"Remove-TransportRule -Identity '{SCRIPT}'"),
        Finding(check_id="DS-GOV-001", status="FAIL", severity="medium", resource="EX-001",
                title="Exception is in date", status_extended=f"EX-001 expired {SCRIPT}"),
        Finding(check_id="DS-GOV-005", status="PASS", severity="low", resource="EX-001",
                title="Exception is used", evidence={"messages": 12}),
        Finding(check_id="DS-GOV-008", status="FAIL", severity="medium",
                resource=f"{IMG} from 198.51.100.7", title="All Direct Send is covered",
                evidence={"sender": f"{IMG}@contoso.example", "source": "198.51.100.7",
                          "messages": 4, "draft_yaml": f"senders: ['{SCRIPT}']\n"}),
    ]
    phases = [
        PhaseResult(phase=0, name="RejectDirectSend switched on today", rejected_messages=20,
                    rejected_p1_senders=[f"{IMG}@contoso.example"], rejected_p2_senders=[],
                    rejected_sources=["198.51.100.7"], unstopped_suspicious=["nmid-0"],
                    notes=[f"note {SCRIPT}"], as_of=date(2026, 11, 4)),
        PhaseResult(phase=1, name="Constrain who", rejected_messages=10,
                    rejected_p1_senders=[], rejected_p2_senders=[], rejected_sources=[],
                    unstopped_suspicious=[]),
    ]
    paths = [
        PathRecord(path="direct_send", senders=[f"{IMG}@contoso.example", "scan@contoso.example"],
                   sources=["198.51.100.7"], messages=4, first_seen=T0, last_seen=T0,
                   authentication={"dmarc_pass": 0, "dmarc_fail": 4}),
    ]
    rows = [
        FlowRow("198.51.100.7", "EX-001", "direct_send", f"{IMG}@contoso.example", "suspected", 3),
        FlowRow("203.0.113.10", "", "direct_send", "scan@contoso.example", "registered", 12),
        FlowRow("~", "", "direct_send", "~", "ungoverned", 2),
    ]
    return ReportModel(
        tenant="contoso.example",
        domains=["contoso.example"],
        period=(date(2026, 11, 3), date(2026, 11, 4)),
        alerts=[alert],
        findings=findings,
        phases=phases,
        paths=paths,
        exceptions=[_Rule("EX-001", ["203.0.113.10/32"], ["scan@contoso.example"],
                          date(2026, 10, 1), f"{SCRIPT}@owner")],
        days=[date(2026, 11, 3), date(2026, 11, 4)],
        daily={"suspected": [1, 0], "ungoverned": [2, 1], "registered": [5, 7]},
        flows_anonymous=FlowSet(rows, sources=3, senders=3, messages=17),
        flows_all=FlowSet(rows, sources=3, senders=3, messages=17),
        samples={alert.id: [SampleMessage(T0, "victim@contoso.example", f"CEO {IMG}",
                                          f"{SCRIPT} {ANSI}red {RLO}fdp.exe", "192.0.2.80",
                                          "fail", "nmid-0")]},
        display_names={alert.id: [f"CEO {IMG}"]},
        outputs=["alerts.jsonl", "findings.jsonl"],
    )


@dataclass
class _Rule:
    id: str
    sources: list[str]
    senders: list[str]
    expires: date | None
    owner: str | None


@pytest.fixture(scope="module")
def page() -> str:
    return render(hostile_model())


def test_payloads_never_become_markup(page: str) -> None:
    assert SCRIPT not in page
    assert IMG not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # The only script element is the report's own; no image element exists at all.
    assert len(re.findall(r"<script\b", page)) == 1
    assert not re.search(r"<img\b", page)
    assert not re.search(r"\bon[a-z]+\s*=\s*['\"]", page.replace("onerror=alert(1)", ""))


def test_control_and_bidi_characters_are_shown_not_obeyed(page: str) -> None:
    assert "\x1b" not in page and RLO not in page
    assert "\\x1b[31m" in page
    assert "\\u202e" in page
    assert visible(f"a{ANSI}b{RLO}c\u2066d") == "a\\x1b[31mb\\u202ec\\u2066d"
    assert visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_joined_lists_are_escaped_and_visible() -> None:
    model = hostile_model()
    model.paths[0].senders.insert(0, f"{ANSI}{SCRIPT}@contoso.example")
    page = render(model)
    assert "\\x1b[31m&lt;script&gt;alert(1)&lt;/script&gt;@contoso.example" in page
    assert "\x1b" not in page and SCRIPT not in page


def test_huge_hostile_text_is_capped() -> None:
    model = hostile_model()
    sample = model.samples[model.alerts[0].id][0]
    sample.subject = SCRIPT * 20_000  # 500 kB in one subject
    model.alerts[0].reasons[0].evidence["subject"] = sample.subject
    page = render(model)
    assert len(page) < len(render(hostile_model())) + 20_000
    assert "chars)" in page and SCRIPT not in page


def test_svg_labels_are_escaped() -> None:
    out = charts.el("text", {"x": 1, "data_label": f'"{SCRIPT}'}, IMG, Markup("<tspan/>"))
    assert str(out) == (
        '<text x="1" data-label="&#34;&lt;script&gt;alert(1)&lt;/script&gt;">'
        "&lt;img src=x onerror=alert(1)&gt;<tspan/></text>"
    )
    d = charts.FlowDiagram()
    d.node("a", SCRIPT, 0, "#000000")
    d.node("b", IMG, 1, "#000000")
    d.link("a", "b", 3, "#c8334a", f"{SCRIPT} → {IMG}")
    svg = str(charts.sankey(d, ["from", "to"], "flows"))
    assert SCRIPT not in svg and IMG not in svg and "&lt;script&gt;" in svg


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_strict_csp_allows_only_the_inline_style_and_script(page: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = html.unescape(csp.group(1))
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert style and script
    assert f"style-src {_hash(style.group(1))}" in policy
    assert f"script-src {_hash(script.group(1))}" in policy
    # CSP hashes do not cover style attributes: there must be none.
    assert not re.search(r"\sstyle=", page)


def test_self_contained(page: str) -> None:
    for attr, value in re.findall(r'\s(src|href|xlink:href|action)="([^"]*)"', page):
        assert not re.match(r"[a-z][a-z0-9+.-]*:", value) or value.startswith("data:"), (
            attr, value)
        assert not value.startswith("//"), value
    assert "@import" not in page and "url(" not in page
    assert 'href="alerts.jsonl"' in page  # links to the outputs are relative


def test_every_section_and_chart_renders(page: str) -> None:
    for anchor in ("summary", "trend", "plan", "alerts", "campaigns", "paths", "exceptions",
                   "posture", "frameworks", "data"):
        assert f'id="{anchor}"' in page
    assert page.count('class="chart') >= 6
    assert 'class="chart sankey"' in page
    assert "Exposed" in page and "contoso.example" in page
    assert "EX-001" in page


def test_empty_model_renders() -> None:
    page = render(ReportModel(tenant="empty.example"))
    assert "No alert" in page
    assert "Exposure not evaluated" in page


def test_caps_say_so() -> None:
    model = ReportModel(tenant="big.example",
                        alerts=[_alert(i, subject=f"s{i}") for i in range(LIMITS["alerts"] + 5)])
    page = render(model)
    assert f"Showing the {LIMITS['alerts']} most severe of {LIMITS['alerts'] + 5} alerts" in page
    assert page.count('class="main-row"') == LIMITS["alerts"]


# --------------------------------------------------------------------------- store queries


FEATURES_DDL = """
CREATE TABLE features (
    network_message_id VARCHAR, recipient VARCHAR, ts TIMESTAMPTZ, day DATE, path VARCHAR,
    sender VARCHAR, sender_ipv4 VARCHAR, sender_ipv6 VARCHAR, source_ip VARCHAR,
    subject VARCHAR,
    sender_display_name VARCHAR,
    auth_dmarc VARCHAR, p1_internal BOOLEAN, exception_source_ids VARCHAR[],
    ip_office BOOLEAN, ip_connector_range BOOLEAN, spf_domains VARCHAR[],
    covering_ids VARCHAR[], covered_in_date BOOLEAN);
CREATE TABLE alert_messages (alert_id VARCHAR, network_message_id VARCHAR, severity VARCHAR,
    rank INTEGER);
"""


@dataclass
class _Store:
    con: duckdb.DuckDBPyConnection


@dataclass
class _Tenant:
    accepted_domains: list[str]
    exceptions: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Ctx:
    out: Path
    store: _Store
    tenant: _Tenant
    alerts: list[Alert]
    findings: list[Finding] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    paths: list[PathRecord] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    ingest: Any = None
    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def progress(self, stage: str, done: int, total: int, detail: str) -> None:
        self.calls.append((stage, done, total))


def _store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute(FEATURES_DDL)
    rows = [
        # nmid, recipient, ts, path, sender, ip, subject, display, p1, exc ids, covering, in date
        ("m1", "a@contoso.example", "2026-11-03 09:00", "direct_send", "ceo@contoso.example",
         "192.0.2.80", SCRIPT, IMG, True, [], [], False),
        ("m1", "b@contoso.example", "2026-11-03 09:00", "direct_send", "ceo@contoso.example",
         "192.0.2.80", SCRIPT, IMG, True, [], [], False),
        ("m2", "a@contoso.example", "2026-11-03 10:00", "direct_send", "scan@contoso.example",
         "203.0.113.10", "Scan", "Scanner", True, ["EX-001"], ["EX-001"], True),
        ("m3", "a@contoso.example", "2026-11-05 10:00", "direct_send", "alerts@contoso.example",
         "203.0.113.45", "Alert", "Alerts", True, [], ["EX-004"], False),
        ("m4", "a@contoso.example", "2026-11-05 11:00", "authenticated", "bob@contoso.example",
         "100.64.0.1", "Hi", "Bob", True, [], [], False),
    ]
    for nmid, rcpt, ts, path, snd, ip, subj, dn, p1, exc, cov, indate in rows:
        con.execute(
            "INSERT INTO features VALUES (?, ?, ?::TIMESTAMPTZ, CAST(?::TIMESTAMPTZ AS DATE), "
            "?, ?, ?, NULL, ?, ?, ?, 'fail', ?, ?, false, false, [], ?, ?)",
            [nmid, rcpt, ts, ts, path, snd, ip, ip, subj, dn, p1, exc, cov, indate],
        )
    con.execute("INSERT INTO alert_messages VALUES ('DSA-000000000000', 'm1', 'critical', 4)")
    return con


def test_collect_reads_the_store(tmp_path: Path) -> None:
    con = _store()
    ctx = _Ctx(out=tmp_path, store=_Store(con), tenant=_Tenant(["contoso.example"]),
               alerts=[_alert(0)], outputs={"alerts.jsonl": tmp_path / "alerts.jsonl"})
    model = collect(ctx)
    assert model.tenant == "contoso.example"
    assert model.period == (date(2026, 11, 3), date(2026, 11, 5))
    # Three days (the gap day filled with zeros), one message per state; the recipient
    # fan-out of m1 counts once, the authenticated m4 not at all.
    assert model.days == [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    assert model.daily == {"suspected": [1, 0, 0], "ungoverned": [0, 0, 1],
                           "registered": [1, 0, 0]}
    states = {(r.sender, r.status, r.messages) for r in model.flows_anonymous.rows}
    assert states == {("ceo@contoso.example", "suspected", 1),
                      ("scan@contoso.example", "registered", 1),
                      ("alerts@contoso.example", "ungoverned", 1)}
    assert model.flows_all.messages == 4 and model.flows_anonymous.messages == 3
    assert {r.status for r in model.flows_all.rows} >= {"trusted"}
    tags = {r.source: r.source_tag for r in model.flows_anonymous.rows}
    assert tags["203.0.113.10"] == "EX-001"
    broken = {(b.sender, b.status, b.exception) for b in model.breaking}
    assert broken == {("scan@contoso.example", "registered", "EX-001"),
                      ("alerts@contoso.example", "ungoverned", "EX-004")}
    samples = model.samples["DSA-000000000000"]
    assert [s.recipient for s in samples] == ["a@contoso.example", "b@contoso.example"]
    assert model.display_names["DSA-000000000000"] == [IMG]
    assert model.outputs == ["alerts.jsonl"]


def test_collect_survives_a_store_without_tables(tmp_path: Path) -> None:
    ctx = _Ctx(out=tmp_path, store=_Store(duckdb.connect(":memory:")),
               tenant=_Tenant([]), alerts=[])
    model = collect(ctx)
    assert model.days == [] and model.flows_all.rows == [] and model.period is None
    assert "<html" in render(model)


def test_stage_writes_report_html(tmp_path: Path) -> None:
    ctx = _Ctx(out=tmp_path, store=_Store(_store()), tenant=_Tenant(["contoso.example"]),
               alerts=[_alert(0)])
    HtmlReportStage().run(ctx)
    out = ctx.outputs["report.html"]
    assert out == tmp_path / "report.html"
    page = out.read_text(encoding="utf-8")
    assert SCRIPT not in page and IMG not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the sample's display name
    assert ctx.calls[-1] == ("report", 1, 1)


def _collect_store(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> ReportModel:
    ctx = _Ctx(out=tmp_path, store=_Store(con), tenant=_Tenant(["contoso.example"]),
               alerts=[_alert(0)])
    return collect(ctx)


def test_hash_collision_falls_back_to_the_exact_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path keys each message by a hash of its attributes; a constant key makes every
    # combination collide, which must route to the exact query and change nothing.
    fast = _collect_store(_store(), tmp_path)
    monkeypatch.setattr(report_html, "KEY_SQL", "0")
    exact = _collect_store(_store(), tmp_path)
    for name in ("days", "daily", "flows_anonymous", "flows_all", "breaking", "samples",
                 "display_names", "period"):
        assert getattr(exact, name) == getattr(fast, name), name


def test_collect_leaves_no_temporary_tables(tmp_path: Path) -> None:
    con = _store()
    _collect_store(con, tmp_path)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)


def test_flow_ties_are_ordered_by_name(tmp_path: Path) -> None:
    # Equal counts used to come back in hash order; the diagram must not change between runs.
    con = _store()
    for i, sender in enumerate(["zed@contoso.example", "amy@contoso.example",
                                "kim@contoso.example"]):
        con.execute(
            "INSERT INTO features VALUES (?, 'a@contoso.example', '2026-11-04 08:00'::TIMESTAMPTZ,"
            " DATE '2026-11-04', 'direct_send', ?, '198.51.100.9', NULL, '198.51.100.9', 's', 'n',"
            " 'pass',"
            " true, [],"
            " false, false, [], [], false)", [f"t{i}", sender])
    rows = [(r.sender, r.messages) for r in _collect_store(con, tmp_path).flows_anonymous.rows
            if r.source == "198.51.100.9"]
    assert rows == [("amy@contoso.example", 1), ("kim@contoso.example", 1),
                    ("zed@contoso.example", 1)]


def test_weight_bars_are_cached_without_changing_them() -> None:
    for weight in (15.0, -10.0, 0.0, 40.0):
        assert report_html._weight_bar(weight, 40.0) == \
            report_html._weight_bar.__wrapped__(weight, 40.0)
