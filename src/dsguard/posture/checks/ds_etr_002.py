"""DS-ETR-002: no transport rule stamps a filter-skip header on attacker-controllable mail.

Headers: ``X-MS-Exchange-Organization-SkipSafeLinksProcessing``,
``...-SkipSafeAttachmentProcessing``, ``X-Forefront-Antispam-Report`` (e.g. ``SFV:SKN``),
``X-MS-Exchange-Organization-BypassClutter``. One finding per rule stamping one of them.

- FAIL: the rule is not gated by ``SenderIpRanges`` (its trigger - a header, sender, subject or
  recipient, or nothing at all - is one an attacker can meet). Low while disabled/audit.
- PASS: gated by ``SenderIpRanges``; or no rule stamps such a header.
- MANUAL: transport rules not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import TransportRule
from dsguard.posture.values import MalformedValue
from dsguard.results import Finding, SeverityName


class FilterSkipHeaders(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.TRANSPORT_RULES)
        if objs is None:
            return [self.not_collected(kinds.TRANSPORT_RULES)]
        findings: list[Finding] = []
        for index, obj in enumerate(objs):
            try:
                rule = TransportRule.from_obj(obj, index)
            except MalformedValue as exc:
                findings.append(self.malformed(f"transport rule #{index + 1}", exc))
                continue
            skipped = rule.skipped_protection
            if skipped is None:
                continue
            evidence = rule.evidence()
            evidence["skipped_protection"] = skipped
            if rule.ip_gated:
                findings.append(
                    self.finding(
                        "PASS",
                        rule.name,
                        f"stamps {rule.set_header_name} ({skipped}) only for listed sender IPs",
                        evidence=evidence,
                    )
                )
                continue
            severity: SeverityName = "medium" if "clutter" in skipped.lower() else "high"
            text = (
                f"stamps {rule.set_header_name}={rule.set_header_value or ''} which switches "
                f"off {skipped} for mail an attacker can make match"
            )
            if not rule.active:
                severity = "low"
                text += " (rule is not active; one change from active)"
            findings.append(
                self.finding("FAIL", rule.name, text, evidence=evidence, severity=severity,
                             values={"rule": rule.name})
            )
        if not findings:
            findings.append(
                self.finding(
                    "PASS",
                    kinds.TRANSPORT_RULES,
                    f"no rule stamps a filter-skip header ({len(objs)} rules read)",
                    evidence={"rules_read": len(objs)},
                )
            )
        return findings
