"""DS-DNS-004: MX points at Exchange Online Protection.

One finding per sending accepted domain (MOERA/coexistence/parked excluded).

- PASS: every MX target ends in ``.mail.protection.outlook.com`` (or the GCC High / 21Vianet
  equivalents).
- FAIL (low): complex routing: a gateway or on-premises server in front; EOP sees its IP and
  spoof detection degrades, so DS-CON-003 and DS-CON-004 apply.
- MANUAL: no DNS captured, or no MX captured for the domain.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import mx_hosts, points_to_eop
from dsguard.results import Finding


class MxPointsToEop(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        if not snapshot.dns_collected:
            return [self.no_dns("MX")]
        findings: list[Finding] = []
        for domain in (d for d in domains if d.in_dns_scope and not d.parked):
            hosts = mx_hosts(snapshot, domain.name)
            evidence = {"domain": domain.name, "mx": hosts}
            if hosts is None:
                findings.append(self.finding("MANUAL", domain.name,
                                             "no MX record captured for this domain",
                                             evidence=evidence))
            elif all(points_to_eop(h) for h in hosts):
                findings.append(self.finding("PASS", domain.name,
                                             "MX points at Exchange Online Protection",
                                             evidence=evidence))
            else:
                others = [h for h in hosts if not points_to_eop(h)]
                findings.append(self.finding(
                    "FAIL", domain.name,
                    f"complex routing: MX points at {', '.join(others)}; EOP sees that "
                    "host's IP, so see DS-CON-003 and DS-CON-004",
                    evidence=evidence, values={"domain": domain.name}))
        return findings
