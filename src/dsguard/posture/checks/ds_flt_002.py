"""DS-FLT-002: the connection-filter safe list is off.

- PASS: ``EnableSafeList`` is ``False`` (or ``null``: the default is ``False``).
- FAIL: ``True``.
- MANUAL: policy not collected or empty, or a value that is no boolean.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, get, name_of
from dsguard.results import Finding


class ConnectionFilterSafeList(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.HOSTED_CONNECTION_FILTER_POLICY)
        if objs is None:
            return [self.not_collected(kinds.HOSTED_CONNECTION_FILTER_POLICY, "Default")]
        if not objs:
            return [self.collected_empty(kinds.HOSTED_CONNECTION_FILTER_POLICY,
                                         "connection filter policy", "Default")]
        findings: list[Finding] = []
        for index, policy in enumerate(objs):
            name = name_of(policy, f"connection filter policy #{index + 1}")
            raw = get(policy, "EnableSafeList")
            evidence = {"EnableSafeList": raw}
            try:
                value = as_bool(raw, "EnableSafeList")
            except MalformedValue as exc:
                findings.append(self.malformed(name, exc, evidence=evidence))
                continue
            if value:
                findings.append(
                    self.finding(
                        "FAIL",
                        name,
                        "EnableSafeList is True: Microsoft's third-party safe lists skip "
                        "spam filtering",
                        evidence=evidence,
                        values={"policy": name},
                    )
                )
            else:
                findings.append(self.finding(
                    "PASS", name,
                    "EnableSafeList is False" if value is False else
                    "EnableSafeList is not set (default False)",
                    evidence=evidence))
        return findings
