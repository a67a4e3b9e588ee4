"""Alerts and findings as OCSF events, the shape security data lakes and SIEMs ingest without
a custom parser.

* an :class:`~dsguard.results.Alert` becomes a **Detection Finding** (class_uid 2004);
* a :class:`~dsguard.results.Finding` becomes a **Compliance Finding** (class_uid 2003), with
  the framework requirements it evidences in ``compliance``.

The events follow OCSF **1.5.0**, the version Prowler's ``py-ocsf-models`` emits, so a
pipeline that takes Prowler's posture output takes ours. The tests validate every event
against JSON Schemas generated from the official 1.5.0 export (see
``tests/report/golden/ocsf/README.md``); OCSF's ``additionalProperties: false`` means a field
that is not in the schema fails there, not in a customer's pipeline.

Values that must match an OCSF pattern (email addresses, IPs) are only placed in typed
fields when they match it; anything else an attacker wrote stays as plain text elsewhere, so
one odd From address cannot make a whole export invalid.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any

from dsguard.frameworks import Framework, load_frameworks
from dsguard.report.exports._common import (
    PRODUCT,
    VENDOR,
    VERSION,
    epoch_ms,
    finding_uid,
)
from dsguard.results import Alert, Finding

OCSF_VERSION = "1.5.0"

CATEGORY_FINDINGS = 2
DETECTION_FINDING = 2004
COMPLIANCE_FINDING = 2003
ACTIVITY_CREATE = 1

SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_CAPTION = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS_NEW = 1
# Our check status → OCSF compliance.status_id (0 Unknown, 1 Pass, 2 Warning, 3 Fail, 99 Other).
COMPLIANCE_STATUS = {
    "PASS": (1, "Pass"),
    "FAIL": (3, "Fail"),
    "MANUAL": (99, "Manual review"),
    "ERROR": (0, "Error"),
    "NOT_APPLICABLE": (99, "Not applicable"),
}
OBSERVABLE_IP = 2
OBSERVABLE_EMAIL = 5
ANALYTIC_RULE = 1
RESOURCE_TYPE = "Microsoft 365 configuration"

# OCSF email_t, as the 1.5.0 schema states it: an address outside it may not go in a typed field.
_EMAIL_T = re.compile(r"^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$")


def _email(value: str | None) -> str | None:
    return value if value and _EMAIL_T.match(value) else None


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _metadata(uid: str, log_name: str) -> dict[str, Any]:
    return {
        "version": OCSF_VERSION,
        "uid": uid,
        "log_name": log_name,
        "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": VERSION},
    }


def _base(class_uid: int, class_name: str, severity: str, at: datetime) -> dict[str, Any]:
    severity_id = SEVERITY_ID[severity]
    return {
        "category_uid": CATEGORY_FINDINGS,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": class_uid * 100 + ACTIVITY_CREATE,
        "type_name": f"{class_name}: Create",
        "severity_id": severity_id,
        "severity": SEVERITY_CAPTION[severity_id],
        "status_id": STATUS_NEW,
        "status": "New",
        "time": epoch_ms(at),
    }


def detection_finding(alert: Alert, generated_at: datetime) -> dict[str, Any]:
    """One alert as an OCSF Detection Finding; ``time`` is when dsguard produced it, the
    messages' own span is in ``start_time``/``end_time`` and ``finding_info``."""
    event = _base(DETECTION_FINDING, "Detection Finding", alert.severity, generated_at)
    ips = [ip for ip in (_ip(s) for s in alert.source_ips) if ip]
    sender = _email(alert.sender)
    recipients = [r for r in alert.recipients if _email(r)]
    evidences: list[dict[str, Any]] = []
    observables: list[dict[str, Any]] = []
    for ip in ips:
        observables.append(
            {
                "name": f"evidences[{len(evidences)}].src_endpoint.ip",
                "type_id": OBSERVABLE_IP,
                "value": ip,
            }
        )
        evidences.append({"src_endpoint": {"ip": ip}})
    if sender or recipients:
        email: dict[str, Any] = {}
        if sender:
            email["from"] = sender
        if recipients:
            email["to"] = recipients
        if alert.subjects:
            email["subject"] = alert.subjects[0]
        if sender:
            observables.append(
                {
                    "name": f"evidences[{len(evidences)}].email.from",
                    "type_id": OBSERVABLE_EMAIL,
                    "value": sender,
                }
            )
        evidences.append({"email": email})
    for reason in alert.reasons:
        evidences.append(
            {"name": reason.signal_id, "data": {"title": reason.title, **reason.evidence}}
        )
    event.update(
        {
            "message": alert.title,
            "is_alert": True,
            "risk_score": round(alert.score),
            "count": alert.message_count,
            "start_time": epoch_ms(alert.first_seen),
            "end_time": epoch_ms(alert.last_seen),
            "finding_info": {
                "uid": alert.id,
                "title": alert.title,
                "desc": "; ".join(f"{r.signal_id} {r.title}" for r in alert.reasons),
                "types": ["Direct Send abuse", alert.path],
                "first_seen_time": epoch_ms(alert.first_seen),
                "last_seen_time": epoch_ms(alert.last_seen),
                "analytic": {
                    "name": "dsguard Direct Send scoring",
                    "uid": "dsguard-score",
                    "type_id": ANALYTIC_RULE,
                    "type": "Rule",
                },
                "related_analytics": [
                    {
                        "uid": r.signal_id,
                        "name": r.title,
                        "category": r.family,
                        "type_id": ANALYTIC_RULE,
                        "type": "Rule",
                    }
                    for r in alert.reasons
                ],
            },
            "evidences": evidences,
            "observables": observables,
            "metadata": _metadata(alert.id, "alerts"),
            "unmapped": {
                "dsguard": {
                    "path": alert.path,
                    "score": alert.score,
                    "sender": alert.sender,
                    "source_ips": alert.source_ips,
                    "network_message_ids": alert.network_message_ids,
                    "recipients": alert.recipients,
                    "subjects": alert.subjects,
                }
            },
        }
    )
    if recipients:
        event["resources"] = [{"name": r, "type": "Mailbox"} for r in recipients]
    return event


