"""The ``dsguard`` command: a thin shell over the stages.

Exit codes: 0 ok; 1 something found at or above ``--fail-on``; 2 usage or input error;
3 internal error (a bug: rerun with ``--debug`` and report it). No traceback reaches a user
unless ``--debug`` asks for one.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dsguard import __version__
from dsguard.outputs import dumps
from dsguard.severity import Severity
from dsguard.terminal import console, safe, table

if TYPE_CHECKING:
    from rich.console import Console

    from dsguard.evidence.model import FileReport
    from dsguard.evidence.store import IngestSummary

EXIT_FOUND = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3

app = typer.Typer(
    name="dsguard",
    help="Find, explain and govern Direct Send abuse in Microsoft 365.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

T = TypeVar("T")

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback when something fails.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]
MemoryOpt = Annotated[
    str | None, typer.Option(help="DuckDB memory limit, e.g. 2GB (spills beyond it).")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Worker threads the run may use: DuckDB's (default: one per "
                 "core), and a local Spark's under analyze --engine spark. With "
                 "--memory-limit, what a run may take from a shared machine."),
]


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "your input is wrong", imported lazily to keep --help fast."""
    from dsguard.bundle import BundleError
    from dsguard.evidence.store import StoreError
    from dsguard.pipeline import InputError
    from dsguard.sources.base import SourceError

    return (
        BundleError,
        StoreError,
        InputError,
        SourceError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    )


