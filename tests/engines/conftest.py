"""A small synthetic tenant written as daily files, so a test can analyse "the period so
far" and then "one more day" (the layout a scheduled export leaves behind); and whether
Spark can run here."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dsguard.synth import SynthConfig, generate

DAYS = 10
CONFIG = SynthConfig(users=40, days=DAYS, seed=5)

# One JVM serves every Spark test of a run (``getOrCreate``), with the engine's default 2 GB
# driver. Its heap used to grow by Spark's UI history with each job (1,068, 1,167 and
# 1,253 MB after a requested GC over the three parity jobs) until a broadcast ran out of room
# in CI; the session now keeps little of it (``LITTLE_HISTORY``).


def _spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return False
    return bool(shutil.which("java") or os.environ.get("JAVA_HOME"))


needs_spark = pytest.mark.skipif(not _spark_available(), reason="pyspark and Java are needed")


def split_daily(bundle: Path, out: Path) -> list[str]:
    """Write ``bundle`` as daily files into ``out``; return the days, in order."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in bundle.iterdir():
        if entry.name in ("email_events.csv", "message_trace.csv", "signins.json", "messages"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, out / entry.name)
        else:
            shutil.copy2(entry, out / entry.name)
    con = duckdb.connect()
    src = str(bundle / "email_events.csv")
    days = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT substr(Timestamp, 1, 10) d FROM read_csv(?, all_varchar=true) "
            "ORDER BY d",
            [src],
        ).fetchall()
    ]
    for d in days:
        con.execute(
            f"""COPY (SELECT * FROM read_csv(?, all_varchar=true)
                      WHERE substr(Timestamp, 1, 10) = ?)
                TO '{out / f"email_events_{d}.csv"}' (HEADER, QUOTE '"', ESCAPE '"')""",
            [src, d],
        )
    pages: dict[str, list[Any]] = defaultdict(list)
    with (bundle / "signins.json").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                for row in json.loads(line).get("value", []):
                    pages[row["createdDateTime"][:10]].append(row)
    for d, rows in pages.items():
        (out / f"signins_{d}.json").write_text(json.dumps({"value": rows}), encoding="utf-8")
    (out / "messages").mkdir()
    for f in (bundle / "messages").iterdir():
        shutil.copy2(f, out / "messages" / f.name)
    return days


@pytest.fixture(scope="session")
def daily(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """(folder of daily files, days) for one small tenant."""
    root = tmp_path_factory.mktemp("daily")
    generate(root / "bundle", CONFIG)
    days = split_daily(root / "bundle", root / "all")
    return root / "all", days


@pytest.fixture
def add_days() -> Callable[[Path, Path, str], Path]:
    """``bundle_until`` for tests: copy daily files up to a day into a bundle folder."""
    return bundle_until


DAY_SUFFIX = re.compile(r"_(\d{4}-\d{2}-\d{2})$")
DAY_PREFIX = re.compile(r"^(\d{4})(\d{2})(\d{2})-")


def day_of(path: Path) -> str | None:
    """The day a daily file or a raw message belongs to, or None for configuration."""
    if m := DAY_SUFFIX.search(path.stem):
        return m.group(1)
    if path.parent.name == "messages" and (m := DAY_PREFIX.match(path.name)):
        return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    return None


def bundle_until(all_days: Path, target: Path, last: str) -> Path:
    """Add to ``target`` the files of ``all_days`` up to and including day ``last``
    (configuration always); files already there are left untouched."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(all_days.rglob("*")):
        if entry.is_dir():
            continue
        day = day_of(entry)
        if day is not None and day > last:
            continue
        dest = target / entry.relative_to(all_days)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry, dest)
    return target
