"""DS-DNS-001..004 over ``dns.json`` in both documented shapes."""

from __future__ import annotations

import pytest

from posture.support import COEXISTENCE, CONTOSO, MOERA, PARKED, Bundle, one, statuses

EOP = "include:spf.protection.outlook.com"


def spf_status(bundle: Bundle, records: dict[str, object], domain: str = "contoso.com") -> str:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(records)
    return one(bundle.run("DS-DNS-001"), domain).status


# ---------------------------------------------------------------------------- DS-DNS-001


@pytest.mark.parametrize(
    ("records", "status"),
    [
        ({"contoso.com": [f"v=spf1 {EOP} -all"]}, "PASS"),
        ({"contoso.com": [f"v=spf1 {EOP} ~all"],
          "_dmarc.contoso.com": ["v=DMARC1; p=reject"]}, "PASS"),
        ({"contoso.com": [f"v=spf1 {EOP} ~all"],
          "_dmarc.contoso.com": ["v=DMARC1; p=quarantine"]}, "FAIL"),
        ({"contoso.com": [f"v=spf1 {EOP} ?all"]}, "FAIL"),
        ({"contoso.com": [f"v=spf1 {EOP} +all"]}, "FAIL"),
        ({"contoso.com": [f"v=spf1 {EOP}"]}, "FAIL"),
        ({"contoso.com": ["v=spf1 ip4:192.0.2.1 -all"]}, "FAIL"),
        ({"contoso.com": [f"v=spf1 {EOP} -all", "v=spf1 -all"]}, "FAIL"),
        ({"contoso.com": ["MS=ms12345678"]}, "FAIL"),
        ({"contoso.com": [f"v=spf1 {EOP} include -all"]}, "FAIL"),
        ({"contoso.com": ["v=spf1 include:vendor.example -all"]}, "MANUAL"),
        ({"contoso.com": ["v=spf1 redirect=_spf.vendor.example"]}, "MANUAL"),
        ({"contoso.com": ["v=spf1 redirect=_spf.contoso.com"],
          "_spf.contoso.com": [f"v=spf1 {EOP} -all"]}, "PASS"),
        ({"contoso.com": ["v=spf1 include:_spf.contoso.com -all"],
          "_spf.contoso.com": [f"v=spf1 {EOP} -all"]}, "PASS"),
        ({"contoso.com": {"TXT": ['"v=spf1 include:spf.protection.outlook.com " "-all"']}},
         "PASS"),
        ({"fabrikam.com": ["v=spf1 -all"]}, "MANUAL"),
    ],
)
def test_ds_dns_001_table(bundle: Bundle, records: dict[str, object], status: str) -> None:
    assert spf_status(bundle, records) == status


def test_ds_dns_001_scope_and_parked(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO, MOERA, COEXISTENCE, PARKED])
    bundle.dns({
        "contoso.com": [f"v=spf1 {EOP} -all"],
        "contoso-parked.com": [f"v=spf1 {EOP} -all"],
    })
    findings = bundle.run("DS-DNS-001")
    # SPF skips the MOERA and coexistence domains (CIS 2.1.8).
    assert statuses(findings) == {"contoso.com": "PASS", "contoso-parked.com": "FAIL"}
    parked = one(findings, "contoso-parked.com")
    assert parked.severity == "low" and "parked" in parked.status_extended
    assert "Resolve-DnsName -Type TXT -Name 'contoso-parked.com'" in parked.remediation


def test_ds_dns_001_missing_inputs(bundle: Bundle) -> None:
    assert one(bundle.run("DS-DNS-001")).status == "MANUAL"
    bundle.config("accepted_domains", [CONTOSO])
    finding = one(bundle.run("DS-DNS-001"))
    assert finding.status == "MANUAL" and "no dns.json" in finding.status_extended


# ---------------------------------------------------------------------------- DS-DNS-002

