"""The collection, source by source: what runs in which order, and what a rerun skips.

Order matters: Exchange configuration first (the accepted domains decide which DNS names to
capture and which senders look internal), then the apps, DNS, mail telemetry, and last the
sign-ins of the senders the mail showed. A source that fails (a refused permission, a
service that stays down) is reported and the next one still runs; only a credential that
yields no token at all stops everything. Whatever finished is in the checkpoint
(``state.py``), so the same command run again continues where this one stopped.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from dsguard.collect import dnsq, exchange, graph, hunting, trace
from dsguard.collect.auth import EXCHANGE_SCOPE, GRAPH_SCOPE
from dsguard.collect.errors import AuthenticationFailed, CollectError, one_line
from dsguard.collect.http import ApiClient, RetryPolicy, Service, TokenCredential
from dsguard.collect.state import (
    RECHECK,
    Period,
    State,
    iso,
    parse_iso,
    parse_stamp,
    remove_partials,
    write_atomic,
    write_json_lines,
)
from dsguard.posture.kinds import KINDS, SERVICE_PRINCIPALS

SOURCES: tuple[str, ...] = ("exchange", "apps", "dns", "mail", "signins")
MAIL_SOURCES = ("auto", "hunting", "trace")
Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class CollectConfig:
    """What to collect and from where. Only ``tenant`` and ``out`` are required.

    ``end`` defaults to now (whole minutes, UTC); a resumed collection keeps the period it
    started with, unless ``extend`` moves its end on to ``end`` (``State.extend``), looking
    again at the ``recheck`` before the old end. The URLs default to the global cloud; tests
    point them at 127.0.0.1.
    """

    tenant: str
    out: Path
    days: int = 30
    end: datetime | None = None
    extend: bool = False
    recheck: timedelta = RECHECK
    mail_source: str = "auto"
    skip: frozenset[str] = frozenset()
    tenant_domain: str | None = None
    graph_url: str = "https://graph.microsoft.com"
    exchange_url: str = "https://outlook.office365.com"
    graph_scope: str | None = None
    exchange_scope: str | None = None
    dns: dnsq.DnsSettings = field(default_factory=dnsq.DnsSettings)
    slices: hunting.SliceRule = field(default_factory=hunting.SliceRule)
    trace_slice: timedelta = timedelta(days=1)
    signins_per_request: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 120.0

    def validate(self) -> None:
        if not self.tenant.strip():
            raise CollectError("--tenant is empty")
        if not 1 <= self.days <= 365:
            raise CollectError(f"--days {self.days}: choose 1 to 365")
        if self.recheck < timedelta(0):
            raise CollectError("--recheck-hours cannot be negative")
        if self.recheck != RECHECK and not self.extend:
            raise CollectError("--recheck-hours applies to --extend only")
        if self.mail_source not in MAIL_SOURCES:
            raise CollectError(f"--mail-source {self.mail_source}: choose auto, hunting or trace")
        unknown = sorted(set(self.skip) - set(SOURCES))
        if unknown:
            raise CollectError(
                f"--skip {', '.join(unknown)}: sources are {', '.join(SOURCES)}"
            )


def scope_for(url: str, explicit: str | None, default: str, default_url: str) -> str:
    """The token scope of a service URL: its origin + ``/.default`` (sovereign clouds too)."""
    if explicit:
        return explicit
    if url.rstrip("/") == default_url:
        return default
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}/.default"


@dataclass
class SourceReport:
    """How one source went: ``collected``, ``done`` (already complete), ``partial``,
    ``skipped`` or ``failed``."""

    name: str
    status: str = "pending"
    files: int = 0
    rows: int = 0
    note: str = ""


@dataclass
class CollectResult:
    """What a collection did; ``errors`` empty means the bundle is complete."""

    out: Path
    tenant: str
    period: Period
    resumed: bool
    mail_source: str | None = None
    extended_from: datetime | None = None
    sources: dict[str, SourceReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "tenant": self.tenant,
            "start": iso(self.period.start),
            "end": iso(self.period.end),
            "resumed": self.resumed,
            "extended_from": iso(self.extended_from) if self.extended_from else None,
            "complete": self.complete,
            "mail_source": self.mail_source,
            "sources": {
                k: {"status": v.status, "files": v.files, "rows": v.rows, "note": v.note}
                for k, v in self.sources.items()
            },
            "warnings": self.warnings,
            "errors": self.errors,
        }


def collect(
    config: CollectConfig,
    credential: TokenCredential,
    *,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> CollectResult:
    """Collect an evidence bundle into ``config.out`` (module docstring).

    Raises ``CollectError`` only when nothing can be collected at all (a bad option, a
    bundle holding another collection, a credential that yields no token); every other
    failure is in the result's ``errors``, with what did finish saved for a rerun.
    """
    config.validate()
    end = config.end or datetime.now(UTC).replace(second=0, microsecond=0)
    config.out.mkdir(parents=True, exist_ok=True)
    state, resumed = State.open(
        config.out, tenant=config.tenant, days=config.days, end=end, extend=config.extend
    )
    remove_partials(config.out)
    extended_from = None
    if config.extend and resumed:
        out = config.out
        extended_from = state.extend(
            end,
            config.recheck,
            {
                hunting.SOURCE: lambda s, e: hunting.slice_file(out, s, e),
                trace.SOURCE: lambda s, e: trace.slice_file(out, s, e),
            },
        )
    result = CollectResult(config.out, config.tenant, state.period, resumed)
    result.extended_from = extended_from
    run = _Run(config, state, result, progress or (lambda *_: None), credential, transport)
    try:
        run.all()
    finally:
        run.close()
    return result


class _Run:
    """One collection's moving parts; each ``_source`` method is one source."""

    def __init__(
        self,
        config: CollectConfig,
        state: State,
        result: CollectResult,
        progress: Progress,
        credential: TokenCredential,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.config = config
        self.state = state
        self.result = result
        self._progress = progress
        self._current = ""
        self._last: dict[str, tuple[int, int]] = {}
        graph_service = Service(
            "Graph",
            config.graph_url,
            scope_for(config.graph_url, config.graph_scope, GRAPH_SCOPE,
                      "https://graph.microsoft.com"),
        )  # fmt: skip
        exo_service = Service(
            "Exchange Online",
            config.exchange_url,
            scope_for(config.exchange_url, config.exchange_scope, EXCHANGE_SCOPE,
                      "https://outlook.office365.com"),
        )  # fmt: skip
        common: dict[str, Any] = {
            "transport": transport,
            "retry": config.retry,
            "timeout": config.timeout,
            "notify": self._note,
        }
        self.graph = ApiClient(graph_service, credential, **common)
        self.exo = ApiClient(exo_service, credential, **common)
        self._org: dict[str, Any] | None = None

    def close(self) -> None:
        self.graph.close()
        self.exo.close()

    # ------------------------------------------------------------------ plumbing
    def progress(self, done: int, total: int, detail: str = "") -> None:
        self._last[self._current] = (done, total)
        self._progress(self._current, done, total, one_line(detail, 80))

    def _note(self, message: str) -> None:
        done, total = self._last.get(self._current, (0, 1))
        self._progress(self._current, done, total, one_line(message, 80))

    def warn(self, message: str) -> None:
        text = one_line(message, 500)
        if text not in self.result.warnings:
            self.result.warnings.append(text)

    def lasting_warning(self, message: str) -> None:
        """A warning that stays true for the bundle, repeated by every later run."""
        text = one_line(message, 500)
        kept = self.state.get("warnings", [])
        if text not in kept:
            self.state.put("warnings", [*kept, text])

    def all(self) -> None:
        steps: dict[str, Callable[[SourceReport], None]] = {
            "exchange": self._exchange,
            "apps": self._apps,
            "dns": self._dns,
            "mail": self._mail,
            "signins": self._signins,
        }
        for name in SOURCES:
            report = self.result.sources[name] = SourceReport(name)
            self._current = name
            if name in self.config.skip:
                report.status, report.note = "skipped", "--skip"
                continue
            try:
                steps[name](report)
            except AuthenticationFailed:
                raise
            except CollectError as exc:
                report.status = "failed"
                report.note = one_line(str(exc), 100)
                self.result.errors.append(str(exc))
        lasting = [w for w in self.state.get("warnings", []) if w not in self.result.warnings]
        self.result.warnings[:0] = lasting
        self.result.mail_source = self.state.get("mail_source")

    def organization(self) -> dict[str, Any]:
        """The tenant's verified domains, fetched once per bundle and kept in the state."""
        if self._org is None:
            saved = self.state.get("organization")
            if isinstance(saved, dict):
                self._org = saved
            else:
                self._org = graph.organization(self.graph)
                self.state.put("organization", self._org)
        return self._org

    def anchor_domain(self) -> str:
        if self.config.tenant_domain:
            return self.config.tenant_domain.lower()
        if "." in self.config.tenant:
            return self.config.tenant.lower()
        org = self.organization()
        domain = graph.initial_domain(org) or next(iter(graph.verified_domains(org)), None)
        if not domain:
            raise CollectError(
                "could not learn the tenant's initial domain for the Exchange admin API; "
                "pass --tenant-domain TENANT.onmicrosoft.com"
            )
        return domain

    def domains(self) -> list[str]:
        """Accepted domains from Exchange, else the verified domains from Graph."""
        accepted = exchange.accepted_domains(self.config.out)
        if accepted:
            return accepted
        try:
            return graph.verified_domains(self.organization())
        except CollectError as exc:
            self.warn(f"no accepted domains known: {exc}")
            return []

    @staticmethod
    def _finish(report: SourceReport, files: int, rows: int, note: str = "") -> None:
        report.files, report.rows = files, rows
        report.status = "collected" if files else "done"
        report.note = note or ("already complete" if not files else "")

    # ------------------------------------------------------------------ sources
    def _exchange(self, report: SourceReport) -> None:
        pending = [c for c in exchange.CMDLETS if self.state.unit(f"exchange:{c.kind}") is None]
        anchor = self.anchor_domain() if pending else ""
        files, rows, failed = exchange.collect_exchange(
            self.exo, self.config.out, self.state, self.config.tenant, anchor,
            self.progress, self.warn,
        )  # fmt: skip
        self._finish(report, files, rows)
        if failed:
            report.status = "partial"
            report.note = f"not collected: {', '.join(failed)}"

    def _apps(self, report: SourceReport) -> None:
        if self.state.unit("apps") is not None:
            self.progress(1, 1, "already complete")
            self._finish(report, 0, 0)
            return
        sps = graph.mail_service_principals(self.graph, self.warn, self.progress)
        path = KINDS[SERVICE_PRINCIPALS].bundle_path
        doc = {"value": sps}
        write_atomic(self.config.out / path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        grants = sum(len(sp.get("appRoleAssignedTo") or []) for sp in sps)
        self.state.finish("apps", objects=len(sps), grants=grants)
        self._finish(report, 1, len(sps), f"{grants} mail-role grants")

    def _dns(self, report: SourceReport) -> None:
        if self.state.unit("dns") is not None:
            self.progress(1, 1, "already complete")
            self._finish(report, 0, 0)
            return
        domains = self.domains()
        if not domains:
            raise CollectError("DNS not captured: no accepted domains are known")
        doc = dnsq.capture_domains(domains, self.config.dns, self.progress, self.warn)
        write_atomic(self.config.out / "dns.json", json.dumps(doc, indent=2) + "\n")
        self.state.finish("dns", names=len(doc), domains=domains)
        self._finish(report, 1, len(doc), f"{len(domains)} domains")

    def _mail(self, report: SourceReport) -> None:
        chosen = self.state.get("mail_source")
        wanted = self.config.mail_source
        if chosen and wanted not in ("auto", chosen):
            raise CollectError(
                f"this bundle's mail telemetry is being collected from {chosen}; rerun with "
                f"--mail-source {chosen} (or auto), or use another --out folder"
            )
        source = chosen or wanted
        if source in ("auto", "hunting"):
            try:
                files, rows = hunting.collect_email_events(
                    self.graph, self.config.out, self.state, self.config.slices,
                    self.progress, self.warn,
                )  # fmt: skip
            except hunting.HuntingUnavailable as exc:
                if source == "hunting" or self.state.slices(hunting.SOURCE):
                    raise CollectError(f"{exc}; rerun with --mail-source trace") from None
                self.lasting_warning(
                    f"{exc}: mail telemetry comes from message trace instead; {trace.LOSSES}"
                )
            else:
                self.state.put("mail_source", "hunting")
                self.state.finish("mail", source="hunting")
                self._finish(report, files, rows, "EmailEvents (Advanced Hunting)")
                return
            finally:
                # Slices on disk bind the bundle to Advanced Hunting, even after a failure.
                if self.state.slices(hunting.SOURCE) and not self.state.get("mail_source"):
                    self.state.put("mail_source", "hunting")
        self.state.put("mail_source", "trace")
        files, rows = trace.collect_message_trace(
            self.graph, self.config.out, self.state, self.config.trace_slice,
            self.progress, self.warn,
        )  # fmt: skip
        self.state.finish("mail", source="trace")
        self._finish(report, files, rows, "message trace (fallback)")

    def _signins(self, report: SourceReport) -> None:
        if self.state.unit("mail") is None:
            report.status = "skipped"
            report.note = "waits for the mail telemetry to be complete"
            self.warn("sign-ins not collected: they follow the mail telemetry, which is incomplete")
            return
        files = rows = senders = 0
        for batch in self.state.signin_batches():
            got = self._signin_batch(batch)
            files, rows, senders = files + got[0], rows + got[1], senders + got[2]
        self._finish(report, files, rows, f"{senders} senders")

    def _signin_batch(self, batch: dict[str, Any]) -> tuple[int, int, int]:
        """One window's sign-ins (the first period, or one extension): ``(files, rows,
        senders)``. The first batch keeps the names it always had (``signins_0000.jsonl``)."""
        bid = str(batch["id"])
        unit, name = ("signins", "signins") if not bid else (f"signins:{bid}", f"signins_{bid}")
        window = Period(parse_iso(batch["start"]), parse_iso(batch["end"]))
        chunks = batch.get("chunks")
        if chunks is None:
            senders = internal_senders(self.config.out, self.domains(), window)
            size = max(1, self.config.signins_per_request)
            chunks = [senders[i : i + size] for i in range(0, len(senders), size)]
            self.state.put_signin_chunks(bid, chunks)
        files = rows = 0
        total = len(chunks)
        for i, upns in enumerate(chunks):
            if self.state.unit(f"{unit}:{i}") is not None:
                continue
            self.progress(i, total, f"{len(upns)} senders")
            got = list(graph.signins(self.graph, window, upns))
            # An empty chunk is still written, as an empty page: "collected, none".
            write_json_lines(self.config.out / f"{name}_{i:04d}.jsonl", got or [{"value": []}])
            n = len(got)
            self.state.finish(f"{unit}:{i}", rows=n, senders=len(upns))
            files, rows = files + 1, rows + n
        self.progress(total, total, f"{rows} sign-ins")
        if not chunks and self.state.unit(f"{unit}:none") is None:
            write_atomic(self.config.out / f"{name}_none.json", '{"value": []}\n')
            self.state.finish(f"{unit}:none", rows=0)
            files = 1
        return files, rows, sum(len(c) for c in chunks)


def internal_senders(bundle: Path, domains: list[str], window: Period | None = None) -> list[str]:
    """Addresses in the tenant's domains that sent *inbound* mail: the internal-looking
    senders whose sign-ins tell a person from a spoof (Direct Send produces no sign-in).
    With ``window``, only the slice files that overlap it are read.

    Message trace has no direction, so there every internal-looking sender counts.
    """
    doms = {d.lower() for d in domains}

    def internal(address: Any) -> str | None:
        if not isinstance(address, str) or "@" not in address:
            return None
        addr = address.strip().lower()
        dom = addr.rsplit("@", 1)[1]
        if dom in doms or any(dom.endswith("." + d) for d in doms):
            return addr
        return None

    def outside(m: re.Match[str] | None) -> bool:
        if m is None or window is None:
            return False
        return not (parse_stamp(m[1]) < window.end and window.start < parse_stamp(m[2]))

    found: set[str] = set()
    for path in sorted(bundle.iterdir()):
        hunted, traced = hunting.FILE_RE.match(path.name), trace.FILE_RE.match(path.name)
        if outside(hunted or traced):
            continue
        if hunted:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(row, dict):
                        continue
                    if str(row.get("EmailDirection") or "").lower() != "inbound":
                        continue
                    for key in ("SenderFromAddress", "SenderMailFromAddress"):
                        if addr := internal(row.get(key)):
                            found.add(addr)
        elif traced:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                for rec in csv.DictReader(fh):
                    if addr := internal(rec.get("SenderAddress")):
                        found.add(addr)
    return sorted(found)