def _guard(fn: Callable[[], T], *, debug: bool) -> T:
    """Run a command body; turn failures into one line on stderr and an exit code."""
    debug = debug or bool(os.environ.get("DSGUARD_DEBUG"))
    err = console(stderr=True)
    try:
        return fn()
    except (typer.Exit, typer.TyperException):
        raise
    except _input_errors() as exc:
        if debug:
            traceback.print_exc()
        err.print(f"dsguard: error: {safe(exc, limit=400)}", markup=False)
        raise typer.Exit(EXIT_INPUT) from None
    except (KeyboardInterrupt, Exception) as exc:
        from dsguard.evidence.duck import interrupted
        from dsguard.evidence.store import out_of_room

        if interrupted(exc):  # Ctrl-C, in Python or inside a DuckDB query
            err.print("dsguard: interrupted", markup=False)
            raise typer.Exit(130) from None
        if debug:
            traceback.print_exc()
        advice = out_of_room(exc)
        if advice:
            first = str(exc).strip().splitlines()[0]
            err.print(f"dsguard: error: {advice} ({safe(first, limit=160)})", markup=False)
            raise typer.Exit(EXIT_INPUT) from None
        err.print(
            f"dsguard: internal error: {type(exc).__name__}: {safe(exc, limit=300)} "
            "(rerun with --debug for the traceback)",
            markup=False,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int, str], None]]:
    """A Rich progress display driven by (step, done, total, detail) callbacks."""
    if quiet or (not sys.stderr.isatty() and not os.environ.get("DSGUARD_PROGRESS")):
        yield lambda *_: None
        return
    bars = Progress(
        TextColumn("{task.fields[step]:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console(stderr=True),
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(step: str, done: int, total: int, detail: str) -> None:
        if step not in tasks:
            tasks[step] = bars.add_task(step, total=max(total, 1), step=step, detail="")
        bars.update(tasks[step], completed=done, total=max(total, 1), detail=safe(detail, 60))

    with bars:
        yield update


def _fail_on(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def analyze(
    bundle: Annotated[Path, typer.Argument(help="The evidence bundle folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("dsguard-out"),
    db: Annotated[
        Path | None, typer.Option(help="Evidence store file (default OUT/evidence.duckdb).")
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(help="Exit 1 when anything at or above this severity is found."),
    ] = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            help="Detection engine: duckdb, or spark (needs pyspark and Java; "
            "DSGUARD_SPARK_MASTER sets the master, default local[2]).",
        ),
    ] = "duckdb",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Ingest a bundle and run every analysis stage, writing the output contract to OUT."""
    threshold = _fail_on(fail_on)

    def body() -> None:
        from dsguard.pipeline import analyze as run_analysis

        with _progress(quiet or json_out) as progress:
            ctx = run_analysis(
                bundle, out, db=db, progress=progress, memory_limit=memory_limit,
                threads=threads, engine=engine,
            )  # fmt: skip
        _report(ctx, json_out=json_out, quiet=quiet)
        if threshold is not None and ctx.worst is not None and ctx.worst >= threshold:
            raise typer.Exit(EXIT_FOUND)

    _guard(body, debug=debug)


def _report(ctx: Any, *, json_out: bool, quiet: bool) -> None:
    from dsguard.pipeline import summary_dict

    if json_out:
        sys.stdout.write(dumps(summary_dict(ctx)) + "\n")
        return
    out = console(quiet=quiet)
    if ctx.ingest is not None:
        _print_ingest(out, ctx.ingest)
    _summary(out, ctx)
    out.print(f"Outputs in {safe(ctx.out)}:", markup=False)
    for name in sorted(ctx.outputs):
        out.print(f"  {name}", markup=False)


# A source with more files than this shows its unremarkable ones (no error, no rejected row,
# no warning) as one row per status: a month of daily exports or a folder of .eml files
# would otherwise bury the few files that need a look. Those always keep their own row.
FOLD_FILES = 12


_COUNTS = ("read", "loaded", "duplicates", "rejected")


def _print_ingest(out: Console, summary: IngestSummary) -> None:
    """The row accounting of an ingest, then each file's error and warnings in full."""
    rows = ingest_rows(summary.files)
    rows.append(("", "total", *(getattr(summary, k) for k in _COUNTS), ""))
    headers = ("source", "file", *_COUNTS, "status")
    out.print(table("Ingest", headers, rows))
    for f in summary.files:
        if f.error:
            out.print(f"  {safe(f.file)}: {safe(f.error, 300)}", markup=False)
        for w in f.warnings:
            out.print(f"  {safe(f.file)}: {safe(w, 300)}", markup=False)


def ingest_rows(
    files: Sequence[FileReport], fold: int = FOLD_FILES
) -> list[tuple[object, ...]]:
    """One row per file, except that a source's unremarkable files of one status become a
    single row (``n files: first … last``, counts summed) when there are more than ``fold``
    of them; the row stands where the first of them stood."""

    def status(f: FileReport) -> str:
        return "error" if f.error else "unchanged" if f.skipped else "ok"

    def plain(f: FileReport) -> bool:
        return not (f.error or f.rejected or f.warnings)

    groups: dict[tuple[str, str], list[FileReport]] = {}
    for f in files:
        if plain(f):
            groups.setdefault((f.source, status(f)), []).append(f)
    rows: list[tuple[object, ...]] = []
    for f in files:
        group = groups.get((f.source, status(f)), []) if plain(f) else []
        if len(group) <= fold:
            rows.append((f.source, f.file, *(getattr(f, k) for k in _COUNTS), status(f)))
        elif f is group[0]:
            label = f"{len(group)} files: {group[0].file} … {group[-1].file}"
            sums = [sum(getattr(g, k) for g in group) for k in _COUNTS]
            rows.append((f.source, label, *sums, status(f)))
    return rows


def _summary(out: Any, ctx: Any) -> None:
    """The closing table: what was found, by severity, and what the switch would break."""
    levels = [str(s) for s in sorted(Severity, reverse=True)]
    alerts = {lv: 0 for lv in levels}
    for a in ctx.alerts:
        alerts[a.severity] += 1
    failing = {lv: 0 for lv in levels}
    for f in ctx.findings:
        if f.status == "FAIL":
            failing[f.severity] += 1
    rows = [(lv, alerts[lv], failing[lv]) for lv in levels]
    out.print(table("Summary", ("severity", "alerts", "failing findings"), rows))
    today = next((p for p in ctx.phases if p.phase == 0), None)
    if today is not None:
        out.print(
            f"RejectDirectSend today would reject {today.rejected_messages} observed messages "
            f"from {len(today.rejected_sources)} sources; "
            f"{len(today.unstopped_suspicious)} suspicious messages would still get through.",
            markup=False,
        )
    if ctx.timings:
        spent = ", ".join(f"{k} {v:.1f}s" for k, v in ctx.timings.items())
        out.print(f"Stages: {spent}", markup=False)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic bundle into.")],
    users: Annotated[int, typer.Option(min=5, help="People in the tenant.")] = 200,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of traffic.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bundle).")] = 7,
    rows: Annotated[
        int | None, typer.Option(min=1, help="Target EmailEvents rows (scales the tenant).")
    ] = None,
    shape: Annotated[
        str, typer.Option(help="Tenant and export shape: default, sentinel, jsonl, hunting.")
    ] = "default",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a realistic synthetic tenant bundle with labelled Direct Send campaigns."""

    def body() -> None:
        from dsguard.synth import SynthConfig, generate

        try:
            cfg = SynthConfig(users=users, days=days, seed=seed, rows=rows, shape=shape)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        with _progress(quiet or json_out) as progress:
            summary = generate(out, cfg, progress=lambda s, d, t: progress("synth", d, t, s))
        _print_synth(out, summary, json_out=json_out, quiet=quiet)

    _guard(body, debug=debug)


def _print_synth(out: Path, summary: Any, *, json_out: bool, quiet: bool) -> None:
    data = summary.model_dump() if hasattr(summary, "model_dump") else vars(summary)
    if json_out:
        sys.stdout.write(dumps({"out": str(out), **data}) + "\n")
        return
    con = console(quiet=quiet)
    rows_per_file = data.get("rows") or data.get("rows_per_file") or {}
    if rows_per_file:
        con.print(table("Synthetic bundle", ("file", "rows"), sorted(rows_per_file.items())))
    con.print(f"Bundle written to {safe(out)}", markup=False)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Argument(help="Folder for the demo bundle and its analysis.")
    ] = Path("dsguard-demo"),
    users: Annotated[int, typer.Option(min=5)] = 120,
    days: Annotated[int, typer.Option(min=1, max=365)] = 30,
    seed: Annotated[int, typer.Option()] = 7,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a synthetic tenant to OUT/bundle and analyse it into OUT/analysis."""

    def body() -> None:
        from dsguard.pipeline import analyze as run_analysis
        from dsguard.synth import SynthConfig, generate

        bundle, result = out / "bundle", out / "analysis"
        with _progress(quiet) as progress:
            generate(
                bundle,
                SynthConfig(users=users, days=days, seed=seed),
                progress=lambda s, d, t: progress("synth", d, t, s),
            )
            ctx = run_analysis(bundle, result, progress=progress)
        _report(ctx, json_out=False, quiet=quiet)
        con = console(quiet=quiet)
        con.print(f"Report:           {safe(result / 'report.html')}", markup=False)
        con.print(f"Synthetic bundle: {safe(bundle)}", markup=False)
        con.print(f"Ground truth:     {safe(bundle / 'truth.json')}", markup=False)

    _guard(body, debug=debug)


@app.command()
def ingest(
    bundle: Annotated[Path, typer.Argument(help="The evidence bundle folder.")],
    db: Annotated[Path, typer.Option(help="Evidence store file.")] = Path(
        "dsguard-out/evidence.duckdb"
    ),
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Only load a bundle into the evidence store (idempotent; prints the row accounting)."""

    def body() -> None:
        from dsguard.bundle import discover
        from dsguard.evidence.store import EvidenceStore

        files = discover(bundle)
        store = EvidenceStore(db, memory_limit=memory_limit, threads=threads)
        with store, _progress(quiet or json_out) as progress:
            summary = store.ingest(
                files, root=bundle, progress=lambda f, d, t: progress("ingest", d, t, f)
            )
        if json_out:
            payload = {"db": str(db), "files": [f.model_dump() for f in summary.files]}
            sys.stdout.write(dumps(payload) + "\n")
            return
        _print_ingest(console(quiet=quiet), summary)

    _guard(body, debug=debug)


@app.command()
def collect(
    tenant: Annotated[str, typer.Option(help="Tenant id (GUID) or initial domain.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder to write.")],
    client_id: Annotated[
        str | None, typer.Option(help="Application (client) id of the app registration.")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="PEM file holding the app's certificate and key.")
    ] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the secret.")
    ] = None,
    managed_identity: Annotated[
        bool, typer.Option("--managed-identity", help="Use the host's managed identity.")
    ] = False,
    device_code: Annotated[
        bool, typer.Option("--device-code", help="Sign in as a person (device code flow).")
    ] = False,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of telemetry.")] = 30,
    extend: Annotated[
        bool,
        typer.Option(
            "--extend",
            help="Move an existing bundle's end on to now: new mail and sign-ins, the last "
            "hours before the old end again, configuration and DNS afresh.",
        ),
    ] = False,
    recheck_hours: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=168,
            help="With --extend: hours before the old end collected again (default 6).",
        ),
    ] = None,
    mail_source: Annotated[
        str, typer.Option(help="auto (Advanced Hunting, else message trace), hunting, trace.")
    ] = "auto",
    skip: Annotated[
        list[str] | None,
        typer.Option(help="Source not to collect: exchange, apps, dns, mail, signins."),
    ] = None,
    tenant_domain: Annotated[
        str | None, typer.Option(help="Initial domain, if Graph may not read it.")
    ] = None,
    graph_url: Annotated[
        str, typer.Option(help="Graph endpoint (sovereign clouds).")
    ] = "https://graph.microsoft.com",
    exchange_url: Annotated[
        str, typer.Option(help="Exchange Online endpoint (sovereign clouds).")
    ] = "https://outlook.office365.com",
    dns_server: Annotated[
        list[str] | None, typer.Option(help="DNS server HOST[:PORT] (default: the system's).")
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Collect an evidence bundle from a live tenant, read-only; rerun to resume."""

    def body() -> None:
        from dsguard.collect import (
            AuthOptions,
            CollectConfig,
            CollectError,
            DnsSettings,
            make_credential,
        )
        from dsguard.collect import collect as run_collect
        from dsguard.collect.errors import scrub_exception

        err = console(stderr=True)
        try:
            credential = make_credential(
                AuthOptions(
                    tenant=tenant,
                    client_id=client_id,
                    certificate=certificate,
                    client_secret_env=client_secret_env,
                    managed_identity=managed_identity,
                    device_code=device_code,
                )
            )
            config = CollectConfig(
                tenant=tenant,
                out=out,
                days=days,
                extend=extend,
                mail_source=mail_source,
                skip=frozenset(s.strip().lower() for s in skip or []),
                tenant_domain=tenant_domain,
                graph_url=graph_url,
                exchange_url=exchange_url,
                dns=DnsSettings(servers=tuple(dns_server or ())),
            )
            if recheck_hours is not None:
                config = dataclasses.replace(config, recheck=timedelta(hours=recheck_hours))
            with _progress(quiet or json_out) as progress:
                result = run_collect(config, credential, progress=progress)
        except CollectError as exc:
            scrub_exception(exc)
            if debug or os.environ.get("DSGUARD_DEBUG"):
                traceback.print_exc()
            err.print(f"dsguard: error: {safe(exc, limit=600)}", markup=False)
            raise typer.Exit(EXIT_INPUT) from None
        except Exception as exc:
            scrub_exception(exc)  # _guard prints it; no secret may ride along
            raise
        if json_out:
            sys.stdout.write(dumps(result.as_dict()) + "\n")
        else:
            con = console(quiet=quiet)
            rows = [(r.name, r.status, r.files, r.rows, r.note) for r in result.sources.values()]
            con.print(table("Collect", ("source", "status", "files", "rows", "note"), rows))
            for w in result.warnings:
                con.print(f"  warning: {safe(w, 400)}", markup=False)
            if result.extended_from:
                con.print(
                    f"Extended from {result.extended_from:%Y-%m-%d %H:%M} to "
                    f"{result.period.end:%Y-%m-%d %H:%M} UTC",
                    markup=False,
                )
            con.print(f"Bundle written to {safe(result.out)}", markup=False)
        for e in result.errors:
            err.print(f"dsguard: error: {safe(e, limit=600)}", markup=False)
        if result.errors:
            raise typer.Exit(EXIT_INPUT)

    _guard(body, debug=debug)


@app.command()
def triage(
    messages: Annotated[list[Path], typer.Argument(help=".eml/.msg files or folders of them.")],
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", "-d", help="An accepted domain of the tenant (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Path, verdict and header evidence chain for message files (exit 2 if any failed)."""

    def body() -> None:
        from dsguard.triage import triage as run_triage

        failed = False
        con = console(quiet=quiet)
        doms = {d.strip().lower() for d in domain or [] if d.strip()}
        for result in run_triage(messages, doms or None):
            failed |= result.error is not None
            if json_out:
                sys.stdout.write(dumps(result.model_dump(mode="json")) + "\n")
                continue
            _print_triage(con, result)
        if failed:
            raise typer.Exit(EXIT_INPUT)

    _guard(body, debug=debug)


def _print_triage(con: Any, r: Any) -> None:
    if r.error:
        con.print(f"{safe(r.file)}: error: {safe(r.error)}", markup=False)
        return
    con.print(f"{safe(r.file)}", markup=False, style="bold")
    con.print(
        f"  path {safe(r.path)}  internal-looking {r.internal_looking}  "
        f"severity {safe(r.severity)}  score {r.score:g}",
        markup=False,
    )
    con.print(f"  from {safe(r.sender)}  subject {safe(r.subject, 120)}", markup=False)
    con.print(f"  verdict: {safe(r.verdict, 300)}", markup=False)
    for s in r.signals:
        ev = ", ".join(f"{k}={safe(v, 60)}" for k, v in s.evidence.items() if v is not None)
        con.print(f"  {s.weight:+5g}  {s.signal_id}  {safe(s.title)}  [{ev}]", markup=False)
    for step in r.evidence_chain[:12]:
        if "because" in step:
            con.print(f"    because {safe(step['because'], 200)}", markup=False)
        else:
            where = safe(step.get("header"))
            if step.get("field"):
                where += ":" + safe(step["field"])
            con.print(
                f"    {where} = {safe(step.get('value'), 80)} -> {safe(step.get('meaning'), 120)}"
                f" ({safe(step.get('confidence'))})",
                markup=False,
            )
    for n in r.notes[:5]:
        con.print(f"    note: {safe(n, 200)}", markup=False)


exceptions_app = typer.Typer(
    help="Exceptions as code: the registry of approved unauthenticated mail paths.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(exceptions_app, name="exceptions")


@exceptions_app.command("check")
def exceptions_check(
    bundle: Annotated[Path, typer.Argument(help="The evidence bundle folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Analysis folder (default: a temp dir).")
    ] = None,
    drafts: Annotated[
        Path | None, typer.Option(help="Write draft entries for uncovered traffic to this YAML.")
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option(help="Exit 1 when a registry finding reaches this severity.")
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Expired, expiring, ownerless, unused, too broad or overlapping entries, and the Direct
    Send traffic no entry covers (with draft entries to review and paste in)."""
    threshold = _fail_on(fail_on)

    def body() -> None:
        import tempfile

        import yaml

        from dsguard.pipeline import analyze as run_analysis

        with (
            tempfile.TemporaryDirectory(prefix="dsguard-exc-") as tmp,
            _progress(quiet or json_out) as progress,
        ):
            ctx = run_analysis(bundle, out or Path(tmp), progress=progress)
        gov = [f for f in ctx.findings if f.check_id.startswith("DS-GOV-")]
        failing = [f for f in gov if f.status == "FAIL"]
        if drafts is not None:
            entries = [
                yaml.safe_load(f.evidence["draft_yaml"])["exceptions"][0]
                for f in failing
                if "draft_yaml" in f.evidence
            ]
            from dsguard.outputs import write_text

            write_text(drafts, yaml.safe_dump({"exceptions": entries}, sort_keys=False))
        if json_out:
            sys.stdout.write(dumps([f.model_dump(mode="json") for f in gov]) + "\n")
        else:
            con = console(quiet=quiet)
            rows = [(f.check_id, f.severity, f.resource, f.status_extended) for f in failing]
            con.print(
                table(
                    "Exception registry",
                    ("check", "severity", "resource", "problem"),
                    rows or [("-", "-", "-", "no problems found")],
                )
            )
            if drafts is not None:
                con.print(f"Draft entries written to {safe(drafts)}", markup=False)
        worst = max((Severity.parse(f.severity) for f in failing), default=None)
        if threshold is not None and worst is not None and worst >= threshold:
            raise typer.Exit(EXIT_FOUND)

    _guard(body, debug=debug)


@app.command("kql")
def kql_cmd(
    bundle: Annotated[
        Path | None,
        typer.Argument(help="A bundle whose exchange/accepted_domains.json names the domains."),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", "-d", help="An accepted domain of the tenant (repeatable)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the queries.")] = Path(
        "dsguard-kql"
    ),
    lookback_days: Annotated[
        int, typer.Option("--lookback-days", min=1, max=3650, help="Days each query looks back.")
    ] = 30,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write Defender XDR and Sentinel hunting queries for the main detections (exit 2 if no
    valid domain)."""

    def body() -> None:
        from dsguard.pipeline import InputError
        from dsguard.report.kql import KqlError, domains_from_bundle, normalise_domains, write_pack

        found: list[str] = []
        try:
            if bundle is not None:
                try:
                    found = domains_from_bundle(bundle)
                except FileNotFoundError:
                    if not domain or not bundle.is_dir():
                        raise  # --domain alone may stand in for an uncollected file
            domains = normalise_domains([*found, *(domain or [])])
        except KqlError as exc:
            raise InputError(str(exc)) from None
        if not domains:
            raise InputError("no accepted domains: give a bundle or --domain")
        source = " and ".join(
            s for s, used in (("the bundle", found), ("--domain", domain)) if used
        )
        files = write_pack(out, domains, lookback_days, f"from {source}")
        if json_out:
            payload = {"out": str(out), "domains": domains, "files": [str(f) for f in files]}
            sys.stdout.write(dumps(payload) + "\n")
            return
        con = console(quiet=quiet)
        con.print(f"Domains: {safe(', '.join(domains), 300)}", markup=False)
        con.print(f"{len(files)} files written to {safe(out)}:", markup=False)
        for f in files:
            con.print(f"  {safe(f.relative_to(out))}", markup=False)

    _guard(body, debug=debug)


@app.command("eval")
def evaluate_cmd(
    bundle: Annotated[Path, typer.Argument(help="A bundle with known abuse (e.g. from synth).")],
    truth: Annotated[Path, typer.Argument(help="Ground truth (synth writes truth.json).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Analysis folder (default: a temp dir).")
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Message-level precision and recall beside Defender's flag, community KQL and naive rules."""

    def body() -> None:
        import tempfile

        from dsguard.evaluation import Truth, evaluate
        from dsguard.evidence.snapshot import Snapshot
        from dsguard.evidence.store import EvidenceStore
        from dsguard.pipeline import DEFAULT_DB_NAME
        from dsguard.pipeline import analyze as run_analysis
        from dsguard.tenant import build_tenant, register

        known = Truth.load(truth)
        with tempfile.TemporaryDirectory(prefix="dsguard-eval-") as tmp:
            target = out or Path(tmp)
            with _progress(quiet or json_out) as progress:
                ctx = run_analysis(bundle, target, progress=progress)
            with EvidenceStore(target / DEFAULT_DB_NAME) as store:
                register(store.con, build_tenant(Snapshot(store.con)))
                scores = evaluate(store.con, ctx.alerts, known)
        if json_out:
            sys.stdout.write(dumps([s.as_dict() for s in scores]) + "\n")
            return
        con = console(quiet=quiet)
        rows = [
            (s.title, s.tp, s.fp, s.fn, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}")
            for s in scores
        ]
        con.print(
            table(
                "Message-level evaluation",
                ("detector", "tp", "fp", "fn", "precision", "recall", "f1"),
                rows,
            )
        )
        kinds = known.all_kinds
        krows = [(k, *(f"{s.kinds_found.get(k, 0)}" for s in scores)) for k in kinds]
        con.print(
            table(
                "Abuse messages found, by campaign kind", ("kind", *(s.name for s in scores)), krows
            )
        )

    _guard(body, debug=debug)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"dsguard {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Find, explain and govern Direct Send abuse in Microsoft 365."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
