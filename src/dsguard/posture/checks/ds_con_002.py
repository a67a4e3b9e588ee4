"""DS-CON-002: Partner inbound connectors are restricted to IPs or a certificate.

One finding per enabled Partner connector.

- PASS: ``RestrictDomainsToIPAddresses`` with sender IPs, or ``RestrictDomainsToCertificate``
  with a certificate name and ``RequireTls``.
- FAIL (high): unrestricted while ``SenderDomains`` covers one of our accepted domains or is
  ``*``: mail claiming our domain gets partner treatment from any IP, and the connector
  exempts nothing from RejectDirectSend [inference from the parameter docs].
- FAIL (low): unrestricted, scoped to foreign domains only (it neither exempts legitimate
  senders from RejectDirectSend nor restricts attackers).
- NOT_APPLICABLE: no Partner connectors, or the connector is disabled.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import InboundConnector, accepted_domains, is_own_domain
from dsguard.posture.values import MalformedValue
from dsguard.results import Finding


class PartnerConnectorRestricted(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.INBOUND_CONNECTORS)
        if objs is None:
            return [self.not_collected(kinds.INBOUND_CONNECTORS)]
        domains = accepted_domains(snapshot.config(kinds.ACCEPTED_DOMAINS) or [])
        findings: list[Finding] = []
        for index, obj in enumerate(objs):
            try:
                conn = InboundConnector.from_obj(obj, index)
            except MalformedValue as exc:
                findings.append(self.malformed(f"inbound connector #{index + 1}", exc))
                continue
            if not conn.is_partner:
                continue
            evidence = conn.evidence()
            if not conn.enabled:
                findings.append(
                    self.finding("NOT_APPLICABLE", conn.name, "connector is disabled",
                                 evidence=evidence)
                )
                continue
            if conn.ip_restricted or conn.cert_restricted:
                how = "sender IPs" if conn.ip_restricted else "a TLS certificate"
                findings.append(
                    self.finding("PASS", conn.name, f"restricted to {how}", evidence=evidence)
                )
                continue
            own = [d for d in conn.sender_domains if d != "*" and is_own_domain(d, domains)]
            evidence["own_domains_in_scope"] = own
            values = {"connector": conn.name}
            if conn.wildcard or own:
                scope = "every domain (*)" if conn.wildcard else ", ".join(own)
                findings.append(
                    self.finding(
                        "FAIL",
                        conn.name,
                        f"unrestricted Partner connector for {scope}: neither "
                        "RestrictDomainsToIPAddresses nor RestrictDomainsToCertificate is set, "
                        "so mail claiming these domains matches it from any IP",
                        evidence=evidence,
                        severity="high",
                        values=values,
                    )
                )
            else:
                findings.append(
                    self.finding(
                        "FAIL",
                        conn.name,
                        "scope-only Partner connector (SenderDomains only): it does not exempt "
                        "senders from RejectDirectSend and does not restrict them",
                        evidence=evidence,
                        severity="low",
                        values=values,
                    )
                )
        if not findings:
            findings.append(
                self.finding(
                    "NOT_APPLICABLE",
                    kinds.INBOUND_CONNECTORS,
                    f"no Partner inbound connectors ({len(objs)} connectors read)",
                    evidence={"connectors_read": len(objs)},
                )
            )
        return findings
