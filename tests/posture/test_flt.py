"""DS-FLT-001..004 and DS-SPF-001: allow lists, safe list, spoof pairs, anti-phishing."""

from __future__ import annotations

from typing import Any

import pytest

from posture.support import CONTOSO, Bundle, one, statuses

CONN_FILTER = {"Name": "Default", "IsDefault": True, "IPAllowList": [], "IPBlockList": [],
               "EnableSafeList": False, "WhenChanged": "/Date(1772500512000)/"}


# ----------------------------------------------------------------------- DS-FLT-001 / 002


@pytest.mark.parametrize(
    ("allow", "status"),
    [([], "PASS"), (None, "PASS"), (["192.0.2.0/24"], "FAIL"), ("192.0.2.1", "FAIL"),
     ({"odd": 1}, "MANUAL")],
)
def test_ds_flt_001_ip_allow_list(bundle: Bundle, allow: Any, status: str) -> None:
    bundle.config("hosted_connection_filter_policy", {**CONN_FILTER, "IPAllowList": allow})
    finding = one(bundle.run("DS-FLT-001"))
    assert finding.status == status and finding.resource == "Default"
    if status == "FAIL":
        assert "-Identity 'Default' -IPAllowList @{}" in finding.remediation
        assert finding.frameworks["cisa_scubagear"] == ["MS.SECURITYSUITE.8.1v1",
                                                        "MS.EXO.12.1v1"]


@pytest.mark.parametrize(
    ("safe", "status"),
    [(False, "PASS"), (None, "PASS"), (True, "FAIL"), ("True", "FAIL"), ("on", "MANUAL")],
)
def test_ds_flt_002_safe_list(bundle: Bundle, safe: Any, status: str) -> None:
    bundle.config("hosted_connection_filter_policy", [{**CONN_FILTER, "EnableSafeList": safe}])
    assert one(bundle.run("DS-FLT-002")).status == status


@pytest.mark.parametrize("check_id", ["DS-FLT-001", "DS-FLT-002"])
def test_ds_flt_connection_filter_missing(bundle: Bundle, check_id: str) -> None:
    assert one(bundle.run(check_id)).status == "MANUAL"
    bundle.config("hosted_connection_filter_policy", [])
    assert "collected but empty" in one(bundle.run(check_id)).status_extended


# ---------------------------------------------------------------------------- DS-FLT-003


def test_ds_flt_003_allowed_sender_domains(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("hosted_content_filter_policy", [
        {"Name": "Default", "AllowedSenderDomains": [], "AllowedSenders": ["a@partner.example"]},
        {"Name": "Partners", "AllowedSenderDomains": ["partner.example"]},
        {"Name": "Oops", "AllowedSenderDomains": ["Contoso.com", "partner.example"]},
        {"Name": "Bad", "AllowedSenderDomains": {"x": 1}},
    ])
    findings = bundle.run("DS-FLT-003")
    assert statuses(findings) == {"Default": "PASS", "Partners": "FAIL", "Oops": "FAIL",
                                  "Bad": "MANUAL"}
    assert one(findings, "Partners").severity == "medium"
    assert one(findings, "Oops").severity == "high"
    assert one(findings, "Oops").evidence["own_domains"] == ["contoso.com"]


def test_ds_flt_003_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-FLT-003")).status == "MANUAL"
    bundle.config("hosted_content_filter_policy", None)
    assert "collected but empty" in one(bundle.run("DS-FLT-003")).status_extended


# ---------------------------------------------------------------------------- DS-FLT-004


def test_ds_flt_004_spoof_pairs(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("tenant_allow_block_list_spoof_items", [
        {"Identity": "id-1", "SpoofedUser": "payroll@contoso.com",
         "SendingInfrastructure": "198.51.100.0/24", "SpoofType": "Internal", "Action": "Allow"},
        {"Identity": "id-2", "SpoofedUser": "news.example", "SendingInfrastructure": "x.example",
         "SpoofType": "External", "Action": "Allow"},
        {"Identity": "id-3", "SpoofedUser": "ceo@contoso.com", "SendingInfrastructure": "bad.ex",
         "SpoofType": "Internal", "Action": "Block"},
    ])
    findings = bundle.run("DS-FLT-004")
    assert statuses(findings) == {"payroll@contoso.com via 198.51.100.0/24": "FAIL"}
    assert "-Ids 'id-1'" in findings[0].remediation


def test_ds_flt_004_pass_and_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-FLT-004")).status == "MANUAL"
    bundle.config("tenant_allow_block_list_spoof_items", None)
    assert one(bundle.run("DS-FLT-004")).status == "PASS"
    bundle.config("tenant_allow_block_list_spoof_items", "not json")
    finding = one(bundle.run("DS-FLT-004"))
    assert finding.status == "MANUAL" and finding.evidence["read_error"]


# ---------------------------------------------------------------------------- DS-SPF-001

DEFAULT_POLICY = {
    "Name": "Office365 AntiPhish Default", "IsDefault": True, "Enabled": True,
    "EnableSpoofIntelligence": True, "HonorDmarcPolicy": True,
    "AuthenticationFailAction": "Quarantine", "DmarcRejectAction": "Reject",
    "DmarcQuarantineAction": "Quarantine", "EnableUnauthenticatedSender": True,
}


@pytest.mark.parametrize(
    ("changes", "status", "severity"),
    [
        ({}, "PASS", "high"),
        ({"EnableSpoofIntelligence": None, "HonorDmarcPolicy": None}, "PASS", "high"),
        ({"EnableSpoofIntelligence": False}, "FAIL", "high"),
        ({"HonorDmarcPolicy": "False"}, "FAIL", "high"),
        ({"AuthenticationFailAction": "MoveToJmf"}, "FAIL", "low"),
        ({"DmarcQuarantineAction": "MoveToJmf"}, "FAIL", "low"),
        ({"HonorDmarcPolicy": "unsure"}, "MANUAL", "high"),
    ],
)
def test_ds_spf_001_policy_values(
    bundle: Bundle, changes: dict[str, Any], status: str, severity: str
) -> None:
    bundle.config("anti_phish_policies", {**DEFAULT_POLICY, **changes})
    finding = one(bundle.run("DS-SPF-001"))
    assert (finding.status, finding.severity) == (status, severity)


def test_ds_spf_001_rules_decide_which_policies_apply(bundle: Bundle) -> None:
    bundle.config("anti_phish_policies", [
        DEFAULT_POLICY,
        {**DEFAULT_POLICY, "Name": "Execs", "IsDefault": False, "HonorDmarcPolicy": False},
        {**DEFAULT_POLICY, "Name": "Old", "IsDefault": False, "EnableSpoofIntelligence": False},
    ])
    bundle.config("anti_phish_rules", [
        {"Name": "Execs", "AntiPhishPolicy": "Execs", "State": "Enabled"},
        {"Name": "Old", "AntiPhishPolicy": "Old", "State": "Disabled"},
    ])
    findings = bundle.run("DS-SPF-001")
    assert statuses(findings) == {"Office365 AntiPhish Default": "PASS", "Execs": "FAIL",
                                  "Old": "NOT_APPLICABLE"}
    assert "-Identity 'Execs'" in one(findings, "Execs").remediation


def test_ds_spf_001_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-SPF-001")).status == "MANUAL"
    bundle.config("anti_phish_policies", [])
    assert "collected but empty" in one(bundle.run("DS-SPF-001")).status_extended