DKIM = {
    "Domain": "contoso.com", "Enabled": True, "Status": "Valid",
    "Selector1CNAME": "selector1-contoso-com._domainkey.contoso.onmicrosoft.com",
    "Selector2CNAME": "selector2-contoso-com._domainkey.contoso.onmicrosoft.com",
    "Selector1KeySize": 2048, "KeyCreationTime": "/Date(1772500512000)/",
}


def test_ds_dns_002_dkim(bundle: Bundle) -> None:
    fabrikam = {**CONTOSO, "DomainName": "fabrikam.com", "Name": "fabrikam.com"}
    tailspin = {**CONTOSO, "DomainName": "tailspin.com", "Name": "tailspin.com"}
    wingtip = {**CONTOSO, "DomainName": "wingtip.com", "Name": "wingtip.com"}
    bundle.config("accepted_domains", [CONTOSO, MOERA, PARKED, fabrikam, tailspin, wingtip])
    bundle.config("dkim_signing_config", [
        DKIM,
        {**DKIM, "Domain": "fabrikam.com", "Enabled": False, "Status": "CnameMissing"},
        {**DKIM, "Domain": "tailspin.com"},
        {**DKIM, "Domain": "wingtip.com", "Enabled": "yes?"},
    ])
    bundle.dns({
        "selector1._domainkey.contoso.com": {
            "CNAME": ["selector1-contoso-com._domainkey.contoso.onmicrosoft.com."]},
        "selector1._domainkey.tailspin.com": {"CNAME": ["selector1-other._domainkey.x.com"]},
    })
    findings = bundle.run("DS-DNS-002")
    assert statuses(findings) == {
        "contoso.com": "PASS", "contoso-parked.com": "NOT_APPLICABLE", "fabrikam.com": "FAIL",
        "tailspin.com": "FAIL", "wingtip.com": "MANUAL",
    }
    assert one(findings, "contoso.com").evidence["cnames_checked"] is True


