"""Machine exports of alerts and findings for SIEMs, data lakes and spreadsheets.

``ExportStage`` writes them into ``OUT/exports/`` after the analysis:

* ``alerts.ocsf.json`` / ``findings.ocsf.json``: JSON arrays of OCSF 1.5.0 Detection
  Findings (class 2004) / Compliance Findings (class 2003), one per alert / finding;
* ``alerts.cef`` / ``findings.cef``: CEF:0 lines, no syslog header;
* ``alerts.csv`` / ``findings.csv``: CSV, UTF-8 with BOM, formula injection neutralised;
* ``sentinel_alerts.json`` / ``sentinel_findings.json``: JSON arrays for the Logs Ingestion
  API streams ``Custom-DsguardAlerts`` / ``Custom-DsguardFindings``;
* ``sentinel_dcr.json``: the stream declarations, table schemas and DCR body for them.

Every file is written even when empty, so a pipeline can rely on its presence.
"""

from __future__ import annotations

from dsguard.report.exports.stage import ExportStage, write_exports

__all__ = ["ExportStage", "write_exports"]
