"""DS-CON-001: OnPremises inbound connectors are narrowly authenticated (MC1226222).

One finding per OnPremises connector.

- PASS: certificate-based with a certificate domain that is, or wildcards over, an accepted
  domain; no ``TreatMessagesAsInternal``; ``CloudServicesMailEnabled`` only via the HCW.
- FAIL: certificate domain not ours (MC1226222 #1), an IP range wider than an IPv4 /24 or
  an IPv6 /64, no
  authentication criteria, ``TreatMessagesAsInternal`` (high), ``CloudServicesMailEnabled``
  outside the Hybrid Configuration Wizard (low).
- MANUAL: IP-only authentication (whether the IPs are shared with other tenants, MC1226222
  #2, cannot be read from config), or a certificate on a subdomain of a non-matching domain.
- NOT_APPLICABLE: no OnPremises connectors, or the connector is disabled.
"""

from __future__ import annotations

import ipaddress

from dsguard.evidence.addresses import too_wide
from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import AcceptedDomain, InboundConnector, accepted_domains
from dsguard.posture.values import MalformedValue, domain_matches, is_subdomain
from dsguard.results import Finding, SeverityName


def _wide_ranges(ips: tuple[str, ...]) -> list[str]:
    wide = []
    for ip in ips:
        try:
            net = ipaddress.ip_network(ip.strip(), strict=False)
        except ValueError:
            wide.append(ip)
            continue
        if too_wide(net):
            wide.append(ip)
    return wide


def _cert_verdict(cert: str, domains: list[AcceptedDomain]) -> str:
    """``ours``, ``subdomain`` (of a domain without MatchSubDomains) or ``foreign``."""
    for d in domains:
        if domain_matches(d.name, cert) or cert == d.name:
            return "ours"
        if is_subdomain(cert, d.name) and d.match_subdomains:
            return "ours"
    if any(is_subdomain(cert.removeprefix("*."), d.name) for d in domains):
        return "subdomain"
    return "foreign"


class OnPremisesConnectorAuth(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.INBOUND_CONNECTORS)
        if objs is None:
            return [self.not_collected(kinds.INBOUND_CONNECTORS)]
        domain_objs = snapshot.config(kinds.ACCEPTED_DOMAINS)
        domains = accepted_domains(domain_objs or [])
        findings: list[Finding] = []
        for index, obj in enumerate(objs):
            try:
                conn = InboundConnector.from_obj(obj, index)
            except MalformedValue as exc:
                findings.append(self.malformed(f"inbound connector #{index + 1}", exc))
                continue
            if not conn.is_on_premises:
                continue
            findings.append(self._evaluate(conn, domains, domain_objs is not None))
        if not findings:
            findings.append(
                self.finding(
                    "NOT_APPLICABLE",
                    kinds.INBOUND_CONNECTORS,
                    f"no OnPremises inbound connectors ({len(objs)} connectors read)",
                    evidence={"connectors_read": len(objs)},
                )
            )
        return findings

    def _evaluate(
        self, conn: InboundConnector, domains: list[AcceptedDomain], have_domains: bool
    ) -> Finding:
        evidence = conn.evidence()
        if not conn.enabled:
            return self.finding(
                "NOT_APPLICABLE", conn.name, "connector is disabled", evidence=evidence
            )
        problems: list[str] = []
        high = False
        review: list[str] = []
        if conn.treat_as_internal:
            problems.append("TreatMessagesAsInternal is on: its mail bypasses antispam")
            high = True
        if conn.cloud_services_mail and (conn.connector_source or "").lower() != "hybridwizard":
            problems.append("CloudServicesMailEnabled outside the Hybrid Configuration Wizard")
        cert = conn.certificate_domain
        if cert:
            if not have_domains:
                review.append("accepted domains not collected: certificate domain unchecked")
            else:
                verdict = _cert_verdict(cert, domains)
                evidence["certificate_domain"] = cert
                evidence["certificate_verdict"] = verdict
                if verdict == "foreign":
                    problems.append(
                        f"certificate domain {cert} is not an accepted domain (MC1226222 #1)"
                    )
                    high = True
                elif verdict == "subdomain":
                    review.append(
                        f"certificate domain {cert} is a subdomain of an accepted domain that "
                        "does not match subdomains [verify]"
                    )
        elif conn.sender_ips:
            wide = _wide_ranges(conn.sender_ips)
            if wide:
                problems.append(
                    f"IP ranges wider than one site (/24, IPv6 /64) or invalid: {', '.join(wide)}"
                )
                high = True
            review.append(
                "IP-based only: confirm the IPs are dedicated to this tenant, not a shared "
                "relay (MC1226222 #2)"
            )
        else:
            problems.append("neither a certificate nor sender IPs authenticate this connector")
            high = True
        evidence["review"] = review
        severity: SeverityName = "high" if high else "low"
        if problems:
            return self.finding(
                "FAIL",
                conn.name,
                "; ".join(problems),
                evidence=evidence,
                severity=severity,
                values={"connector": conn.name},
            )
        if review:
            return self.finding("MANUAL", conn.name, "; ".join(review), evidence=evidence)
        return self.finding(
            "PASS",
            conn.name,
            f"certificate-authenticated with accepted domain {cert}",
            evidence=evidence,
        )
