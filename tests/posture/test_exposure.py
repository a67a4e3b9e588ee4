"""The Direct Send exposure model and DS-EXP-001: a combination, not a boolean."""

from __future__ import annotations

from typing import Any

import pytest

from dsguard.posture import evaluate_exposure
from posture.support import COEXISTENCE, CONTOSO, MOERA, Bundle, one, statuses

POLICY = {"Name": "Office365 AntiPhish Default", "IsDefault": True, "Enabled": True,
          "EnableSpoofIntelligence": True, "HonorDmarcPolicy": True}
STRICT_DNS = {
    "contoso.com": {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"],
                    "MX": ["0 contoso-com.mail.protection.outlook.com"]},
    "_dmarc.contoso.com": ["v=DMARC1; p=reject; rua=mailto:d@contoso.com"],
}


def tenant(bundle: Bundle, *, rds: Any = True, dmarc: str | None = "p=reject",
           policy: dict[str, Any] | None = None, rules: Any = None,
           connectors: Any = None, dns: dict[str, Any] | None = None) -> None:
    bundle.config("organization_config", {"Name": "contoso", "RejectDirectSend": rds})
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("anti_phish_policies", policy or POLICY)
    bundle.config("transport_rules", rules if rules is not None else [])
    bundle.config("inbound_connectors", connectors if connectors is not None else [])
    records = dict(dns or STRICT_DNS)
    if dmarc is not None and dns is None:
        records["_dmarc.contoso.com"] = [f"v=DMARC1; {dmarc}; rua=mailto:d@contoso.com"]
    bundle.dns(records)


@pytest.mark.parametrize(
    ("kwargs", "verdict", "severity", "status"),
    [
        ({}, "protected", "informational", "PASS"),
        ({"rds": False}, "partially_exposed", "medium", "FAIL"),
        ({"dmarc": "p=none"}, "partially_exposed", "medium", "FAIL"),
        ({"dmarc": "p=reject; pct=10"}, "partially_exposed", "medium", "FAIL"),
        ({"policy": {**POLICY, "HonorDmarcPolicy": False}}, "partially_exposed", "medium",
         "FAIL"),
        ({"rds": False, "dmarc": "p=none"}, "exposed", "high", "FAIL"),
        ({"rds": None, "dmarc": "p=quarantine"}, "partially_exposed", "medium", "FAIL"),
        ({"rds": False, "rules": {"Name": "wl", "State": "Enabled", "Mode": "Enforce",
                                  "SetSCL": -1, "SenderDomainIs": ["contoso.com"]}},
         "exposed", "critical", "FAIL"),
        ({"rules": {"Name": "wl", "State": "Enabled", "Mode": "Enforce", "SetSCL": -1,
                    "SenderDomainIs": ["contoso.com"]}}, "partially_exposed", "high", "FAIL"),
        ({"connectors": {"Name": "open", "Enabled": True, "ConnectorType": "Partner",
                         "SenderDomains": ["smtp:*;1"]}}, "partially_exposed", "high", "FAIL"),
        ({"dns": {"contoso.com": {"MX": ["10 mx.gateway.example"]},
                  "_dmarc.contoso.com": ["v=DMARC1; p=reject"]}},
         "partially_exposed", "medium", "FAIL"),
    ],
)
def test_exposure_combinations(
    bundle: Bundle, kwargs: dict[str, Any], verdict: str, severity: str, status: str
) -> None:
    tenant(bundle, **kwargs)
    snapshot = bundle.snapshot()
    report = evaluate_exposure(snapshot)
    (domain,) = report.domains
    assert (domain.verdict, domain.severity) == (verdict, severity), domain.reasons
    finding = one(bundle.run("DS-EXP-001"))
    assert finding.status == status and finding.resource == "contoso.com"
    assert finding.evidence["verdict"] == verdict
    assert set(finding.evidence["factors"]) == {
        "reject_direct_send", "dmarc", "anti_spoof", "bypasses", "connectors", "mx_gateway"
    }
    for factor in finding.evidence["factors"].values():
        assert factor["check_id"].startswith("DS-")


def test_exposure_unknown_when_inputs_are_missing(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO, MOERA, COEXISTENCE])
    finding_map = statuses(bundle.run("DS-EXP-001"))
    # Coexistence domain excluded; nothing else collected: no verdict can be given.
    assert finding_map == {"contoso.com": "MANUAL", "contoso.onmicrosoft.com": "MANUAL"}
    report = evaluate_exposure(bundle.snapshot())
    assert {"organization_config", "anti_phish_policies", "transport_rules",
            "inbound_connectors", "dns"} <= set(report.missing_inputs)


def test_exposure_without_accepted_domains(bundle: Bundle) -> None:
    assert one(bundle.run("DS-EXP-001")).status == "MANUAL"
    bundle.config("accepted_domains", [])
    assert "collected but empty" in one(bundle.run("DS-EXP-001")).status_extended


def test_exposure_counts_allow_lists_and_spoof_pairs(bundle: Bundle) -> None:
    tenant(bundle)
    bundle.config("tenant_allow_block_list_spoof_items", [
        {"SpoofedUser": "ceo@contoso.com", "SendingInfrastructure": "x.example",
         "SpoofType": "Internal", "Action": "Allow"}])
    bundle.config("hosted_content_filter_policy", {"Name": "Default",
                                                   "AllowedSenderDomains": ["contoso.com"]})
    bundle.config("hosted_connection_filter_policy", {"Name": "Default",
                                                      "IPAllowList": ["192.0.2.1"]})
    (domain,) = evaluate_exposure(bundle.snapshot()).domains
    assert domain.verdict == "partially_exposed" and domain.severity == "high"
    bypasses = next(f for f in domain.factors if f.name == "bypasses").value
    assert len(bypasses) == 2
    assert any("connection-filter allow list" in r for r in domain.reasons)


def test_exposure_malformed_reject_direct_send_is_unknown(bundle: Bundle) -> None:
    tenant(bundle, rds="perhaps")
    (domain,) = evaluate_exposure(bundle.snapshot()).domains
    assert domain.envelope_path == "unknown" and domain.header_path == "blocked"
    finding = one(bundle.run("DS-EXP-001"))
    assert finding.status == "MANUAL" and "Unknown" in finding.status_extended
