"""Alerts and findings shaped for the Azure Monitor Logs Ingestion API, so Microsoft Sentinel
can hold dsguard's results beside EmailEvents and SigninLogs.

The API takes a JSON array of flat records per *stream*; the stream's columns are declared
in a data collection rule (DCR) and land in a custom table (``..._CL``). This module owns
both sides of that contract: :data:`STREAMS` declares every column once, the records are
built from it, and ``sentinel_dcr.json`` (written beside the data) carries the stream
declarations, the tables' schemas and the DCR data flows to create them with ARM, Bicep or
``az``. A test holds records and declarations together.

``TimeGenerated`` is the export time, so rows are current when sent (Azure Monitor does not
keep arbitrarily old record times); the messages' own span is in ``FirstSeen``/``LastSeen``.
A request is limited to 1 MB; ``azure-monitor-ingestion``'s ``LogsIngestionClient.upload``
splits a larger array into batches by itself. Column names steer clear of the standard
columns Log Analytics adds itself (``Type``, ``TenantId``, ``_ResourceId``...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from dsguard.report.exports._common import PRODUCT, VERSION, finding_uid, iso_utc
from dsguard.results import Alert, Finding

ColumnType = Literal["string", "int", "long", "real", "boolean", "datetime", "dynamic"]

ALERTS_STREAM = "Custom-DsguardAlerts"
FINDINGS_STREAM = "Custom-DsguardFindings"
ALERTS_TABLE = "DsguardAlerts_CL"
FINDINGS_TABLE = "DsguardFindings_CL"

STREAMS: dict[str, tuple[tuple[str, ColumnType, str], ...]] = {
    ALERTS_STREAM: (
        ("TimeGenerated", "datetime", "When dsguard exported the alert"),
        ("AlertId", "string", "Stable alert id (DSA-...)"),
        ("Severity", "string", "informational, low, medium, high or critical"),
        ("AlertTitle", "string", "One-line summary"),
        ("Score", "real", "Sum of the signal weights"),
        ("MailPath", "string", "direct_send, partner_connector, ... (docs/bundle.md)"),
        ("Sender", "string", "Purported internal sender"),
        ("SourceIps", "dynamic", "Connecting IP addresses"),
        ("Recipients", "dynamic", "Recipient addresses"),
        ("Subjects", "dynamic", "Subjects as sent (attacker-controlled text)"),
        ("NetworkMessageIds", "dynamic", "EmailEvents NetworkMessageId values"),
        ("MessageCount", "int", "Messages in the alert"),
        ("FirstSeen", "datetime", "First message"),
        ("LastSeen", "datetime", "Last message"),
        ("SignalIds", "dynamic", "Rule ids that fired (DSG-...)"),
        ("Reasons", "dynamic", "Each signal with its title, family, weight and evidence"),
        ("ProductName", "string", "dsguard"),
        ("ProductVersion", "string", "dsguard version"),
    ),
    FINDINGS_STREAM: (
        ("TimeGenerated", "datetime", "When dsguard exported the finding"),
        ("FindingId", "string", "Stable id of check and resource (DSF-...)"),
        ("CheckId", "string", "Posture or governance check (DS-...)"),
        ("Status", "string", "PASS, FAIL, MANUAL, ERROR or NOT_APPLICABLE"),
        ("Severity", "string", "informational, low, medium, high or critical"),
        ("Resource", "string", "Object checked: connector, rule, domain, exception id..."),
        ("FindingTitle", "string", "What the check requires"),
        ("StatusDetail", "string", "Why it has this status"),
        ("Remediation", "string", "How to fix it"),
        ("Frameworks", "dynamic", "Framework key to requirement ids"),
        ("Evidence", "dynamic", "The configuration values the result rests on"),
        ("ProductName", "string", "dsguard"),
        ("ProductVersion", "string", "dsguard version"),
    ),
}
TABLES = {ALERTS_STREAM: ALERTS_TABLE, FINDINGS_STREAM: FINDINGS_TABLE}


def alert_record(alert: Alert, generated_at: datetime) -> dict[str, Any]:
    a = alert.model_dump(mode="json")
    return {
        "TimeGenerated": iso_utc(generated_at),
        "AlertId": alert.id,
        "Severity": alert.severity,
        "AlertTitle": alert.title,
        "Score": float(alert.score),
        "MailPath": alert.path,
        "Sender": alert.sender,
        "SourceIps": alert.source_ips,
        "Recipients": alert.recipients,
        "Subjects": alert.subjects,
        "NetworkMessageIds": alert.network_message_ids,
        "MessageCount": alert.message_count,
        "FirstSeen": iso_utc(alert.first_seen),
        "LastSeen": iso_utc(alert.last_seen),
        "SignalIds": [r.signal_id for r in alert.reasons],
        "Reasons": a["reasons"],
        "ProductName": PRODUCT,
        "ProductVersion": VERSION,
    }


def finding_record(finding: Finding, generated_at: datetime) -> dict[str, Any]:
    f = finding.model_dump(mode="json")
    return {
        "TimeGenerated": iso_utc(generated_at),
        "FindingId": finding_uid(finding),
        "CheckId": finding.check_id,
        "Status": finding.status,
        "Severity": finding.severity,
        "Resource": finding.resource,
        "FindingTitle": finding.title,
        "StatusDetail": finding.status_extended,
        "Remediation": finding.remediation,
        "Frameworks": f["frameworks"],
        "Evidence": f["evidence"],
        "ProductName": PRODUCT,
        "ProductVersion": VERSION,
    }


def alerts_to_sentinel(alerts: list[Alert], generated_at: datetime) -> list[dict[str, Any]]:
    return [alert_record(a, generated_at) for a in alerts]


def findings_to_sentinel(findings: list[Finding], generated_at: datetime) -> list[dict[str, Any]]:
    return [finding_record(f, generated_at) for f in findings]


def dcr_document() -> dict[str, Any]:
    """Stream declarations, table schemas and a DCR body for the two streams.

    ``dataCollectionRule`` is the ``properties``-bearing body of a ``kind: Direct`` DCR
    (``Microsoft.Insights/dataCollectionRules``); fill in ``workspaceResourceId``. ``tables``
    are bodies for ``Microsoft.OperationalInsights/workspaces/tables``.
    """
    declarations = {
        stream: {"columns": [{"name": n, "type": t} for n, t, _ in cols]}
        for stream, cols in STREAMS.items()
    }
    tables = {
        table: {
            "properties": {
                "schema": {
                    "name": table,
                    "columns": [
                        {"name": n, "type": t, "description": d} for n, t, d in STREAMS[stream]
                    ],
                }
            }
        }
        for stream, table in TABLES.items()
    }
    return {
        "description": (
            "dsguard exports for the Azure Monitor Logs Ingestion API: POST "
            "sentinel_alerts.json to stream Custom-DsguardAlerts and sentinel_findings.json "
            "to Custom-DsguardFindings of a DCR built from dataCollectionRule below."
        ),
        "streamDeclarations": declarations,
        "tables": tables,
        "dataCollectionRule": {
            "kind": "Direct",
            "properties": {
                "description": "dsguard alerts and findings",
                "streamDeclarations": declarations,
                "destinations": {
                    "logAnalytics": [
                        {"workspaceResourceId": "<workspace resource id>", "name": "workspace"}
                    ]
                },
                "dataFlows": [
                    {
                        "streams": [stream],
                        "destinations": ["workspace"],
                        "transformKql": "source",
                        "outputStream": f"Custom-{table}",
                    }
                    for stream, table in TABLES.items()
                ],
            },
        },
    }
