"""The acceptance test of the posture issue: on a synthetic tenant the findings name every
planted misconfiguration (RejectDirectSend off, an SCL -1 rule for our own domain, an
unrestricted partner connector, a weak DMARC record), and the combined exposure says so."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from dsguard.posture import CHECKS, run_checks
from dsguard.results import Finding
from posture.support import Bundle

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "posture" / "planted_tenant"

PLANTED = {
    ("DS-ORG-001", "RejectDirectSend"),
    ("DS-ETR-001", "Bypass spam filtering for internal mail"),
    ("DS-CON-002", "Legacy relay (do not use)"),
    ("DS-DNS-003", "_dmarc.northwind.example"),
}


def _findings(bundle: Bundle) -> list[Finding]:
    return run_checks(bundle.snapshot())


def test_planted_fixture_names_every_planted_misconfiguration(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "bundle")
    bundle = Bundle(tmp_path / "bundle")
    try:
        findings = _findings(bundle)
    finally:
        bundle.close()
    fails = {(f.check_id, f.resource) for f in findings if f.status == "FAIL"}
    assert fails >= PLANTED
    # Nothing else in this otherwise healthy tenant fails, apart from the combined exposure.
    others = fails - PLANTED
    assert {c for c, _ in others} <= {"DS-EXP-001"}, others
    assert not [f for f in findings if f.status == "ERROR"]
    exposure = next(f for f in findings
                    if f.check_id == "DS-EXP-001" and f.resource == "northwind.example")
    assert exposure.evidence["verdict"] == "exposed" and exposure.severity == "critical"
    assert exposure.evidence["envelope_path"] == "open"
    factors = exposure.evidence["factors"]
    assert factors["reject_direct_send"]["value"] is False
    assert factors["connectors"]["value"]["unrestricted_partner"] == ["Legacy relay (do not use)"]
    assert any("SCL -1" in b for b in factors["bypasses"]["value"])
    assert factors["dmarc"]["value"]["policy"] == "none"
    # The MOERA domain has p=reject, but RejectDirectSend is off and the '*' connector covers it.
    moera = next(f for f in findings if f.check_id == "DS-EXP-001"
                 and f.resource == "northwindtraders.onmicrosoft.example")
    assert moera.status == "FAIL"


def _synth() -> tuple[object, object, object]:
    entities = pytest.importorskip("dsguard.synth.entities")
    config = pytest.importorskip("dsguard.synth.config")
    exchange = pytest.importorskip("dsguard.synth.exchange")
    return entities, config, exchange


@pytest.mark.parametrize("profile", ["CONTOSO", "FABRIKAM"])
def test_synthetic_tenant_generator_plants_are_found(tmp_path: Path, profile: str) -> None:
    """Every planted item the generator attributes to a posture check is found by it.

    DS-APP-001 can only FAIL when the scoping inputs (application access policies, RBAC role
    assignments) are in the bundle; without them the honest answer is MANUAL.
    """
    entities, config, exchange = _synth()
    tenant = entities.build_tenant(  # type: ignore[attr-defined]
        getattr(config, profile), 20, 2, date(2026, 3, 2), 7
    )
    files, planted, _ = exchange.write_config(tenant, tmp_path)  # type: ignore[attr-defined]
    bundle = Bundle(tmp_path)
    try:
        findings = _findings(bundle)
    finally:
        bundle.close()
    index = {(f.check_id, f.resource): f for f in findings}
    scoping = {"exchange/application_access_policies.json",
               "exchange/management_role_assignments.json"} <= set(files)
    checked = [p for p in planted if p.check_id in CHECKS]
    assert {"DS-ORG-001", "DS-ETR-001", "DS-CON-002", "DS-DNS-003"} <= {
        p.check_id for p in checked
    }
    for p in checked:
        finding = index.get((p.check_id, p.resource))
        assert finding is not None, (p.check_id, p.resource, p.what)
        expected = "FAIL" if p.check_id != "DS-APP-001" or scoping else "MANUAL"
        assert finding.status == expected, (p.what, finding.status_extended)
    assert not [f for f in findings if f.status == "ERROR"]
