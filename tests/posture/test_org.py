"""DS-ORG-001..004 over bundles in the real ``ConvertTo-Json`` shapes."""

from __future__ import annotations

from typing import Any

import pytest

from posture.support import COEXISTENCE, CONTOSO, MOERA, PARKED, Bundle, one, statuses

ORG = {
    "Name": "contoso.onmicrosoft.com",
    "Guid": "4c6f2c8d-0000-4000-8000-000000000001",
    "RejectDirectSend": True,
    "EwsEnabled": None,
    "EwsApplicationAccessPolicy": None,
    "EwsAllowList": None,
    "WhenChanged": "/Date(1772500512000)/",
}


# ---------------------------------------------------------------------------- DS-ORG-001


@pytest.mark.parametrize(
    ("value", "status"),
    [(True, "PASS"), ("True", "PASS"), (False, "FAIL"), (None, "FAIL"), ("maybe", "MANUAL"),
     (7, "MANUAL")],
)
def test_ds_org_001_values(bundle: Bundle, value: Any, status: str) -> None:
    bundle.config("organization_config", {**ORG, "RejectDirectSend": value})
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.status == status
    assert finding.resource == "RejectDirectSend"
    assert finding.evidence["organization"] == "contoso.onmicrosoft.com"
    assert finding.evidence["RejectDirectSend"] == value
    assert finding.check_id == "DS-ORG-001"
    if status == "FAIL":
        assert "Set-OrganizationConfig -RejectDirectSend $true" in finding.remediation
        assert finding.frameworks["cis_m365"] == ["6.5.5"]


def test_ds_org_001_property_absent_means_false(bundle: Bundle) -> None:
    org = {k: v for k, v in ORG.items() if k != "RejectDirectSend"}
    bundle.config("organization_config", [org])  # a list of one, as -AsArray writes it
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.status == "FAIL"
    assert finding.evidence["RejectDirectSend"] is None
    assert finding.evidence["property_present"] is False


def test_ds_org_001_not_collected_vs_collected_empty(bundle: Bundle) -> None:
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.status == "MANUAL" and finding.evidence["collected"] is False
    bundle.config("organization_config", None)  # ConvertTo-Json of nothing: "null"
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.status == "MANUAL" and "collected but empty" in finding.status_extended


def test_ds_org_001_unreadable_file_is_named(bundle: Bundle) -> None:
    bundle.config("organization_config", '{"Name": "contoso", "RejectDirectSend": tr')
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.status == "MANUAL"
    assert "could not be read" in finding.status_extended
    assert finding.evidence["read_error"]


def test_ds_org_001_adminapi_page_shape(bundle: Bundle) -> None:
    bundle.config("organization_config", {"@odata.context": "x", "value": [ORG]})
    assert one(bundle.run("DS-ORG-001")).status == "PASS"


# ---------------------------------------------------------------------------- DS-ORG-002


@pytest.mark.parametrize(
    ("value", "status"),
    [(True, "PASS"), (False, "FAIL"), ("false", "FAIL"), (None, "MANUAL"), ([1], "MANUAL")],
)
def test_ds_org_002_values(bundle: Bundle, value: Any, status: str) -> None:
    bundle.config("transport_config", {"Name": "Transport Settings",
                                       "SmtpClientAuthenticationDisabled": value})
    finding = one(bundle.run("DS-ORG-002"))
    assert finding.status == status
    assert finding.resource == "SmtpClientAuthenticationDisabled"
    assert finding.evidence["transport_config"] == "Transport Settings"


def test_ds_org_002_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ORG-002")).status == "MANUAL"
    bundle.config("transport_config", [])
    assert "collected but empty" in one(bundle.run("DS-ORG-002")).status_extended


# ---------------------------------------------------------------------------- DS-ORG-003


