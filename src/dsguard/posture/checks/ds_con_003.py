"""DS-CON-003: Enhanced Filtering and ARC sealers when MX does not point at EOP.

One finding per sending accepted domain whose MX is not Exchange Online Protection.

- PASS: MX points at EOP (no gateway in front), or an enabled ``*`` connector has Enhanced
  Filtering effectively on and ``ArcTrustedSealers`` is set (ORCA.233 / 233_1 / 243).
- FAIL: a gateway is in front and EF is off (skip lists empty, test mode, or limited to
  users), or ``ArcTrustedSealers`` is empty.
- MANUAL: no MX captured, or connectors / ARC config not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import mx_hosts, points_to_eop
from dsguard.posture.model import inbound_connectors
from dsguard.posture.values import get as get_value
from dsguard.posture.values import str_list
from dsguard.results import Finding


class EnhancedFilteringWhenMxNotEop(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        if not snapshot.dns_collected:
            return [self.no_dns("MX")]
        findings: list[Finding] = []
        gateway: list[tuple[str, list[str]]] = []
        for domain in (d for d in domains if d.in_dns_scope and not d.parked):
            hosts = mx_hosts(snapshot, domain.name)
            if hosts is None:
                findings.append(
                    self.finding(
                        "MANUAL",
                        domain.name,
                        "no MX record captured for this domain",
                        evidence={"domain": domain.name, "mx": None},
                    )
                )
            elif all(points_to_eop(h) for h in hosts):
                findings.append(
                    self.finding(
                        "PASS",
                        domain.name,
                        "MX points at Exchange Online Protection",
                        evidence={"domain": domain.name, "mx": hosts},
                    )
                )
            else:
                gateway.append((domain.name, hosts))
        if gateway:
            findings.extend(self._gateway(snapshot, gateway))
        return findings

    def _gateway(self, snapshot: Snapshot, gateway: list[tuple[str, list[str]]]) -> list[Finding]:
        conn_objs = snapshot.config(kinds.INBOUND_CONNECTORS)
        arc_objs = snapshot.config(kinds.ARC_CONFIG)
        out: list[Finding] = []
        for name, hosts in gateway:
            evidence: dict[str, object] = {"domain": name, "mx": hosts}
            if conn_objs is None:
                out.append(self.not_collected(kinds.INBOUND_CONNECTORS, name))
                continue
            candidates = [c for c in inbound_connectors(conn_objs) if c.ef_candidate]
            effective = [c.name for c in candidates if c.ef_effective]
            evidence["ef_candidates"] = [c.name for c in candidates]
            evidence["ef_effective"] = effective
            sealers = None
            if arc_objs is not None:
                sealers = [
                    s for o in arc_objs for s in str_list(get_value(o, "ArcTrustedSealers"))
                ]
            evidence["ArcTrustedSealers"] = sealers
            problems = []
            if not effective:
                problems.append(
                    "MX points at a gateway and no '*' inbound connector has Enhanced "
                    "Filtering on (EFSkipIPs/EFSkipLastIP set, not test mode, no EFUsers)"
                )
            if sealers == []:
                problems.append("ArcTrustedSealers is empty (ORCA.243)")
            if problems:
                values = {"connector": candidates[0].name} if len(candidates) == 1 else {}
                out.append(
                    self.finding("FAIL", name, "; ".join(problems), evidence=evidence,
                                 values=values)
                )
            elif sealers is None:
                out.append(
                    self.finding(
                        "MANUAL",
                        name,
                        "Enhanced Filtering is on; ARC config not collected, so trusted "
                        "sealers are unchecked",
                        evidence=evidence,
                    )
                )
            else:
                out.append(
                    self.finding(
                        "PASS",
                        name,
                        "gateway in front, Enhanced Filtering on and ARC sealers trusted",
                        evidence=evidence,
                    )
                )
        return out
