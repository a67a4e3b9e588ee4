"""Exceptions as code, the plan's PowerShell quoting, and the `exceptions check` command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from dsguard.evidence.store import EvidenceStore
from dsguard.governance.exceptions import _breadth, _entry_findings, _overlaps, draft_entry
from dsguard.governance.plan import ps_list, ps_quote
from dsguard.sources.exceptions import ExceptionsReader
from dsguard.synth import SynthConfig, generate
from dsguard.tenant import Connector, ExceptionRule, Tenant

TODAY = date(2026, 12, 1)


def _ex(**kw: object) -> ExceptionRule:
    base: dict[str, object] = {
        "id": "EX-1",
        "sources": ["203.0.113.10/32"],
        "senders": ["scan@contoso.example"],
        "recipients": ["internal"],
        "expires": date(2027, 6, 1),
        "owner": "facilities@contoso.example",
    }
    base.update(kw)
    return ExceptionRule(**base)  # type: ignore[arg-type]


def _status(findings: list, check: str) -> str:  # type: ignore[type-arg]
    (f,) = [f for f in findings if f.check_id == check]
    return f.status


def test_healthy_entry_passes_every_check() -> None:
    use = {"messages": 10, "after_expiry": 0}
    findings = _entry_findings(_ex(), TODAY, use, Tenant(["contoso.example"], False))
    assert {f.status for f in findings} == {"PASS"}
    assert len(findings) == 7


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"expires": date(2026, 11, 1)}, "DS-GOV-001"),
        ({"expires": date(2026, 12, 20)}, "DS-GOV-003"),
        ({"owner": None}, "DS-GOV-004"),
        ({"expires": None}, "DS-GOV-004"),
        ({"sources": ["198.18.0.0/15"]}, "DS-GOV-006"),
        ({"senders": ["*@contoso.example"]}, "DS-GOV-006"),
        ({"recipients": ["any"]}, "DS-GOV-006"),
    ],
)
def test_each_registry_problem_fails_its_check(change: dict[str, object], check: str) -> None:
    findings = _entry_findings(
        _ex(**change), TODAY, {"messages": 3}, Tenant(["contoso.example"], False)
    )
    assert _status(findings, check) == "FAIL"


def test_expired_but_used_and_unused() -> None:
    t = Tenant(["contoso.example"], False)
    used = _entry_findings(
        _ex(expires=date(2026, 9, 30)), TODAY, {"messages": 40, "after_expiry": 40}, t
    )
    assert _status(used, "DS-GOV-002") == "FAIL"
    unused = _entry_findings(_ex(), TODAY, None, t)
    assert _status(unused, "DS-GOV-005") == "FAIL"


def test_breadth_and_connector_overlap() -> None:
    assert _breadth(_ex()) == []
    assert any("spans" in p for p in _breadth(_ex(sources=["10.0.0.0/16"])))
    partner = Connector(
        "Printers", "Partner", True, ["contoso.example"], ["203.0.113.0/28"], True, False, None
    )
    other = Connector(
        "Elsewhere", "Partner", True, ["contoso.example"], ["192.0.2.0/28"], True, False, None
    )
    foreign = Connector(
        "Vendor", "Partner", True, ["vendor.test"], ["203.0.113.0/28"], True, False, None
    )
    t = Tenant(["contoso.example"], False, connectors=[partner, other, foreign])
    assert _overlaps(_ex(), t) == ["connector Printers"]


@pytest.mark.parametrize(
    "hostile",
    ["a'; Remove-Mailbox -Identity x; '", "name\u2019; calc", "line\nbreak", "$(Get-Secret)"],
)
def test_powershell_quoting_keeps_hostile_values_inside_the_literal(hostile: str) -> None:
    q = ps_quote(hostile)
    assert q.startswith("'") and q.endswith("'")
    inner = q[1:-1]
    # Every quote inside is doubled, so the literal never closes early.
    assert "'" not in inner.replace("''", "")
    assert "\n" not in q
    assert ps_list([]) == "@()"


def test_check_command_drafts_load_back_as_entries(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=40, days=10, seed=3))
    drafts = tmp_path / "drafts.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dsguard.cli",
            "exceptions",
            "check",
            str(bundle),
            "--drafts",
            str(drafts),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout)
    uncovered = [f for f in findings if f["check_id"] == "DS-GOV-008" and f["status"] == "FAIL"]
    assert uncovered
    entries = yaml.safe_load(drafts.read_text())["exceptions"]
    assert len(entries) == len(uncovered)
    # A person pastes them in: they load through the real reader (no owner yet: a warning).
    registry = yaml.safe_load((bundle / "exceptions.yaml").read_text())
    registry["exceptions"] += entries
    (bundle / "exceptions.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        (rep,) = store.ingest([(ExceptionsReader(), bundle / "exceptions.yaml")], root=bundle).files
        assert rep.rejected == 0 and rep.loaded == len(registry["exceptions"])
        assert any("owner" in w for w in rep.warnings)


def test_a_draft_names_each_source_as_itself_in_either_family(tmp_path: Path) -> None:
    flows = [
        {"source": "2001:DB8::A", "internal_only": True},
        {"source": "203.0.113.7", "internal_only": True},
        {"source": None, "internal_only": True},
    ]
    entry = draft_entry("scan@contoso.example", flows, 1, TODAY)
    assert entry["sources"] == ["2001:db8::a/128", "203.0.113.7/32"]
    registry = tmp_path / "exceptions.yaml"
    registry.write_text(yaml.safe_dump({"exceptions": [entry]}, sort_keys=False))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        (rep,) = store.ingest([(ExceptionsReader(), registry)], root=tmp_path).files
        assert rep.rejected == 0 and rep.loaded == 1
        (sources,) = store.con.execute("SELECT sources FROM exceptions").fetchone() or [None]
        assert sorted(sources) == entry["sources"]


def _plan_with(sources: list[str]) -> str:
    from dsguard.governance.plan import render_plan

    tenant = Tenant(["contoso.example"], False, exceptions=[_ex(sources=sources)])
    usage = {"EX-1": {"messages": 5, "foreign_senders": []}}
    return render_plan(tenant, [], [], [], usage)


def test_plan_flags_ipv6_ranges_while_their_support_is_unverified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dsguard.governance import plan

    both = ["203.0.113.10/32", "2001:db8:5::/64"]
    assert plan.IPV6_RANGES_ACCEPTED is None  # until a lab says otherwise
    text = _plan_with(both)
    assert "-ExceptIfSenderIpRanges '2001:db8:5::/64','203.0.113.10/32'" in text
    # A /64 is one IPv6 site network, so the exception binds by IP like an IPv4 /32 or /24.
    assert "-SenderIPAddresses '203.0.113.10/32','2001:db8:5::/64'" in text
    assert "IPv6 sources (2001:db8:5::/64)" in text and "unverified" in text
    assert "# EX-1: IPv6 sources" in text
    assert "unverified" not in _plan_with(["203.0.113.10/32"])

    monkeypatch.setattr(plan, "IPV6_RANGES_ACCEPTED", True)
    text = _plan_with(both)
    assert "2001:db8:5::/64" in text and "IPv6 sources" not in text

    monkeypatch.setattr(plan, "IPV6_RANGES_ACCEPTED", False)
    text = _plan_with(both)
    assert "-ExceptIfSenderIpRanges '203.0.113.10/32'" in text
    assert "-SenderIPAddresses '203.0.113.10/32' " in text
    assert "IPv6 sources left out (2001:db8:5::/64)" in text


def test_a_range_wider_than_one_site_network_binds_by_certificate() -> None:
    text = _plan_with(["2001:db8::/48"])
    assert "# EX-1: 2001:db8::/48 is wider than one site network" in text
    assert "-RestrictDomainsToCertificate $true" in text
    assert "-SenderIPAddresses '" not in text


@pytest.mark.parametrize(
    ("source", "broad"),
    [
        ("203.0.113.0/24", False),
        ("203.0.113.0/23", True),
        ("2001:db8:5::/64", False),
        ("2001:db8:5::7/128", False),
        ("2001:db8::/48", True),
    ],
)
def test_too_broad_is_wider_than_one_site_network_in_either_family(
    source: str, broad: bool
) -> None:
    problems = _breadth(_ex(sources=[source]))
    assert any(p.startswith(f"source {source} spans") for p in problems) == broad, problems


def test_ipv6_only_sources_bind_by_certificate_when_ip_binding_cannot_name_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dsguard.governance import plan

    monkeypatch.setattr(plan, "IPV6_RANGES_ACCEPTED", False)
    text = _plan_with(["2001:db8:5::/64"])
    assert "# EX-1: no source an IP-bound connector can name" in text
    assert "| scan@contoso.example | certificate |" in text
    assert "-SenderIPAddresses '" not in text and "-ExceptIfSenderIpRanges" not in text
    assert "no registered source ranges to except" in text
