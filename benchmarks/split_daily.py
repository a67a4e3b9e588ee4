"""Split a synthetic bundle into daily files, the layout a scheduled export leaves behind.

    python benchmarks/split_daily.py BUNDLE OUT [--until 2026-11-30]

``OUT`` gets ``email_events_<day>.csv``, ``message_trace_<day>.csv``,
``signins_<day>.json`` and the raw messages of each day; configuration files are copied.
With ``--until`` only days up to and including that date are written, so the same bundle can
be written as "a month" and, later, "the month and one more day". Values are copied as text,
never re-parsed, so the daily files hold exactly the rows of the original.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb

TELEMETRY = ("email_events.csv", "message_trace.csv")
SKIP = {"email_events.csv", "message_trace.csv", "signins.json", "truth.json"}


def split_csv(con: duckdb.DuckDBPyConnection, src: Path, out: Path, until: str | None) -> None:
    """One CSV per day of the file's time column, in one pass (DuckDB ``PARTITION_BY``)."""
    cols = con.read_csv(str(src), all_varchar=True).columns
    tcol = next(
        (c for c in cols if c.lower() in ("timestamp", "received", "origin_timestamp")), cols[0]
    )
    sample = con.execute(
        f'SELECT any_value("{tcol}") FROM read_csv(?, all_varchar=true)', [str(src)]
    ).fetchone()
    day = f'substr("{tcol}", 1, 10)'
    if sample and sample[0] and "/" in sample[0]:
        day = f"""strftime(strptime(split_part("{tcol}", ' ', 1), '%m/%d/%Y'), '%Y-%m-%d')"""
    parts = out / f"_{src.stem}_parts"
    shutil.rmtree(parts, ignore_errors=True)
    keep = "" if until is None else f"WHERE {day} <= '{until}'"
    con.execute(
        f"""COPY (SELECT *, {day} AS _day FROM read_csv(?, all_varchar=true) {keep})
            TO '{parts}' (FORMAT csv, HEADER, QUOTE '"', ESCAPE '"', PARTITION_BY (_day))""",
        [str(src)],
    )
    for folder in sorted(parts.glob("_day=*")):
        d = folder.name.removeprefix("_day=")
        files = sorted(folder.glob("*.csv"))
        target = out / f"{src.stem}_{d}.csv"
        if len(files) == 1:
            files[0].rename(target)
        else:  # several writer threads: concatenate, keeping one header
            with target.open("wb") as dst:
                for i, f in enumerate(files):
                    with f.open("rb") as fh:
                        if i:
                            fh.readline()
                        shutil.copyfileobj(fh, dst)
    shutil.rmtree(parts, ignore_errors=True)


def split_signins(src: Path, out: Path, until: str | None) -> None:
    """Graph sign-in pages (one JSON document a line) regrouped into one page per day."""
    by_day: dict[str, list[Any]] = defaultdict(list)
    head: dict[str, Any] = {}
    with src.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = json.loads(line)
            head = {k: v for k, v in doc.items() if k == "@odata.context"}
            for row in doc.get("value", []):
                by_day[str(row.get("createdDateTime", ""))[:10]].append(row)
    for d, rows in sorted(by_day.items()):
        if until and d > until:
            continue
        (out / f"signins_{d}.json").write_text(
            json.dumps({**head, "value": rows}) + "\n", encoding="utf-8"
        )


def split(bundle: Path, out: Path, until: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    # Writing thirty files at once keeps a buffer per open file; DuckDB's default share of
    # RAM is not always left on a shared machine, so ask for a fixed amount.
    con.execute("SET memory_limit = '4GB'")
    for entry in bundle.iterdir():
        if entry.name in SKIP or entry.name == "messages":
            continue
        target = out / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target)
    for name in TELEMETRY:
        if (bundle / name).exists():
            split_csv(con, bundle / name, out, until)
    if (bundle / "signins.json").exists():
        split_signins(bundle / "signins.json", out, until)
    msgs = bundle / "messages"
    if msgs.is_dir():
        (out / "messages").mkdir(exist_ok=True)
        for f in msgs.iterdir():
            d = f"{f.name[:4]}-{f.name[4:6]}-{f.name[6:8]}"
            if not until or d <= until:
                shutil.copy2(f, out / "messages" / f.name)
    if (bundle / "truth.json").exists():
        shutil.copy2(bundle / "truth.json", out / "truth.json")


def move_late_rows(earlier: Path, later: Path, out: Path, minutes: int) -> int:
    """Write ``earlier`` and ``later`` (two days' EmailEvents files) into ``out`` as an export
    by arrival time leaves them: every other message of ``earlier``'s last ``minutes`` was
    ingested after midnight, so it sits in ``later``'s file, behind rows of the same minutes
    that stayed. Returns how many rows moved."""
    con = duckdb.connect()
    rel = "read_csv(?, all_varchar = true)"
    (last,) = con.execute(f"SELECT max(Timestamp) FROM {rel}", [str(earlier)]).fetchone() or ("",)
    day = str(last)[:10]
    cut = f"{day}T{(24 * 60 - minutes) // 60:02d}:{(24 * 60 - minutes) % 60:02d}"
    late = "Timestamp >= ? AND hash(NetworkMessageId) % 2 = 0"
    opts = "(FORMAT csv, HEADER, QUOTE '\"', ESCAPE '\"')"
    out.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT * FROM {rel} WHERE NOT ({late})) TO '{out / earlier.name}' {opts}",
        [str(earlier), cut],
    )
    con.execute(
        f"""COPY (SELECT * FROM {rel} WHERE {late} UNION ALL SELECT * FROM {rel})
            TO '{out / later.name}' {opts}""",
        [str(earlier), cut, str(later)],
    )
    row = con.execute(f"SELECT count(*) FROM {rel} WHERE {late}", [str(earlier), cut]).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--until", default=None, help="last day to write (YYYY-MM-DD)")
    args = ap.parse_args()
    split(args.bundle, args.out, args.until)


if __name__ == "__main__":
    main()
