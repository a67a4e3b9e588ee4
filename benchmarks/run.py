"""Benchmarks of ``dsguard analyze`` against the DuckDB floor and a pandas implementation.

Run by hand or in a separate CI job, never as unit tests:

    python benchmarks/run.py --rows 1000000 --rows 10000000 --work /tmp/dsguard-bench \\
        --repeat 3 --incremental-rows 1000000 --readme benchmarks/README.md

For each size: generate a synthetic bundle (``dsguard synth --rows N``), then, in separate
processes, measure the floor (``floor.py``: DuckDB reads every column of the same CSV once),
``dsguard analyze`` end to end (per-stage times from ``DSGUARD_PROFILE``) and the pandas
implementation (``pandas_detect.py``). Each measure is the median of ``--repeat`` runs;
wall time, rows per second and peak RSS of the whole process tree are recorded. The
incremental scenario analyses a month of daily files, adds one day and analyses again, and
compares the alerts with a full rerun of the same 31 days (and, with ``--daily-check``, the
single-file bundle with its daily split; with ``--collect-check``, with the same rows as the
JSON-lines files ``dsguard collect`` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from harness import Measure, dsguard, measure, python_script, write_results

from dsguard.collect.hunting import SliceRule

# The +1 day run is measured again after this many days of history instead of thirty.
SHORT_HISTORY_DAYS = 10
MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"


def median_measure(name: str, runs: list[Measure]) -> Measure:
    """The run with the median wall time (its RSS and extras travel with it)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    mid = ordered[len(ordered) // 2]
    mid.name = name
    mid.extra["runs_s"] = [round(m.seconds, 2) for m in runs]
    mid.extra["peak_rss_mb_max"] = round(max(m.peak_rss_mb for m in runs), 1)
    return mid


def synth(work: Path, rows: int, days: int = 30, reuse: bool = False) -> tuple[Path, Measure]:
    bundle = work / f"bundle-{rows}-{days}d"
    if reuse and (bundle / "email_events.csv").exists():
        return bundle, Measure("synth", 0.0, 0.0, rows=rows, extra={"reused": True})
    shutil.rmtree(bundle, ignore_errors=True)
    m, _ = measure(
        "synth",
        dsguard("synth", str(bundle), "--rows", str(rows), "--days", str(days), "--json", "-q"),
        rows=rows,
    )
    return bundle, m


def floor(csv: Path, rows: int, repeat: int, persist: Path | None = None) -> Measure:
    """The floor; with ``persist``, the cost of copying the CSV into a DuckDB file instead."""
    runs = []
    extra = ["--persist", str(persist)] if persist else []
    for _ in range(repeat):
        m, out = measure("floor", python_script("floor.py", str(csv), *extra), rows=rows)
        m.extra["query_s"] = json.loads(out)["seconds"]
        runs.append(m)
    name = "duckdb copy into a table" if persist else "duckdb floor (full-column scan)"
    return median_measure(name, runs)


def analyze(
    bundle: Path,
    out: Path,
    rows: int,
    *,
    memory_limit: str | None,
    engine: str = "duckdb",
    fresh: bool = True,
    name: str = "dsguard analyze",
) -> Measure:
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    profile = out.parent / f"{out.name}.profile.json"
    argv = dsguard("analyze", str(bundle), "--out", str(out), "--json")
    if memory_limit:
        argv += ["--memory-limit", memory_limit]
    if engine != "duckdb":
        argv += ["--engine", engine]
    m, stdout = measure(name, argv, rows=rows, env={"DSGUARD_PROFILE": str(profile)})
    summary = json.loads(stdout)
    m.extra["counts"] = summary.get("counts", {})
    if profile.exists():
        m.extra["profile"] = json.loads(profile.read_text())
    return m


def pandas_run(bundle: Path, rows: int, repeat: int, cap_mb: float | None) -> Measure:
    runs = []
    for _ in range(repeat):
        m, out = measure(
            "pandas", python_script("pandas_detect.py", str(bundle)), rows=rows, rss_cap_mb=cap_mb
        )
        if "killed_at_rss_cap_mb" in m.extra:
            return m  # no point repeating a run that cannot finish here
        m.extra.update(json.loads(out))
        runs.append(m)
    return median_measure("pandas implementation", runs)


def alerts_of(out: Path) -> list[dict[str, Any]]:
    path = out / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def same_alerts(a: Path, b: Path) -> bool:
    return alerts_of(a) == alerts_of(b)


def _link(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (the bundles are gigabytes)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _split_once(bundle: Path, daily: Path) -> Path:
    """``bundle`` as daily files in ``daily``, reused only when a previous split finished and
    is newer than the bundle (a split cut short, e.g. out of memory, is redone)."""
    from split_daily import split

    done = daily.with_name(daily.name + ".complete")  # beside, not inside, the bundle
    source = bundle / "email_events.csv"
    fresh = done.exists() and daily.is_dir()
    if fresh and (not source.exists() or done.stat().st_mtime >= source.stat().st_mtime):
        return daily
    done.unlink(missing_ok=True)
    shutil.rmtree(daily, ignore_errors=True)
    partial = daily.with_name(daily.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # The split is a second copy of the bundle (plus DuckDB's partition buffers): say so up
    # front rather than fail half-way with "No space left on device".
    needed = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) * 1.2
    daily.parent.mkdir(parents=True, exist_ok=True)  # a fresh work folder has none yet
    free = shutil.disk_usage(daily.parent).free
    if free < needed:
        raise SystemExit(
            f"splitting {bundle.name} needs about {needed / 2**30:.1f} GB in {daily.parent}; "
            f"{free / 2**30:.1f} GB free"
        )
    split(bundle, partial)
    partial.rename(daily)
    done.touch()
    return daily


def incremental(work: Path, rows: int, memory_limit: str | None) -> dict[str, Any]:
    """A month of daily files, then one more day: incremental run vs. full rerun."""

    per_day = rows // 30
    source, gen = synth(work, per_day * 31, days=31, reuse=True)
    root = work / f"incremental-{rows}"
    everything = _split_once(source, root / "all-days")
    last = sorted(p.name for p in everything.glob("email_events_*.csv"))[-1]
    last_day = last.removeprefix("email_events_").removesuffix(".csv")
    bundle = root / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)
    new_files = []
    for f in everything.rglob("*"):
        if f.is_dir():
            continue
        rel = f.relative_to(everything)
        if file_day(rel) == last_day:
            new_files.append(rel)
            continue
        _link(f, bundle / rel)
    out = root / "out-incremental"
    month = analyze(bundle, out, per_day * 30, memory_limit=memory_limit, name="analyze month")
    for rel in new_files:
        _link(everything / rel, bundle / rel)
    plus_day = analyze(
        bundle, out, per_day, memory_limit=memory_limit, fresh=False, name="analyze +1 day"
    )
    full = analyze(
        bundle,
        root / "out-full",
        per_day * 31,
        memory_limit=memory_limit,
        name="analyze 31 days from scratch",
    )
    result = {
        "rows_per_day": per_day,
        "generate": gen.as_dict(),
        "month": month.as_dict(),
        "plus_one_day": plus_day.as_dict(),
        "full_rerun": full.as_dict(),
        "same_alerts_as_full_rerun": same_alerts(out, root / "out-full"),
    }
    result["late"] = late_rows(everything, root, last_day, per_day, memory_limit)
    result["late"]["same_alerts_as_full_rerun"] = same_alerts(
        root / "out-late", root / "out-full"
    )
    result["short_history"] = short_history(everything, root, last_day, per_day, memory_limit)
    return result


def file_day(rel: Path) -> str | None:
    """The day a daily file holds (``email_events_2026-11-30.csv``,
    ``messages/20261130-000006-….eml``); ``None`` for the files every day shares."""
    if m := re.search(r"_(\d{4}-\d{2}-\d{2})\.", rel.name):
        return m.group(1)
    if m := re.match(r"(\d{4})(\d{2})(\d{2})-", rel.name):
        return f"{m[1]}-{m[2]}-{m[3]}"
    return None


def short_history(
    everything: Path,
    root: Path,
    last_day: str,
    per_day: int,
    memory_limit: str | None,
    days: int = SHORT_HISTORY_DAYS,
) -> dict[str, Any]:
    """The same new day added to the ``days`` days before it instead of the month.

    "Costs time proportional to the new day, not the month" is a claim about the slope: if
    the +1 day run took as long after ten days as after thirty, nothing in it would grow
    with the history. What does grow (whole-store aggregates) shows as the difference.
    """
    bundle = root / "bundle-short"
    shutil.rmtree(bundle, ignore_errors=True)
    first = (date.fromisoformat(last_day) - timedelta(days=days)).isoformat()
    held_back = []
    for f in everything.rglob("*"):
        if f.is_dir():
            continue
        rel = f.relative_to(everything)
        day = file_day(rel)
        if day == last_day:
            held_back.append(rel)
        elif day is None or first <= day < last_day:
            _link(f, bundle / rel)
    out = root / "out-short"
    history = analyze(
        bundle, out, per_day * days, memory_limit=memory_limit, name=f"analyze {days} days"
    )
    for rel in held_back:
        _link(everything / rel, bundle / rel)
    plus_day = analyze(
        bundle,
        out,
        per_day,
        memory_limit=memory_limit,
        fresh=False,
        name=f"analyze +1 day after {days} days",
    )
    return {"days": days, "history": history.as_dict(), "plus_one_day": plus_day.as_dict()}


def late_rows(
    everything: Path, root: Path, last_day: str, per_day: int, memory_limit: str | None
) -> dict[str, Any]:
    """The same month and day, exported by arrival time: the new day's file also holds
    half the messages of the month's last hour, which the month's file lacks. The incremental
    run rewinds to the month's last day instead of starting over; the rows are the same as
    the full rerun's, so the alerts must be too."""
    from split_daily import move_late_rows

    bundle = root / "bundle-late"
    shutil.rmtree(bundle, ignore_errors=True)
    days = sorted(p.name for p in everything.glob("email_events_*.csv"))
    earlier, later = everything / days[-2], everything / days[-1]
    rewritten = root / "late-files"
    moved = move_late_rows(earlier, later, rewritten, minutes=60)
    held_back = []
    for f in everything.rglob("*"):
        if f.is_dir():
            continue
        rel = f.relative_to(everything)
        source = rewritten / rel if f in (earlier, later) else f
        if file_day(rel) == last_day:
            held_back.append((source, rel))
            continue
        _link(source, bundle / rel)
    out = root / "out-late"
    month = analyze(bundle, out, per_day * 30, memory_limit=memory_limit, name="analyze month")
    for source, rel in held_back:
        _link(source, bundle / rel)
    plus_day = analyze(
        bundle,
        out,
        per_day + moved,
        memory_limit=memory_limit,
        fresh=False,
        name="analyze +1 day holding late rows",
    )
    features = plus_day.extra.get("profile", {}).get("features") or {}
    return {
        "moved_rows": moved,
        "month": month.as_dict(),
        "plus_one_day": plus_day.as_dict(),
        "mode": features.get("mode"),
        "reason": features.get("reason"),
    }


def daily_check(work: Path, bundle: Path, rows: int, memory_limit: str | None) -> dict[str, Any]:
    """The same bundle as one file and as daily files must give the same alerts."""

    daily = _split_once(bundle, work / f"daily-{rows}")
    single_out = work / f"out-{rows}"
    if not (single_out / "alerts.jsonl").exists():
        analyze(bundle, single_out, rows, memory_limit=memory_limit)
    daily_out = work / f"out-daily-{rows}"
    m = analyze(daily, daily_out, rows, memory_limit=memory_limit, name="analyze (daily files)")
    return {"measure": m.as_dict(), "same_alerts": same_alerts(single_out, daily_out)}


def collect_check(
    work: Path, bundle: Path, rows: int, memory_limit: str | None
) -> dict[str, Any]:
    """The same bundle as the JSON-lines slices ``collect`` writes must give the same alerts
    as the single CSV; written afresh each run (``split_collect.py``, about a minute at 10M)."""
    from split_collect import split

    shaped = work / f"collect-{rows}"
    files = split(bundle, shaped, SliceRule().row_cap)
    single_out = work / f"out-{rows}"
    if not (single_out / "alerts.jsonl").exists():
        analyze(bundle, single_out, rows, memory_limit=memory_limit)
    out = work / f"out-collect-{rows}"
    m = analyze(shaped, out, rows, memory_limit=memory_limit, name="analyze (collect's files)")
    shutil.rmtree(shaped, ignore_errors=True)
    return {"measure": m.as_dict(), "files": files, "same_alerts": same_alerts(single_out, out)}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    import duckdb

    return {
        "python": sys.version.split()[0],
        "duckdb": duckdb.__version__,
        # pandas 3 reads strings as Arrow strings by default: the comparison moves with it.
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------- report
def fmt_s(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def fmt_rate(m: dict[str, Any]) -> str:
    r = m.get("rows_per_second")
    return "–" if not r else f"{r / 1000:,.0f}k/s"


def table(results: dict[str, Any]) -> str:
    lines = [
        "| rows | step | wall | rows/s | peak RSS | ratio |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for size in results["sizes"]:
        n = f"{size['rows'] / 1e6:g}M"
        fl, an, pd_ = size["floor"], size["analyze"], size.get("pandas")
        rows = []
        if not size["synth"].get("extra", {}).get("reused"):  # a reused bundle was not timed
            rows.append(("generate (`dsguard synth`)", size["synth"], ""))
        rows.append(("DuckDB full-column scan (floor)", fl, "1.0× floor"))
        if size.get("copy"):
            cp = size["copy"]
            rows.append(
                (
                    "DuckDB copies every column into a table (no normalising)",
                    cp,
                    f"{cp['seconds'] / fl['seconds']:.1f}× floor",
                )
            )
        rows.append(
            ("`dsguard analyze` end to end", an, f"{an['seconds'] / fl['seconds']:.1f}× floor")
        )
        prof = an.get("extra", {}).get("profile", {})
        for stage, secs in prof.get("timings", {}).items():
            lines_extra = f"{secs / fl['seconds']:.1f}× floor"
            rows.append((f"  stage `{stage}`", {"seconds": secs}, lines_extra))
        if pd_ and pd_.get("extra", {}).get("killed_at_rss_cap_mb"):
            cap = pd_["extra"]["killed_at_rss_cap_mb"]
            rows.append(
                (
                    f"pandas implementation (killed above {cap:,.0f} MB RSS)",
                    {**pd_, "seconds": None, "rows_per_second": None},
                    f"did not finish; analyze peaks at {an['peak_rss_mb']:,.0f} MB",
                )
            )
        elif pd_:
            rows.append(
                (
                    "pandas implementation",
                    pd_,
                    f"analyze is {pd_['seconds'] / an['seconds']:.1f}× faster",
                )
            )
        if size.get("daily"):
            d = size["daily"]
            same = "same alerts" if d["same_alerts"] else "**different alerts**"
            rows.append(("`dsguard analyze`, same rows as 30 daily files", d["measure"], same))
        if size.get("collect"):
            c = size["collect"]
            same = "same alerts" if c["same_alerts"] else "**different alerts**"
            label = f"`dsguard analyze`, same rows as collect's JSON lines ({c['files']:,} files)"
            rows.append((label, c["measure"], same))
        if size.get("spark"):
            sp = size["spark"]
            rows.append(
                (
                    "`analyze --engine spark` (local[2])",
                    sp,
                    f"{sp['seconds'] / fl['seconds']:.1f}× floor",
                )
            )
        for label, m, ratio in rows:
            rss = m.get("peak_rss_mb")
            lines.append(
                f"| {n} | {label} | {fmt_s(m.get('seconds'))} | {fmt_rate(m)} | "
                f"{'–' if not rss else f'{rss:,.0f} MB'} | {ratio} |"
            )
    inc = results.get("incremental")
    if inc:
        n = f"{round(inc['rows_per_day'] * 30 / 1e6, 1):g}M + 1 day"
        full = inc["full_rerun"]["seconds"]
        for label, key in (
            ("analyze the month (30 daily files)", "month"),
            ("analyze again with one more day", "plus_one_day"),
            ("analyze the 31 days from scratch", "full_rerun"),
        ):
            m = inc[key]
            ratio = "" if key != "plus_one_day" else f"{m['seconds'] / full:.2f}× full rerun"
            lines.append(
                f"| {n} | {label} | {fmt_s(m['seconds'])} | {fmt_rate(m)} | "
                f"{m['peak_rss_mb']:,.0f} MB | {ratio} |"
            )
        late = inc.get("late")
        if late:
            m = late["plus_one_day"]
            same = "same alerts" if late.get("same_alerts_as_full_rerun") else "ALERTS DIFFER"
            lines.append(
                f"| {n} | again, the day's file holding {late['moved_rows']:,} rows of the "
                f"month's last hour (an export by arrival time) | {fmt_s(m['seconds'])} | "
                f"{fmt_rate(m)} | {m['peak_rss_mb']:,.0f} MB | "
                f"{m['seconds'] / full:.2f}× full rerun, {same} |"
            )
        short = inc.get("short_history")
        if short:
            m = short["plus_one_day"]
            month_day = inc["plus_one_day"]["seconds"]
            lines.append(
                f"| {n} | the same day added to {short['days']} days instead of 30 | "
                f"{fmt_s(m['seconds'])} | {fmt_rate(m)} | {m['peak_rss_mb']:,.0f} MB | "
                f"after 30 days {month_day / m['seconds']:.2f}× this |"
            )
    return "\n".join(lines)


def _separate_run(results: dict[str, Any]) -> str:
    """A note when the incremental rows come from another run than the sizes (``merge``)."""
    inc_machine = (results.get("incremental") or {}).get("machine")
    if not inc_machine or inc_machine.get("when") == results["machine"]["when"]:
        return ""
    return (
        f". The “+ 1 day” rows come from a separate run (the second command), measured "
        f"{inc_machine['when']}: compare them with each other, not with the rows above"
    )


def update_readme(readme: Path, results: dict[str, Any], command: str) -> None:
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    m = results["machine"]
    body = (
        f"{MARK_START}\n"
        f"Measured {m['when']} on {m['cpus']} CPUs, {m['memory_gb']} GB RAM, "
        f"Python {m['python']}, DuckDB {m['duckdb']}, pandas {m.get('pandas', '?')} "
        f"(pyarrow {m.get('pyarrow', '?')}); median of "
        f"{results['repeat']} runs below 5M rows, {results['repeat_large']} above; "
        f"DuckDB memory limit {results['memory_limit']}. Single timings on a machine like "
        f"this vary by ±20% from run to run, so compare ratios within one run"
        f"{_separate_run(results)}:\n\n"
        f"```\n{command}\n```\n\n{table(results)}\n{MARK_END}"
    )
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + body + tail
    else:
        text = text + "\n" + body + "\n"
    readme.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", default=[])
    ap.add_argument("--work", type=Path, default=Path("/tmp/dsguard-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--repeat-large", type=int, default=1, help="repeats for sizes of 5M rows and more"
    )
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument(
        "--pandas-rss-cap-mb",
        type=float,
        default=12000,
        help="kill the pandas run beyond this resident size (shared machines)",
    )
    ap.add_argument("--spark-rows", type=int, default=None, help="also time --engine spark")
    ap.add_argument("--incremental-rows", type=int, default=None)
    ap.add_argument("--daily-check", action="store_true")
    ap.add_argument(
        "--collect-check", action="store_true", help="also analyse the rows as collect's files"
    )
    ap.add_argument("--reuse", action="store_true", help="reuse generated bundles")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results.json")
    ap.add_argument("--readme", type=Path, default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {
        "machine": machine(),
        "repeat": args.repeat,
        "repeat_large": args.repeat_large,
        "memory_limit": args.memory_limit,
        "command": command,
        "sizes": [],
    }
    for rows in args.rows:
        repeat = args.repeat if rows < 5_000_000 else args.repeat_large
        bundle, gen = synth(args.work, rows, reuse=args.reuse)
        size: dict[str, Any] = {"rows": rows, "repeat": repeat, "synth": gen.as_dict()}
        print(f"[{rows}] synth {gen.seconds:.1f}s", flush=True)
        size["floor"] = floor(bundle / "email_events.csv", rows, repeat).as_dict()
        print(f"[{rows}] floor {size['floor']['seconds']:.1f}s", flush=True)
        size["copy"] = floor(
            bundle / "email_events.csv", rows, repeat, persist=args.work / "copy.duckdb"
        ).as_dict()
        print(f"[{rows}] copy into a table {size['copy']['seconds']:.1f}s", flush=True)
        runs = [
            analyze(bundle, args.work / f"out-{rows}", rows, memory_limit=args.memory_limit)
            for _ in range(repeat)
        ]
        size["analyze"] = median_measure("dsguard analyze", runs).as_dict()
        print(f"[{rows}] analyze {size['analyze']['seconds']:.1f}s", flush=True)
        if not args.skip_pandas:
            size["pandas"] = pandas_run(bundle, rows, repeat, args.pandas_rss_cap_mb).as_dict()
            print(f"[{rows}] pandas {size['pandas']['seconds']:.1f}s", flush=True)
        if args.spark_rows == rows:
            size["spark"] = analyze(
                bundle,
                args.work / f"out-spark-{rows}",
                rows,
                memory_limit=args.memory_limit,
                engine="spark",
                name="dsguard analyze --engine spark",
            ).as_dict()
            print(f"[{rows}] spark {size['spark']['seconds']:.1f}s", flush=True)
        if args.daily_check:
            size["daily"] = daily_check(args.work, bundle, rows, args.memory_limit)
            print(f"[{rows}] daily files same alerts: {size['daily']['same_alerts']}", flush=True)
        if args.collect_check:
            size["collect"] = collect_check(args.work, bundle, rows, args.memory_limit)
            print(f"[{rows}] collect's files same alerts: {size['collect']['same_alerts']}",
                  flush=True)
        results["sizes"].append(size)
        write_results(args.results, results)
    if args.incremental_rows:
        results["incremental"] = incremental(args.work, args.incremental_rows, args.memory_limit)
        inc = results["incremental"]
        print(
            f"[incremental] +1 day {inc['plus_one_day']['seconds']:.1f}s, full "
            f"{inc['full_rerun']['seconds']:.1f}s, same alerts: "
            f"{inc['same_alerts_as_full_rerun']}",
            flush=True,
        )
    write_results(args.results, results)
    print(table(results))
    if args.readme:
        update_readme(args.readme, results, command)


def merge(parts: list[Path], target: Path) -> dict[str, Any]:
    """Results of several runs of this script as one (sizes in order, the last incremental)."""
    merged: dict[str, Any] = {}
    for p in parts:
        r = json.loads(p.read_text())
        if not merged:
            merged = {**r, "sizes": []}
        merged["sizes"] += r.get("sizes", [])
        if r.get("incremental"):
            # Ratios are only compared within a run: keep where and when this part ran.
            merged["incremental"] = {**r["incremental"], "machine": r["machine"]}
        merged["command"] = merged.get("command", "") + (
            "" if merged.get("command") == r["command"] else "\n" + r["command"]
        )
    write_results(target, merged)
    return merged


if __name__ == "__main__":
    main()
