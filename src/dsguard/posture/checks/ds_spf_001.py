"""DS-SPF-001: spoof intelligence is on, DMARC is honoured and failing mail is quarantined.

One finding per anti-phishing policy. This is the control that catches From-header (P2)
spoofs that RejectDirectSend never sees.

- FAIL (high): ``EnableSpoofIntelligence`` or ``HonorDmarcPolicy`` is ``False``.
- FAIL (low): ``AuthenticationFailAction`` is ``MoveToJmf``, or a DMARC action is neither
  ``Quarantine`` nor ``Reject``.
- PASS: otherwise (``null`` reads as the documented default ``True``).
- NOT_APPLICABLE: a custom policy whose rule is disabled (it applies to nobody).
- MANUAL: anti-phishing policies not collected or empty, or a malformed value.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import AntiPhishPolicy, anti_phish_rule_states
from dsguard.posture.values import MalformedValue
from dsguard.results import Finding, SeverityName

_STRICT = {"quarantine", "reject"}


class AntiSpoofPolicy(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.ANTI_PHISH_POLICIES)
        if objs is None:
            return [self.not_collected(kinds.ANTI_PHISH_POLICIES, "Office365 AntiPhish Default")]
        if not objs:
            return [self.collected_empty(kinds.ANTI_PHISH_POLICIES, "anti-phishing policy",
                                         "Office365 AntiPhish Default")]
        rules = snapshot.config(kinds.ANTI_PHISH_RULES)
        states = anti_phish_rule_states(rules)
        findings: list[Finding] = []
        for index, obj in enumerate(objs):
            try:
                policy = AntiPhishPolicy.from_obj(obj, states, index)
            except MalformedValue as exc:
                findings.append(self.malformed(f"anti-phishing policy #{index + 1}", exc))
                continue
            findings.append(self._evaluate(policy))
        return findings

    def _evaluate(self, policy: AntiPhishPolicy) -> Finding:
        evidence = policy.evidence()
        evidence["applies"] = policy.applies
        if policy.applies is False:
            return self.finding("NOT_APPLICABLE", policy.name,
                                "policy is disabled or its rule is disabled", evidence=evidence)
        high: list[str] = []
        low: list[str] = []
        if policy.spoof_intelligence is False:
            high.append("EnableSpoofIntelligence is False")
        if policy.honor_dmarc is False:
            high.append("HonorDmarcPolicy is False: DMARC p=reject/quarantine is not applied")
        action = (policy.authentication_fail_action or "").lower()
        if action == "movetojmf":
            low.append("AuthenticationFailAction is MoveToJmf (spoofs land in Junk)")
        for prop, value in (("DmarcRejectAction", policy.dmarc_reject_action),
                            ("DmarcQuarantineAction", policy.dmarc_quarantine_action)):
            if value and value.lower() not in _STRICT:
                low.append(f"{prop} is {value}")
        if not high and not low:
            return self.finding("PASS", policy.name,
                                "spoof intelligence on, DMARC honoured, strict actions",
                                evidence=evidence)
        severity: SeverityName = "high" if high else "low"
        return self.finding("FAIL", policy.name, "; ".join(high + low), evidence=evidence,
                            severity=severity, values={"policy": policy.name})