def test_ds_dns_002_no_config_and_missing(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    assert one(bundle.run("DS-DNS-002")).status == "MANUAL"
    bundle.config("dkim_signing_config", [])
    finding = one(bundle.run("DS-DNS-002"))
    assert finding.status == "FAIL" and "no DKIM signing config" in finding.status_extended
    bundle.config("dkim_signing_config", DKIM)
    finding = one(bundle.run("DS-DNS-002"))
    assert finding.status == "PASS" and "not captured" in finding.status_extended


# ---------------------------------------------------------------------------- DS-DNS-003


@pytest.mark.parametrize(
    ("record", "status", "severity"),
    [
        ("v=DMARC1; p=reject; rua=mailto:d@contoso.com", "PASS", "high"),
        ("v=DMARC1; p=reject; rua=mailto:d@contoso.com;", "PASS", "high"),
        ("v=DMARC1; p=none; sp=reject; rua=mailto:d@contoso.com", "FAIL", "medium"),
        ("v=DMARC1; p=quarantine; rua=mailto:d@contoso.com", "FAIL", "low"),
        ("v=DMARC1; p=reject; pct=50; rua=mailto:d@contoso.com", "FAIL", "low"),
        ("v=DMARC1; p=reject; sp=none; rua=mailto:d@contoso.com", "FAIL", "low"),
        ("v=DMARC1; p=reject; np=none; rua=mailto:d@contoso.com", "FAIL", "low"),
        ("v=DMARC1; p=reject", "FAIL", "low"),
        ("v=DMARC1; p=reject; t=y; rua=mailto:d@contoso.com", "FAIL", "low"),
        ("v=DMARC1; p=rejected", "FAIL", "high"),
        ("v=DMARC1 p=reject", "FAIL", "high"),
    ],
)
def test_ds_dns_003_table(bundle: Bundle, record: str, status: str, severity: str) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns({"contoso.com": ["v=spf1 -all"], "_dmarc.contoso.com": [record]})
    finding = one(bundle.run("DS-DNS-003"))
    assert (finding.status, finding.severity) == (status, severity), finding.status_extended
    assert finding.resource == "_dmarc.contoso.com"


def test_ds_dns_003_domains_and_fallback(bundle: Bundle) -> None:
    sub = {**CONTOSO, "DomainName": "eu.contoso.com", "Name": "eu.contoso.com"}
    orphan = {**CONTOSO, "DomainName": "mail.fabrikam.com", "Name": "mail.fabrikam.com"}
    bundle.config("accepted_domains", [CONTOSO, MOERA, COEXISTENCE, sub, orphan])
    bundle.dns({
        "contoso.com": ["v=spf1 -all"],
        "_dmarc.contoso.com": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@contoso.com"],
        "eu.contoso.com": ["v=spf1 -all"],
        "contoso.onmicrosoft.com": ["v=spf1 include:spf.protection.outlook.com -all"],
        "mail.fabrikam.com": ["v=spf1 -all"],
        "_dmarc.mail.fabrikam.com": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    })
    findings = bundle.run("DS-DNS-003")
    # DMARC keeps the MOERA domain and drops the coexistence domain (CIS 2.1.10).
    assert statuses(findings) == {
        "_dmarc.contoso.com": "FAIL", "_dmarc.eu.contoso.com": "FAIL",
        "_dmarc.contoso.onmicrosoft.com": "FAIL", "_dmarc.mail.fabrikam.com": "FAIL",
    }
    assert "sp=quarantine is weaker" in one(findings, "_dmarc.contoso.com").status_extended
    eu = one(findings, "_dmarc.eu.contoso.com")
    assert eu.evidence["record_name"] == "_dmarc.contoso.com"
    assert eu.evidence["policy_in_force"] == "quarantine"  # sp of the organisational domain
    assert "no DMARC record" in one(findings, "_dmarc.contoso.onmicrosoft.com").status_extended
    assert "2 DMARC records" in one(findings, "_dmarc.mail.fabrikam.com").status_extended


def test_ds_dns_003_not_captured(bundle: Bundle) -> None:
    sub = {**CONTOSO, "DomainName": "eu.contoso.com", "Name": "eu.contoso.com"}
    bundle.config("accepted_domains", [sub])
    bundle.dns({"eu.contoso.com": ["v=spf1 -all"]})
    finding = one(bundle.run("DS-DNS-003"))
    assert finding.status == "MANUAL" and "contoso.com" in finding.status_extended
    bundle.dns({"other.example": ["x"]})
    assert one(bundle.run("DS-DNS-003")).status == "MANUAL"


# ---------------------------------------------------------------------------- DS-DNS-004


def test_ds_dns_004_mx(bundle: Bundle) -> None:
    fabrikam = {**CONTOSO, "DomainName": "fabrikam.com", "Name": "fabrikam.com"}
    tailspin = {**CONTOSO, "DomainName": "tailspin.com", "Name": "tailspin.com"}
    bundle.config("accepted_domains", [CONTOSO, MOERA, PARKED, fabrikam, tailspin])
    bundle.dns({
        "contoso.com": {"MX": ["0 contoso-com.mail.protection.outlook.com."]},
        "fabrikam.com": {"MX": ["10 mx1.gateway.example.", "20 mx2.gateway.example."]},
        "tailspin.com": {"TXT": ["v=spf1 -all"]},
    })
    findings = bundle.run("DS-DNS-004")
    assert statuses(findings) == {"contoso.com": "PASS", "fabrikam.com": "FAIL",
                                  "tailspin.com": "MANUAL"}
    assert "mx1.gateway.example" in one(findings, "fabrikam.com").status_extended


def test_ds_dns_004_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-DNS-004")).status == "MANUAL"
    bundle.config("accepted_domains", [CONTOSO])
    assert one(bundle.run("DS-DNS-004")).status == "MANUAL"


def test_ds_dns_004_malformed_mx(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns({"contoso.com": {"MX": ["10", ""]}})
    finding = one(bundle.run("DS-DNS-004"))
    assert finding.status == "MANUAL" and finding.evidence["mx"] is None
