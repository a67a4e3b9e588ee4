"""DS-DNS-001: every accepted domain publishes one SPF record that fails unlisted senders.

One finding per accepted domain (MOERA and coexistence domains excluded, CIS 2.1.8).

- PASS: one valid ``v=spf1`` record ending ``-all`` (or ``~all`` while DMARC is at
  ``p=reject``), within 10 lookups, authorising EOP on sending domains; ``v=spf1 -all`` style
  on parked domains.
- FAIL: missing, several records, syntax errors, ``+all``/``?all``/no ``all``, more than
  10 lookups, no EOP include on a sending domain, ``~all`` without DMARC reject (low), a parked
  domain authorising senders (low).
- MANUAL: no DNS captured, the domain not captured, or the answer depends on an uncaptured
  ``include:``/``redirect=`` target (named in the evidence).
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import lookup_dmarc, lookup_spf
from dsguard.posture.model import AcceptedDomain
from dsguard.results import Finding, SeverityName


class SpfPublished(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        if not snapshot.dns_collected:
            return [self.no_dns("SPF")]
        return [self._evaluate(snapshot, d) for d in domains if d.in_dns_scope]

    def _evaluate(self, snapshot: Snapshot, domain: AcceptedDomain) -> Finding:
        name = domain.name
        spf = lookup_spf(snapshot, name)
        evidence: dict[str, object] = {"domain": name, "role": domain.role, **spf.evidence()}
        values = {"domain": name}
        if spf.status == "not_captured":
            return self.finding("MANUAL", name, "no DNS records captured for this domain",
                                evidence=evidence)
        if spf.status == "missing":
            return self.finding("FAIL", name, "no SPF record is published", evidence=evidence,
                                severity="high", values=values)
        if spf.status == "multiple" or spf.errors:
            return self.finding("FAIL", name, "SPF record is invalid: " + "; ".join(spf.errors),
                                evidence=evidence, severity="high", values=values)
        record = spf.record
        assert record is not None
        if spf.effective_all is None:
            return self.finding(
                "MANUAL", name,
                "the record redirects to a target that was not captured: "
                + ", ".join(spf.not_captured), evidence=evidence)
        problems: list[tuple[SeverityName, str]] = []
        if spf.effective_all in ("pass", "neutral"):
            shown = "no 'all' term (neutral)" if record.all_term is None and not record.redirect \
                else f"all={spf.effective_all}"
            problems.append(("high", f"{shown}: the record does not fail unlisted senders"))
        if domain.parked:
            if record.terms and any(t.mechanism != "all" for t in record.terms):
                problems.append(("low", "parked domain authorises senders (expected v=spf1 -all)"))
        elif spf.authorises_eop is False:
            problems.append(("medium", "no include of Exchange Online's SPF "
                                       "(include:spf.protection.outlook.com)"))
        if spf.effective_all == "softfail" and not domain.parked:
            dmarc = lookup_dmarc(snapshot, name, fallback=not domain.initial)
            evidence["dmarc_policy"] = dmarc.policy
            if dmarc.policy != "reject":
                problems.append(("low", "~all (soft fail) is acceptable only while DMARC is "
                                        f"p=reject; DMARC policy is {dmarc.policy or 'absent'}"))
        if problems:
            order = {"low": 0, "medium": 1, "high": 2}
            worst = max((p[0] for p in problems), key=order.__getitem__)
            return self.finding("FAIL", name, "; ".join(p[1] for p in problems),
                                evidence=evidence, severity=worst, values=values)
        if spf.authorises_eop is None and not domain.parked:
            return self.finding(
                "MANUAL", name,
                "Exchange Online's include may sit in an include that was not captured: "
                + ", ".join(spf.not_captured), evidence=evidence)
        return self.finding("PASS", name, f"SPF ends {spf.effective_all} ({record.raw})",
                            evidence=evidence)
