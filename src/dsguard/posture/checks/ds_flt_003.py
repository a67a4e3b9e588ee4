"""DS-FLT-003: no inbound anti-spam policy allows whole sender domains.

- PASS: ``AllowedSenderDomains`` empty in every policy (``AllowedSenders`` is allowed by SCuBA
  and only reported).
- FAIL: any allowed domain; high when it is one of our accepted domains (ORCA.118-3).
- MANUAL: anti-spam policies not collected or empty.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import accepted_domains, is_own_domain
from dsguard.posture.values import MalformedValue, get, name_of, str_list
from dsguard.results import Finding


class AllowedSenderDomains(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.HOSTED_CONTENT_FILTER_POLICY)
        if objs is None:
            return [self.not_collected(kinds.HOSTED_CONTENT_FILTER_POLICY, "Default")]
        if not objs:
            return [self.collected_empty(kinds.HOSTED_CONTENT_FILTER_POLICY,
                                         "anti-spam policy", "Default")]
        domains = accepted_domains(snapshot.config(kinds.ACCEPTED_DOMAINS) or [])
        findings: list[Finding] = []
        for index, policy in enumerate(objs):
            name = name_of(policy, f"anti-spam policy #{index + 1}")
            try:
                allowed = [d.lower() for d in
                           str_list(get(policy, "AllowedSenderDomains"), "AllowedSenderDomains")]
                senders = str_list(get(policy, "AllowedSenders"), "AllowedSenders")
            except MalformedValue as exc:
                findings.append(self.malformed(name, exc))
                continue
            own = [d for d in allowed if is_own_domain(d, domains)]
            evidence = {"AllowedSenderDomains": allowed, "AllowedSenders": senders,
                        "own_domains": own}
            if not allowed:
                findings.append(self.finding("PASS", name, "no allowed sender domains",
                                             evidence=evidence))
                continue
            text = f"allows sender domains {', '.join(allowed)}: their mail skips spam filtering"
            if own:
                text += "; our own domains are among them, so every spoof of them is allowed"
            findings.append(
                self.finding("FAIL", name, text, evidence=evidence,
                             severity="high" if own else None, values={"policy": name})
            )
        return findings
