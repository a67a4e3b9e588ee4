"""``analyze``: the stages in order, each reading what the one before it stored.

A stage is a small object with a ``name`` and ``run(ctx)``. Later stages (classification,
detection, posture, governance, report) append themselves to ``STAGES``; the pipeline times
each and reports progress, so the CLI stays a thin shell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dsguard import __version__
from dsguard.bundle import discover
from dsguard.evidence.store import EvidenceStore, IngestSummary
from dsguard.outputs import write_json, write_jsonl, write_text
from dsguard.severity import Severity

# (stage name, done, total, detail) → the CLI draws a progress bar from it.
Progress = Callable[[str, int, int, str], None]

DEFAULT_DB_NAME = "evidence.duckdb"
ENGINES = ("duckdb", "spark")


class InputError(Exception):
    """The user's input cannot be analysed; the message is one line for the terminal."""


@dataclass
class AnalysisContext:
    bundle: Path
    out: Path
    store: EvidenceStore
    progress: Progress
    ingest: IngestSummary | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # The worst severity of anything found, for ``--fail-on``.
    worst: Severity | None = None
    counts: dict[str, int] = field(default_factory=dict)
    tenant: Any = None  # dsguard.tenant.Tenant once the detect stage ran
    alerts: list[Any] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    phases: list[Any] = field(default_factory=list)
    paths: list[Any] = field(default_factory=list)
    # Execution engine of the detect stage ("duckdb" or "spark") and, per stage, where its
    # time went (for benchmarks and --json).
    engine: str = "duckdb"
    # Cores the run may use (``--threads``): DuckDB's worker threads, Spark's ``local[N]``.
    threads: int | None = None
    stage_details: dict[str, dict[str, float]] = field(default_factory=dict)
    feature_run: Any = None  # dsguard.signals.engine.FeatureRun of the DuckDB engine

    def found(self, severity: Severity) -> None:
        if self.worst is None or severity > self.worst:
            self.worst = severity


class Stage(Protocol):
    name: str

    def run(self, ctx: AnalysisContext) -> None: ...


