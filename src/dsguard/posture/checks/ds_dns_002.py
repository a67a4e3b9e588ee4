"""DS-DNS-002: DKIM signing is enabled for every sending domain, with matching CNAMEs.

One finding per sending accepted domain (MOERA/coexistence excluded).

- PASS: ``Enabled`` is ``True`` and the captured ``selector1/2._domainkey`` CNAMEs equal
  ``Selector1CNAME``/``Selector2CNAME`` (when no CNAME was captured, ``Enabled`` decides and
  the evidence says the CNAMEs were not checked).
- FAIL: no signing config for the domain, ``Enabled`` is ``False``, or a CNAME that differs.
- NOT_APPLICABLE: parked domains (they should not sign at all).
- MANUAL: DKIM config not collected.
"""

from __future__ import annotations

from typing import Any

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.values import MalformedValue, as_bool, as_str, get
from dsguard.results import Finding


def _host(value: str | None) -> str | None:
    return value.strip().lower().rstrip(".") if value else None


class DkimEnabled(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        objs = snapshot.config(kinds.DKIM_SIGNING_CONFIG)
        if objs is None:
            return [self.not_collected(kinds.DKIM_SIGNING_CONFIG)]
        by_domain: dict[str, dict[str, Any]] = {}
        for obj in objs:
            name = as_str(get(obj, "Domain", "Name", "Identity"))
            if name:
                by_domain[name.lower().rstrip(".")] = dict(obj)
        findings: list[Finding] = []
        for domain in (d for d in domains if d.in_dns_scope):
            if domain.parked:
                findings.append(self.finding("NOT_APPLICABLE", domain.name,
                                             "parked domain: it should not sign mail",
                                             evidence=domain.evidence()))
                continue
            findings.append(self._evaluate(snapshot, domain.name, by_domain.get(domain.name)))
        return findings

    def _evaluate(self, snapshot: Snapshot, name: str, config: dict[str, Any] | None) -> Finding:
        values = {"domain": name}
        if config is None:
            return self.finding("FAIL", name, "no DKIM signing config for this domain",
                                evidence={"domain": name, "config": None}, values=values)
        evidence: dict[str, object] = {
            "domain": name,
            "Enabled": get(config, "Enabled"),
            "Status": get(config, "Status"),
            "Selector1CNAME": get(config, "Selector1CNAME"),
            "Selector2CNAME": get(config, "Selector2CNAME"),
        }
        try:
            enabled = as_bool(get(config, "Enabled"), "Enabled")
        except MalformedValue as exc:
            return self.malformed(name, exc, evidence=evidence)
        if not enabled:
            return self.finding("FAIL", name, "DKIM signing is not enabled", evidence=evidence,
                                values=values)
        mismatches: list[str] = []
        checked = False
        for selector in ("selector1", "selector2"):
            expected = _host(as_str(get(config, f"{selector.capitalize()}CNAME")))
            published = snapshot.dns(f"{selector}._domainkey.{name}", "CNAME") or []
            evidence[f"{selector}_published"] = published
            if not published:
                continue
            checked = True
            if expected and _host(published[0]) != expected:
                mismatches.append(f"{selector} CNAME is {published[0]}, expected {expected}")
        evidence["cnames_checked"] = checked
        if mismatches:
            return self.finding("FAIL", name, "; ".join(mismatches), evidence=evidence,
                                values=values)
        note = "" if checked else " (CNAMEs not captured, not checked)"
        return self.finding("PASS", name, f"DKIM signing enabled{note}", evidence=evidence)
