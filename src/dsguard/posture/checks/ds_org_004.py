"""DS-ORG-004: the accepted-domain inventory, which defines what "internal" means.

One finding per accepted domain, evidence tagging it *sending* or *parked*.

- PASS: an Authoritative domain without subdomain matching, or with it and DMARC ``sp`` at
  reject.
- FAIL: ``MatchSubDomains`` is on while the subdomain DMARC policy is not ``reject``.
- MANUAL: ``InternalRelay`` (whether the relay target is ours cannot be read from config),
  or subdomain matching whose DMARC could not be read from the captured DNS.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import lookup_dmarc
from dsguard.results import Finding


class AcceptedDomainInventory(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        findings: list[Finding] = []
        for domain in domains:
            evidence = domain.evidence()
            if (domain.domain_type or "").lower() == "internalrelay":
                findings.append(
                    self.finding(
                        "MANUAL",
                        domain.name,
                        "InternalRelay domain: its mail is treated as internal; confirm the "
                        "relay target is under our control",
                        evidence=evidence,
                    )
                )
                continue
            if not domain.match_subdomains:
                findings.append(
                    self.finding(
                        "PASS",
                        domain.name,
                        f"{domain.domain_type or 'accepted'} domain, {domain.role}",
                        evidence=evidence,
                    )
                )
                continue
            dmarc = lookup_dmarc(snapshot, domain.name, fallback=not domain.initial)
            evidence["dmarc"] = dmarc.evidence()
            sp = dmarc.subdomain_policy
            if sp is None:
                findings.append(
                    self.finding(
                        "MANUAL",
                        domain.name,
                        "MatchSubDomains is on and the subdomain DMARC policy could not be "
                        f"read ({dmarc.status})",
                        evidence=evidence,
                    )
                )
            elif sp != "reject":
                findings.append(
                    self.finding(
                        "FAIL",
                        domain.name,
                        f"MatchSubDomains makes every subdomain internal, but DMARC sp={sp}",
                        evidence=evidence,
                        values={"domain": domain.name},
                    )
                )
            else:
                findings.append(
                    self.finding(
                        "PASS",
                        domain.name,
                        "MatchSubDomains is on and subdomains are protected by sp=reject",
                        evidence=evidence,
                    )
                )
        return findings
