"""The pipeline stage that writes ``OUT/exports/`` (see the package docstring)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dsguard.outputs import write_json, write_text
from dsguard.results import Alert, Finding

if TYPE_CHECKING:
    from dsguard.pipeline import AnalysisContext

EXPORTS_DIR = "exports"


def write_exports(
    out: Path, alerts: list[Alert], findings: list[Finding], generated_at: datetime | None = None
) -> dict[str, Path]:
    """Write every export of ``alerts`` and ``findings`` into ``out``; returns the files by
    their name relative to the analysis folder (``exports/alerts.csv``...)."""
    from dsguard.report.exports import cef, ocsf, sentinel
    from dsguard.report.exports import csv as csv_export

    at = generated_at or datetime.now(UTC)
    files: dict[str, Path] = {}

    def put(name: str, path: Path) -> None:
        files[f"{EXPORTS_DIR}/{name}"] = path

    put("alerts.ocsf.json", write_json(out / "alerts.ocsf.json", ocsf.alerts_to_ocsf(alerts, at)))
    put(
        "findings.ocsf.json",
        write_json(out / "findings.ocsf.json", ocsf.findings_to_ocsf(findings, at)),
    )
    put("alerts.cef", write_text(out / "alerts.cef", cef.alerts_to_cef(alerts)))
    put("findings.cef", write_text(out / "findings.cef", cef.findings_to_cef(findings, at)))
    put("alerts.csv", write_text(out / "alerts.csv", csv_export.alerts_to_csv(alerts)))
    put("findings.csv", write_text(out / "findings.csv", csv_export.findings_to_csv(findings)))
    put(
        "sentinel_alerts.json",
        write_json(out / "sentinel_alerts.json", sentinel.alerts_to_sentinel(alerts, at)),
    )
    put(
        "sentinel_findings.json",
        write_json(out / "sentinel_findings.json", sentinel.findings_to_sentinel(findings, at)),
    )
    put("sentinel_dcr.json", write_json(out / "sentinel_dcr.json", sentinel.dcr_document()))
    return files


class ExportStage:
    """OCSF, CEF, CSV and Sentinel exports of what detect and govern produced."""

    name = "export"

    def run(self, ctx: AnalysisContext) -> None:
        ctx.progress(self.name, 0, 1, "exports")
        files = write_exports(ctx.out / EXPORTS_DIR, list(ctx.alerts), list(ctx.findings))
        ctx.outputs.update(files)
        ctx.progress(self.name, 1, 1, "")