def _requirements(
    finding: Finding, frameworks: dict[str, Framework]
) -> tuple[list[str], list[str]]:
    """OCSF-style requirement texts ("<framework> <id> - <title>") and standard names."""
    requirements: list[str] = []
    standards: list[str] = []
    for key, ids in sorted(finding.frameworks.items()):
        fw = frameworks.get(key)
        name = fw.name if fw else key
        standards.append(f"{name} {fw.version}" if fw else key)
        titles = {i: r.title for r in fw.requirements for i in (r.id, *r.legacy_ids)} if fw else {}
        for rid in ids:
            title = titles.get(rid)
            requirements.append(f"{name} {rid} - {title}" if title else f"{name} {rid}")
    return requirements, standards


def compliance_finding(
    finding: Finding, generated_at: datetime, frameworks: dict[str, Framework] | None = None
) -> dict[str, Any]:
    """One posture or governance finding as an OCSF Compliance Finding."""
    frameworks = load_frameworks() if frameworks is None else frameworks
    uid = finding_uid(finding)
    event = _base(COMPLIANCE_FINDING, "Compliance Finding", finding.severity, generated_at)
    status_id, status = COMPLIANCE_STATUS[finding.status]
    requirements, standards = _requirements(finding, frameworks)
    compliance: dict[str, Any] = {
        "control": finding.check_id,
        "desc": finding.title,
        "status_id": status_id,
        "status": status,
        "status_code": finding.status,
        "checks": [
            {
                "uid": finding.check_id,
                "name": finding.title,
                "severity_id": event["severity_id"],
                "severity": event["severity"],
                "status_id": status_id,
                "status": status,
            }
        ],
    }
    if finding.status_extended:
        compliance["status_details"] = [finding.status_extended]
    if requirements:
        compliance["requirements"] = requirements
    if standards:
        compliance["standards"] = standards
    event.update(
        {
            "message": finding.title,
            "finding_info": {
                "uid": uid,
                "title": finding.title,
                "desc": finding.status_extended or finding.title,
                "types": ["Posture", finding.check_id],
                "analytic": {
                    "uid": finding.check_id,
                    "name": finding.title,
                    "type_id": ANALYTIC_RULE,
                    "type": "Rule",
                },
            },
            "compliance": compliance,
            "resources": [{"name": finding.resource or finding.check_id, "type": RESOURCE_TYPE}],
            "metadata": _metadata(uid, "findings"),
        }
    )
    if finding.evidence:
        event["evidences"] = [{"name": finding.check_id, "data": finding.evidence}]
    if finding.remediation:
        event["remediation"] = {"desc": finding.remediation}
    return event


def alerts_to_ocsf(alerts: list[Alert], generated_at: datetime) -> list[dict[str, Any]]:
    return [detection_finding(a, generated_at) for a in alerts]


def findings_to_ocsf(findings: list[Finding], generated_at: datetime) -> list[dict[str, Any]]:
    frameworks = load_frameworks()
    return [compliance_finding(f, generated_at, frameworks) for f in findings]
