"""DS-ETR-001..003: transport rules, with State, Mode, header and IP gating kept."""

from __future__ import annotations

from typing import Any

from posture.support import CONTOSO, Bundle, one, statuses

RULE: dict[str, Any] = {
    "Name": "rule", "Guid": "00000000-0000-0000-0000-0000000000aa", "Priority": 0,
    "State": "Enabled", "Mode": "Enforce", "SetSCL": None, "SenderDomainIs": None,
    "FromAddressContainsWords": None, "FromAddressMatchesPatterns": None,
    "SenderIpRanges": None, "HeaderContainsMessageHeader": None, "HeaderContainsWords": None,
    "HeaderMatchesMessageHeader": None, "HeaderMatchesPatterns": None, "FromScope": None,
    "SetHeaderName": None, "SetHeaderValue": None, "PrependSubject": None,
    "Quarantine": False, "DeleteMessage": False, "RejectMessageReasonText": None,
    "WhenChanged": "/Date(1772500512000)/",
}


def rule(name: str, **kw: Any) -> dict[str, Any]:
    return {**RULE, "Name": name, **kw}


# ---------------------------------------------------------------------------- DS-ETR-001


def test_ds_etr_001_scl_bypass_rules(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns({"contoso.com": {"MX": ["0 contoso-com.mail.protection.outlook.com"]}})
    bundle.config("transport_rules", [
        rule("own", SetSCL=-1, SenderDomainIs=["contoso.com"]),
        rule("partner", SetSCL="-1", SenderDomainIs=["partner.example"]),
        rule("words", SetSCL=-1, FromAddressContainsWords=["@contoso.com"]),
        rule("address", SetSCL=-1, FromAddressContainsWords=["ceo@contoso.com"]),
        rule("auth-gated", SetSCL=-1, SenderDomainIs=["contoso.com"],
             HeaderMatchesMessageHeader="Authentication-Results",
             HeaderMatchesPatterns=["dmarc=pass"]),
        rule("ip-gated", SetSCL=-1, SenderDomainIs=["contoso.com"],
             SenderIpRanges=["203.0.113.0/24"]),
        rule("disabled", State="Disabled", SetSCL=-1, SenderDomainIs=["contoso.com"]),
        rule("audit", Mode="Audit", SetSCL=-1, SenderDomainIs=["contoso.com"]),
        rule("quarantine", SetSCL=9, SenderDomainIs=["contoso.com"]),
        rule("recipient", SetSCL=-1),
    ])
    findings = bundle.run("DS-ETR-001")
    assert statuses(findings) == {
        "own": "FAIL", "partner": "FAIL", "words": "FAIL", "auth-gated": "PASS",
        "ip-gated": "PASS", "disabled": "FAIL", "audit": "FAIL",
    }
    own = one(findings, "own")
    assert own.severity == "high" and own.evidence["own_domains"] == ["contoso.com"]
    assert "Set-TransportRule -Identity 'own' -SetSCL 0" in own.remediation
    assert one(findings, "partner").severity == "medium"
    assert one(findings, "disabled").severity == "low"
    assert one(findings, "disabled").evidence["ConfigDisabled"] is True


def test_ds_etr_001_ip_gate_behind_gateway_gates_nothing(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns({"contoso.com": {"MX": ["10 mx.gateway.example"]}})
    bundle.config("transport_rules", rule("ip-gated", SetSCL=-1, SenderDomainIs="contoso.com",
                                          SenderIpRanges="203.0.113.0/24"))
    finding = one(bundle.run("DS-ETR-001"))
    assert finding.status == "FAIL" and "gates nothing" in finding.status_extended


def test_ds_etr_001_pass_missing_malformed(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ETR-001")).status == "MANUAL"
    bundle.config("transport_rules", [])
    assert one(bundle.run("DS-ETR-001")).status == "PASS"
    bundle.config("transport_rules", [rule("bad", SetSCL="minus one",
                                           SenderDomainIs=["contoso.com"])])
    finding = one(bundle.run("DS-ETR-001"))
    assert finding.status == "MANUAL" and "SetSCL" in finding.status_extended


# ---------------------------------------------------------------------------- DS-ETR-002


def test_ds_etr_002_filter_skip_headers(bundle: Bundle) -> None:
    bundle.config("transport_rules", [
        rule("phish-sim", HeaderContainsMessageHeader="X-Sim", HeaderContainsWords=["1"],
             SetHeaderName="X-MS-Exchange-Organization-SkipSafeLinksProcessing",
             SetHeaderValue="1"),
        rule("skn", SenderDomainIs=["contoso.com"], SetHeaderName="X-Forefront-Antispam-Report",
             SetHeaderValue="SFV:SKN"),
        rule("ip-sim", SenderIpRanges=["192.0.2.10"],
             SetHeaderName="X-MS-Exchange-Organization-SkipSafeAttachmentProcessing"),
        rule("clutter", SetHeaderName="X-MS-Exchange-Organization-BypassClutter",
             SetHeaderValue="true"),
        rule("off", State="Disabled",
             SetHeaderName="x-ms-exchange-organization-skipsafelinksprocessing"),
        rule("harmless", SetHeaderName="X-Contoso-Tag", SetHeaderValue="1"),
    ])
    findings = bundle.run("DS-ETR-002")
    assert statuses(findings) == {
        "phish-sim": "FAIL", "skn": "FAIL", "ip-sim": "PASS", "clutter": "FAIL", "off": "FAIL",
    }
    assert one(findings, "phish-sim").severity == "high"
    assert one(findings, "clutter").severity == "medium"
    assert one(findings, "off").severity == "low"


def test_ds_etr_002_pass_missing_malformed(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ETR-002")).status == "MANUAL"
    bundle.config("transport_rules", rule("harmless", PrependSubject="[Ext] "))
    assert one(bundle.run("DS-ETR-002")).status == "PASS"
    bundle.config("transport_rules", [rule("bad", Priority="first",
                                           SetHeaderName="X-Forefront-Antispam-Report")])
    assert one(bundle.run("DS-ETR-002")).status == "MANUAL"


# ---------------------------------------------------------------------------- DS-ETR-003


def test_ds_etr_003_external_in_outlook(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("external_in_outlook", {"Identity": "contoso", "Enabled": True,
                                          "AllowList": ["partner.example"]})
    finding = one(bundle.run("DS-ETR-003"))
    assert finding.status == "PASS" and "unverified" in finding.status_extended


def test_ds_etr_003_allow_list_with_own_domain(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("external_in_outlook", {"Identity": "contoso", "Enabled": True,
                                          "AllowList": ["contoso.com", "*"]})
    finding = one(bundle.run("DS-ETR-003"))
    assert finding.status == "FAIL" and "contoso.com, *" in finding.status_extended


def test_ds_etr_003_rule_based_tagging_and_compensating_rule(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("external_in_outlook", {"Identity": "contoso", "Enabled": False,
                                          "AllowList": None})
    bundle.config("transport_rules", [
        rule("tag", FromScope="NotInOrganization", PrependSubject="[External] "),
        rule("anon-own", FromScope="NotInOrganization", SenderDomainIs=["contoso.com"],
             SetSCL=7),
    ])
    finding = one(bundle.run("DS-ETR-003"))
    assert finding.status == "PASS"
    assert finding.evidence["tagging_rules"] == ["tag"]
    assert finding.evidence["compensating_rules"] == ["anon-own"]


def test_ds_etr_003_fail_missing_malformed(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ETR-003")).status == "MANUAL"
    bundle.config("transport_rules", [rule("audit-tag", Mode="Audit",
                                           FromScope="NotInOrganization",
                                           PrependSubject="[External] ")])
    finding = one(bundle.run("DS-ETR-003"))
    assert finding.status == "FAIL" and "not identified" in finding.status_extended
    bundle.config("external_in_outlook", {"Identity": "contoso", "Enabled": "sure"})
    assert one(bundle.run("DS-ETR-003")).status == "MANUAL"
