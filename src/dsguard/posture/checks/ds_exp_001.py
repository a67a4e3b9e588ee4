"""DS-EXP-001: the Direct Send exposure of each accepted domain, as a combination.

One finding per accepted domain from ``dsguard.posture.exposure.evaluate_exposure``.

- PASS: *protected*: envelope spoofs rejected and header spoofs meet enforcing, honoured
  DMARC with no bypass.
- FAIL: *exposed* (high, critical when a bypass rule or unrestricted connector amplifies it)
  or *partially exposed* (medium/high). Evidence lists every factor and the check owning it.
- MANUAL: inputs needed for a verdict were not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.exposure import evaluate_exposure
from dsguard.results import CheckStatus, Finding

_STATUS: dict[str, CheckStatus] = {
    "exposed": "FAIL",
    "partially_exposed": "FAIL",
    "protected": "PASS",
    "unknown": "MANUAL",
}


class DirectSendExposure(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        report = evaluate_exposure(snapshot)
        if not report.domains:
            if snapshot.config(kinds.ACCEPTED_DOMAINS) is None:
                return [self.not_collected(kinds.ACCEPTED_DOMAINS)]
            return [self.collected_empty(kinds.ACCEPTED_DOMAINS, "accepted domain")]
        findings = []
        for exposure in report.domains:
            evidence = exposure.evidence()
            evidence["missing_inputs"] = report.missing_inputs
            findings.append(self.finding(
                _STATUS[exposure.verdict],
                exposure.domain,
                exposure.summary
                + (" Why: " + "; ".join(exposure.reasons) + "." if exposure.reasons else ""),
                evidence=evidence,
                severity=exposure.severity if exposure.verdict != "protected" else None,
            ))
        return findings
