"""DS-ORG-003: no mailbox re-enables SMTP AUTH on its own.

- PASS: no mailbox has ``SmtpClientAuthenticationDisabled`` = ``False`` (``null`` inherits).
- FAIL: one finding per mailbox with ``False``; more severe when the org setting is off too.
- MANUAL: ``Get-CASMailbox`` not collected, or a value that is no boolean.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, as_str, get, name_of
from dsguard.results import Finding

PROPERTY = "SmtpClientAuthenticationDisabled"


class MailboxSmtpAuthOverrides(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        mailboxes = snapshot.config(kinds.CAS_MAILBOX)
        if mailboxes is None:
            return [self.not_collected(kinds.CAS_MAILBOX, "CASMailbox")]
        org_value = None
        transport = snapshot.config_one(kinds.TRANSPORT_CONFIG)
        if transport is not None:
            try:
                org_value = as_bool(get(transport, PROPERTY), PROPERTY)
            except MalformedValue:
                org_value = None
        findings: list[Finding] = []
        for index, mbx in enumerate(mailboxes):
            name = as_str(get(mbx, "PrimarySmtpAddress")) or name_of(mbx, f"mailbox #{index + 1}")
            evidence = {
                "mailbox": name,
                PROPERTY: get(mbx, PROPERTY),
                "organisation_" + PROPERTY: org_value,
            }
            try:
                value = as_bool(get(mbx, PROPERTY), PROPERTY)
            except MalformedValue as exc:
                findings.append(self.malformed(name, exc, evidence=evidence))
                continue
            if value is False:
                findings.append(
                    self.finding(
                        "FAIL",
                        name,
                        "SMTP AUTH is explicitly enabled for this mailbox, overriding the "
                        "organisation default",
                        evidence=evidence,
                        severity="high" if org_value is False else None,
                        values={"mailbox": name},
                    )
                )
        if not findings:
            findings.append(
                self.finding(
                    "PASS",
                    "CASMailbox",
                    f"no mailbox overrides SMTP AUTH ({len(mailboxes)} mailbox objects read)",
                    evidence={"mailboxes_read": len(mailboxes)},
                )
            )
        return findings
