"""DS-CON-001..005: inbound connectors, Enhanced Filtering, gateway lock-down, alerting."""

from __future__ import annotations

from typing import Any

from posture.support import CONTOSO, Bundle, one, statuses

# The shape of ScubaGear's sample Get-InboundConnector export.
BASE: dict[str, Any] = {
    "Enabled": True, "ConnectorType": "Partner", "ConnectorSource": "AdminUI",
    "SenderIPAddresses": [], "SenderDomains": ["smtp:test.domain.com;1"],
    "TrustedOrganizations": [], "AssociatedAcceptedDomains": [], "RequireTls": True,
    "RestrictDomainsToIPAddresses": False, "RestrictDomainsToCertificate": False,
    "CloudServicesMailEnabled": False, "TreatMessagesAsInternal": False,
    "TlsSenderCertificateName": None, "EFTestMode": False, "ScanAndDropRecipients": [],
    "EFSkipLastIP": False, "EFSkipIPs": [], "EFSkipMailGateway": [], "EFUsers": [],
    "Name": "connector", "Guid": "00000000-0000-0000-0000-000000000001",
    "WhenCreated": "/Date(1772500512000)/",
}


def conn(name: str, **kw: Any) -> dict[str, Any]:
    return {**BASE, "Name": name, **kw}


def onprem(name: str, **kw: Any) -> dict[str, Any]:
    return conn(name, ConnectorType="OnPremises", SenderDomains=["smtp:*;1"], **kw)


# ---------------------------------------------------------------------------- DS-CON-001