def test_ds_org_003_overrides(bundle: Bundle) -> None:
    bundle.config("transport_config", {"Name": "Transport Settings",
                                       "SmtpClientAuthenticationDisabled": False})
    bundle.config("cas_mailbox", [
        {"Name": "scanner", "PrimarySmtpAddress": "scanner@contoso.com",
         "SmtpClientAuthenticationDisabled": False},
        {"Name": "alice", "PrimarySmtpAddress": "alice@contoso.com",
         "SmtpClientAuthenticationDisabled": None},
        {"Name": "o'brien", "PrimarySmtpAddress": "o'brien@contoso.com",
         "SmtpClientAuthenticationDisabled": "False"},
        {"Name": "bob", "PrimarySmtpAddress": "bob@contoso.com",
         "SmtpClientAuthenticationDisabled": "sometimes"},
    ])
    findings = bundle.run("DS-ORG-003")
    assert statuses(findings) == {
        "scanner@contoso.com": "FAIL", "o'brien@contoso.com": "FAIL",
        "bob@contoso.com": "MANUAL",
    }
    scanner = one(findings, "scanner@contoso.com")
    assert scanner.severity == "high"  # org-wide SMTP AUTH is on too
    assert "-Identity 'scanner@contoso.com'" in scanner.remediation
    # A tenant value is quoted safely for PowerShell: the quote is doubled.
    assert "-Identity 'o''brien@contoso.com'" in one(findings, "o'brien@contoso.com").remediation


def test_ds_org_003_pass_and_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ORG-003")).status == "MANUAL"
    bundle.config("cas_mailbox", {"Name": "alice", "SmtpClientAuthenticationDisabled": True})
    finding = one(bundle.run("DS-ORG-003"))
    assert finding.status == "PASS" and finding.evidence["mailboxes_read"] == 1


def test_ds_org_003_collected_empty_passes(bundle: Bundle) -> None:
    bundle.config("cas_mailbox", [])  # the -Filter found no overriding mailbox
    assert one(bundle.run("DS-ORG-003")).status == "PASS"


# ---------------------------------------------------------------------------- DS-ORG-004


def test_ds_org_004_inventory(bundle: Bundle) -> None:
    relay = {**CONTOSO, "DomainName": "relay.contoso.com", "Name": "relay.contoso.com",
             "DomainType": "InternalRelay", "Default": False}
    wide = {**CONTOSO, "DomainName": "fabrikam.com", "Name": "fabrikam.com",
            "MatchSubDomains": True, "Default": False}
    strict = {**wide, "DomainName": "tailspin.com", "Name": "tailspin.com"}
    unknown = {**wide, "DomainName": "wingtip.com", "Name": "wingtip.com"}
    bundle.config("accepted_domains", [CONTOSO, MOERA, COEXISTENCE, PARKED, relay, wide, strict,
                                       unknown])
    bundle.dns({
        "_dmarc.fabrikam.com": ["v=DMARC1; p=reject; sp=none"],
        "_dmarc.tailspin.com": ["v=DMARC1; p=reject"],
    })
    findings = bundle.run("DS-ORG-004")
    assert statuses(findings) == {
        "contoso.com": "PASS", "contoso.onmicrosoft.com": "PASS",
        "contoso.mail.onmicrosoft.com": "PASS", "contoso-parked.com": "PASS",
        "relay.contoso.com": "MANUAL", "fabrikam.com": "FAIL", "tailspin.com": "PASS",
        "wingtip.com": "MANUAL",
    }
    assert one(findings, "contoso-parked.com").evidence["role"] == "parked"
    assert "sp=none" in one(findings, "fabrikam.com").status_extended


def test_ds_org_004_missing_and_malformed(bundle: Bundle) -> None:
    assert one(bundle.run("DS-ORG-004")).status == "MANUAL"
    bundle.config("accepted_domains", [])
    assert "collected but empty" in one(bundle.run("DS-ORG-004")).status_extended
    bundle.config("accepted_domains", {**CONTOSO, "MatchSubDomains": "perhaps"})
    finding = one(bundle.run("DS-ORG-004"))
    assert finding.status == "MANUAL" and "MatchSubDomains" in finding.status_extended