class IngestStage:
    """Read every bundle file into the store; write the accounting and the quarantine."""

    name = "ingest"

    def run(self, ctx: AnalysisContext) -> None:
        files = discover(ctx.bundle)
        details = ctx.stage_details.setdefault(self.name, {})
        sources = {str(p.relative_to(ctx.bundle).as_posix()): r.source for r, p in files}
        clock = [time.perf_counter(), ""]

        def tick(file: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if clock[1]:  # time per source, for benchmarks
                source = sources.get(str(clock[1]), "other")
                details[source] = details.get(source, 0.0) + now - float(clock[0])
            clock[0], clock[1] = now, file
            ctx.progress(self.name, done, total, file)

        summary = ctx.store.ingest(files, root=ctx.bundle, progress=tick)
        details["commit"] = time.perf_counter() - float(clock[0])
        ctx.ingest = summary
        telemetry = [f for f in summary.files if f.source in ("email_events", "message_trace")]
        if telemetry and all(f.error and not f.loaded for f in telemetry):
            first = next(f.error for f in telemetry if f.error)
            raise InputError(f"no mail telemetry could be read; first problem: {first}")
        ctx.outputs["ingest.json"] = write_json(
            ctx.out / "ingest.json",
            {
                "dsguard": __version__,
                "bundle": str(ctx.bundle),
                "totals": {
                    "read": summary.read,
                    "loaded": summary.loaded,
                    "duplicates": summary.duplicates,
                    "rejected": summary.rejected,
                    "balanced": summary.balanced,
                },
                "files": [f.model_dump() for f in summary.files],
            },
        )
        ctx.outputs["quarantine.jsonl"] = write_jsonl(
            ctx.out / "quarantine.jsonl", ctx.store.quarantine_rows()
        )
        ctx.counts.update(
            {
                "rows_read": summary.read,
                "rows_loaded": summary.loaded,
                "rows_rejected": summary.rejected,
            }
        )


class DetectStage:
    """Classify paths, compute features, score, group campaigns, write ``alerts.jsonl``.

    Features run on the engine the context names: DuckDB in the store (incremental when the
    store already holds an analysed period), or Spark over the same SQL (``--engine spark``).
    """

    name = "detect"

    def run(self, ctx: AnalysisContext) -> None:
        from dsguard.evidence.snapshot import Snapshot
        from dsguard.scoring.alerts import campaign_alerts, score_messages, store_alerts
        from dsguard.signals.engine import build_features, feature_columns
        from dsguard.tenant import build_tenant

        con = ctx.store.con
        details = ctx.stage_details.setdefault(self.name, {})
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            details[name] = details.get(name, 0.0) + now - clock
            clock = now

        ctx.progress(self.name, 0, 4, "tenant context")
        ctx.tenant = build_tenant(Snapshot(con))
        lap("tenant")
        ctx.progress(self.name, 1, 4, "features")
        if ctx.engine == "spark":
            try:
                from dsguard.engines.spark import detect_with_spark
            except ImportError as exc:
                raise InputError(
                    f"--engine spark needs pyspark and sqlglot ({exc.name} is missing): "
                    "pip install 'pyspark==4.3.0' 'sqlglot==30.31.0', and Java 17"
                ) from exc

            # --threads bounds a local Spark too, unless a master was chosen explicitly.
            local = ctx.threads and not os.environ.get("DSGUARD_SPARK_MASTER")
            master = f"local[{ctx.threads}]" if local else None
            alerts = detect_with_spark(con, ctx.tenant, ctx.out, timer=details, master=master)
            lap("spark")
        else:
            run = build_features(con, ctx.tenant)
            ctx.feature_run = run
            lap("features")
            ctx.progress(self.name, 2, 4, "scoring")
            score_messages(con, feature_columns(con))
            lap("scoring")
            ctx.progress(self.name, 3, 4, "campaigns")
            alerts = campaign_alerts(con)
            lap("campaigns")
        ctx.alerts = alerts
        store_alerts(con, alerts)
        ctx.outputs["alerts.jsonl"] = write_jsonl(
            ctx.out / "alerts.jsonl", (a.model_dump(mode="json") for a in alerts)
        )
        lap("write alerts")
        for a in alerts:
            ctx.found(Severity.parse(a.severity))
        ctx.counts["alerts"] = len(alerts)
        ctx.progress(self.name, 4, 4, "")


class GovernStage:
    """Posture checks, exception registry health, phase simulation, path inventory, plan."""

    name = "govern"

    def run(self, ctx: AnalysisContext) -> None:
        from dsguard.evidence.snapshot import Snapshot
        from dsguard.governance.exceptions import check_registry, uncovered_flows, usage
        from dsguard.governance.plan import render_plan
        from dsguard.governance.simulation import simulate
        from dsguard.paths.inventory import inventory
        from dsguard.posture import run_checks

        con = ctx.store.con
        ctx.progress(self.name, 0, 4, "posture")
        findings = run_checks(Snapshot(con))
        used, flows = usage(con), uncovered_flows(con)
        findings += check_registry(con, ctx.tenant, used=used, flows=flows)
        ctx.progress(self.name, 1, 4, "simulation")
        phases = simulate(con)
        ctx.progress(self.name, 2, 4, "paths")
        paths = inventory(con)
        ctx.progress(self.name, 3, 4, "plan")
        ctx.findings = findings
        ctx.phases = phases
        ctx.paths = paths
        out = ctx.out
        ctx.outputs["findings.jsonl"] = write_jsonl(
            out / "findings.jsonl", (f.model_dump(mode="json") for f in findings)
        )
        ctx.outputs["simulation.json"] = write_json(
            out / "simulation.json", {"phases": [p.model_dump(mode="json") for p in phases]}
        )
        ctx.outputs["paths.json"] = write_json(
            out / "paths.json", {"paths": [p.model_dump(mode="json") for p in paths]}
        )
        ctx.outputs["plan.md"] = write_text(
            out / "plan.md",
            render_plan(ctx.tenant, phases, findings, flows, used),
        )
        for f in findings:
            if f.status == "FAIL":
                ctx.found(Severity.parse(f.severity))
        ctx.counts["findings_failed"] = sum(1 for f in findings if f.status == "FAIL")
        ctx.progress(self.name, 4, 4, "")


# The report stages import nothing from this module at run time (only for typing), so they
# can be imported here, after the stages above are defined.
from dsguard.report.exports import ExportStage  # noqa: E402
from dsguard.report.html import HtmlReportStage  # noqa: E402

STAGES: list[Stage] = [
    IngestStage(),
    DetectStage(),
    GovernStage(),
    ExportStage(),
    HtmlReportStage(),
]


def _no_progress(stage: str, done: int, total: int, detail: str) -> None:
    return None


def analyze(
    bundle: Path,
    out: Path,
    *,
    db: Path | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    engine: str = "duckdb",
) -> AnalysisContext:
    """Run every stage on ``bundle`` and write the output contract into ``out``.

    ``engine`` runs the detections on DuckDB (default) or Spark (``dsguard.engines.spark``).
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    discover(bundle)  # fail on a wrong folder before creating anything
    out.mkdir(parents=True, exist_ok=True)
    store = EvidenceStore(db or out / DEFAULT_DB_NAME, memory_limit=memory_limit, threads=threads)
    ctx = AnalysisContext(
        bundle=bundle, out=out, store=store, progress=progress or _no_progress, engine=engine,
        threads=threads,
    )
    try:
        for stage in STAGES:
            started = time.perf_counter()
            stage.run(ctx)
            ctx.timings[stage.name] = time.perf_counter() - started
    finally:
        store.close()
    profile = os.environ.get("DSGUARD_PROFILE")
    if profile:  # benchmarks read where the time went without changing the CLI's output
        run = ctx.feature_run
        write_json(
            Path(profile),
            {
                "timings": ctx.timings,
                "stages": ctx.stage_details,
                "features": None if run is None else {
                    "mode": run.mode, "reason": run.reason, "new_rows": run.new_rows,
                    "seconds": run.seconds,
                },
                "counts": ctx.counts,
            },
        )
    return ctx


def summary_dict(ctx: AnalysisContext) -> dict[str, Any]:
    """What ``--json`` prints: machine-readable, stable keys."""
    return {
        "bundle": str(ctx.bundle),
        "out": str(ctx.out),
        "outputs": {k: str(v) for k, v in ctx.outputs.items()},
        "counts": ctx.counts,
        "worst_severity": str(ctx.worst) if ctx.worst is not None else None,
        "timings_s": {k: round(v, 3) for k, v in ctx.timings.items()},
        "files": [f.model_dump() for f in ctx.ingest.files] if ctx.ingest else [],
    }