def test_ds_con_001_onpremises_connectors(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("inbound_connectors", [
        onprem("cert-ok", TlsSenderCertificateName="*.contoso.com"),
        onprem("cert-x500", TlsSenderCertificateName="<I>CN=Issuing CA<S>CN=contoso.com, O=C"),
        onprem("cert-foreign", TlsSenderCertificateName="relay.vendor.example"),
        onprem("cert-sub", TlsSenderCertificateName="mail.contoso.com"),
        onprem("ip-only", SenderIPAddresses=["203.0.113.10/32"]),
        onprem("ip-wide", SenderIPAddresses=["198.51.100.0/22"]),
        onprem("ip6-site", SenderIPAddresses=["2001:db8:5::/64"]),
        onprem("ip6-wide", SenderIPAddresses=["2001:db8::/32"]),
        onprem("nothing"),
        onprem("internal", TlsSenderCertificateName="contoso.com", TreatMessagesAsInternal=True),
        onprem("cloud", TlsSenderCertificateName="contoso.com", CloudServicesMailEnabled=True),
        onprem("hcw", TlsSenderCertificateName="contoso.com", CloudServicesMailEnabled=True,
               ConnectorSource="HybridWizard"),
        onprem("off", Enabled=False),
        conn("partner"),
    ])
    findings = bundle.run("DS-CON-001")
    assert statuses(findings) == {
        "cert-ok": "PASS", "cert-x500": "PASS", "cert-foreign": "FAIL", "cert-sub": "MANUAL",
        "ip-only": "MANUAL", "ip-wide": "FAIL", "ip6-site": "MANUAL", "ip6-wide": "FAIL",
        "nothing": "FAIL", "internal": "FAIL",
        "cloud": "FAIL", "hcw": "PASS", "off": "NOT_APPLICABLE",
    }
    assert one(findings, "internal").severity == "high"
    assert one(findings, "cloud").severity == "low"
    assert "MC1226222 #1" in one(findings, "cert-foreign").status_extended
    assert "-Identity 'nothing'" in one(findings, "nothing").remediation


def test_ds_con_001_none_and_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-CON-001")).status == "MANUAL"
    bundle.config("inbound_connectors", None)
    assert one(bundle.run("DS-CON-001")).status == "NOT_APPLICABLE"
    bundle.config("inbound_connectors", conn("single partner"))
    assert one(bundle.run("DS-CON-001")).status == "NOT_APPLICABLE"


def test_ds_con_001_malformed(bundle: Bundle) -> None:
    bundle.config("inbound_connectors", [onprem("x", TreatMessagesAsInternal={"a": 1})])
    finding = one(bundle.run("DS-CON-001"))
    assert finding.status == "MANUAL" and "TreatMessagesAsInternal" in finding.status_extended


# ---------------------------------------------------------------------------- DS-CON-002


def test_ds_con_002_partner_connectors(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.config("inbound_connectors", [
        conn("ip-locked", SenderDomains=["smtp:*;1"], SenderIPAddresses=["203.0.113.5"],
             RestrictDomainsToIPAddresses=True),
        conn("cert-locked", RestrictDomainsToCertificate=True,
             TlsSenderCertificateName="mail.partner.example"),
        conn("cert-no-tls", RestrictDomainsToCertificate=True, RequireTls=False,
             TlsSenderCertificateName="mail.partner.example"),
        conn("wildcard", SenderDomains=["smtp:*;1"]),
        conn("own-domain", SenderDomains=["smtp:contoso.com;1", "smtp:partner.example;1"]),
        conn("ips-not-enforced", SenderDomains=["smtp:*;1"], SenderIPAddresses=["203.0.113.5"]),
        conn("scope-only"),
        conn("disabled", Enabled=False, SenderDomains=["smtp:*;1"]),
        onprem("onprem", TlsSenderCertificateName="contoso.com"),
    ])
    findings = bundle.run("DS-CON-002")
    assert statuses(findings) == {
        "ip-locked": "PASS", "cert-locked": "PASS", "cert-no-tls": "FAIL", "wildcard": "FAIL",
        "own-domain": "FAIL", "ips-not-enforced": "FAIL", "scope-only": "FAIL",
        "disabled": "NOT_APPLICABLE",
    }
    assert one(findings, "wildcard").severity == "high"
    assert one(findings, "wildcard").evidence["SenderDomains"] == ["*"]
    assert one(findings, "own-domain").evidence["own_domains_in_scope"] == ["contoso.com"]
    assert one(findings, "scope-only").severity == "low"
    assert one(findings, "wildcard").frameworks["nist_csf_2.0"] == [
        "ID.AM-03", "PR.AA-03", "PR.IR-01"
    ]


def test_ds_con_002_none_and_malformed(bundle: Bundle) -> None:
    assert one(bundle.run("DS-CON-002")).status == "MANUAL"
    bundle.config("inbound_connectors", [])
    assert one(bundle.run("DS-CON-002")).status == "NOT_APPLICABLE"
    bundle.config("inbound_connectors", [conn("bad", RestrictDomainsToIPAddresses="yes please")])
    assert one(bundle.run("DS-CON-002")).status == "MANUAL"


# ----------------------------------------------------------------------- DS-CON-003 / 004

GATEWAY_DNS = {
    "contoso.com": {"MX": ["10 mx1.gateway.example."], "TXT": ["v=spf1 -all"]},
}
EOP_DNS = {
    "contoso.com": {"MX": ["0 contoso-com.mail.protection.outlook.com."]},
}


def test_ds_con_003_mx_at_eop_passes(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(EOP_DNS)
    assert one(bundle.run("DS-CON-003")).status == "PASS"


def test_ds_con_003_gateway_without_ef_fails(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(GATEWAY_DNS)
    bundle.config("inbound_connectors", [conn("gateway", SenderDomains=["smtp:*;1"],
                                              EFTestMode=True, EFSkipLastIP=True)])
    bundle.config("arc_config", {"Identity": "Default", "ArcTrustedSealers": None})
    finding = one(bundle.run("DS-CON-003"))
    assert finding.status == "FAIL"
    assert "ArcTrustedSealers is empty" in finding.status_extended
    assert "-Identity 'gateway'" in finding.remediation


def test_ds_con_003_gateway_with_ef_and_arc_passes(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(GATEWAY_DNS)
    bundle.config("inbound_connectors", [conn("gateway", SenderDomains=["smtp:*;1"],
                                              EFSkipIPs=["192.0.2.1"])])
    bundle.config("arc_config", {"Identity": "Default", "ArcTrustedSealers": "gateway.example"})
    assert one(bundle.run("DS-CON-003")).status == "PASS"


def test_ds_con_003_missing_inputs(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    assert one(bundle.run("DS-CON-003")).status == "MANUAL"  # no dns.json
    bundle.dns({"contoso.com": ["v=spf1 -all"]})  # TXT only: no MX captured
    assert "no MX" in one(bundle.run("DS-CON-003")).status_extended
    bundle.dns(GATEWAY_DNS)
    finding = one(bundle.run("DS-CON-003"))
    assert finding.status == "MANUAL" and finding.evidence["input"] == "inbound_connectors"
    bundle.config("inbound_connectors", [conn("gw", SenderDomains=["smtp:*;1"],
                                              EFSkipLastIP=True)])
    assert "ARC config not collected" in one(bundle.run("DS-CON-003")).status_extended


def test_ds_con_004_lockdown(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(EOP_DNS)
    assert one(bundle.run("DS-CON-004")).status == "NOT_APPLICABLE"
    bundle.dns(GATEWAY_DNS)
    bundle.config("inbound_connectors", [conn("open", SenderDomains=["smtp:*;1"])])
    finding = one(bundle.run("DS-CON-004"))
    assert finding.status == "MANUAL" and "[verify" in finding.status_extended
    bundle.config("inbound_connectors", [conn("lock", SenderDomains=["smtp:*;1"],
                                              SenderIPAddresses=["192.0.2.1"],
                                              RestrictDomainsToIPAddresses=True)])
    assert statuses(bundle.run("DS-CON-004")) == {"lock": "PASS"}


def test_ds_con_004_missing_inputs(bundle: Bundle) -> None:
    assert one(bundle.run("DS-CON-004")).status == "MANUAL"
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns({"contoso.com": ["v=spf1 -all"]})
    assert "no MX captured" in one(bundle.run("DS-CON-004")).status_extended
    bundle.dns(GATEWAY_DNS)
    assert one(bundle.run("DS-CON-004")).evidence["input"] == "inbound_connectors"


# ---------------------------------------------------------------------------- DS-CON-005


def test_ds_con_005_alert_policy(bundle: Bundle) -> None:
    assert one(bundle.run("DS-CON-005")).status == "MANUAL"
    bundle.config("protection_alerts", [{"Name": "Suspicious connector activity",
                                         "Disabled": False}])
    assert one(bundle.run("DS-CON-005")).status == "PASS"
    bundle.config("protection_alerts", {"Name": "Suspicious Connector Activity",
                                        "Disabled": True})
    assert one(bundle.run("DS-CON-005")).status == "FAIL"
    bundle.config("protection_alerts", [{"Name": "Other", "Disabled": False}])
    assert one(bundle.run("DS-CON-005")).status == "FAIL"
    bundle.config("protection_alerts", {"Name": "Suspicious connector activity",
                                        "Disabled": "n/a"})
    assert one(bundle.run("DS-CON-005")).status == "MANUAL"


def test_ds_con_003_004_malformed_connectors(bundle: Bundle) -> None:
    bundle.config("accepted_domains", [CONTOSO])
    bundle.dns(GATEWAY_DNS)
    bundle.config("inbound_connectors", [conn("gw", SenderDomains=["smtp:*;1"],
                                              EFSkipLastIP="sometimes")])
    for check_id in ("DS-CON-003", "DS-CON-004"):
        finding = one(bundle.run(check_id))
        assert finding.status == "MANUAL" and "EFSkipLastIP" in finding.status_extended
