"""The command line as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dsguard.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("dsguard ")


def test_python_dash_m_dsguard_is_the_same_command() -> None:
    """``python -m dsguard`` works where the script is not on PATH, and names itself right."""
    proc = subprocess.run(
        [sys.executable, "-m", "dsguard", "analyze", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: dsguard analyze" in proc.stdout
    bare = subprocess.run(
        [sys.executable, "-m", "dsguard"], capture_output=True, text=True, timeout=300
    )
    assert "Usage: dsguard " in bare.stdout + bare.stderr


@pytest.mark.parametrize(
    "content",
    [
        {"notes.txt": b"hello", "random.bin": bytes(range(256))},  # no telemetry at all
        {"email_events.csv": bytes(range(256)) * 40},  # binary garbage named as telemetry
        {"email_events.json": b"{not json at all"},
        {"email_events.csv": b"a;b;c\n1;2;3\n"},  # a CSV, but not EmailEvents
    ],
)
def test_garbage_bundle_exits_2_with_one_line(tmp_path: Path, content: dict[str, bytes]) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name, data in content.items():
        (bundle / name).write_bytes(data)
    proc = run("analyze", str(bundle), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("dsguard: error:") and "\n" not in err
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_bundle_and_bad_option_exit_2(tmp_path: Path) -> None:
    assert run("analyze", str(tmp_path / "nope"), cwd=tmp_path).returncode == 2
    assert not (tmp_path / "dsguard-out").exists()
    proc = run("analyze", str(tmp_path), "--fail-on", "catastrophic", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run("analyze", str(tmp_path), "--debug", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def _small_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    src = FIXTURES / "email_events"
    (bundle / "email_events.csv").write_bytes((src / "email_events_defender.csv").read_bytes())
    return bundle


def test_a_memory_limit_too_small_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    proc = run(
        "analyze", str(_small_bundle(tmp_path)), "--out", str(tmp_path / "out"),
        "--memory-limit", "256KB",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "rerun with a larger --memory-limit" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_spill_folder_out_of_room_is_one_line_about_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB caps its spill folder by the free space of its drive; a drive that is nearly
    full hits that cap, which DuckDB words as "Out of Memory". The advice must be the disk."""
    from typer.testing import CliRunner

    from dsguard.cli import app
    from dsguard.evidence.store import EvidenceStore

    bundle = tmp_path / "bundle"
    assert run("synth", str(bundle), "--rows", "20000", "--days", "3", "-q").returncode == 0
    opened = EvidenceStore.__init__

    def nearly_full(self: EvidenceStore, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        self.con.execute("SET max_temp_directory_size = '512KB'")

    monkeypatch.setattr(EvidenceStore, "__init__", nearly_full)
    result = CliRunner().invoke(
        app, ["analyze", str(bundle), "--out", str(tmp_path / "out"), "--memory-limit", "32MB"]
    )
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("dsguard: error: a disk dsguard writes to is full"), err
    assert "failed to offload" in err and "\n" not in err and "cannot read" not in err


def test_ctrl_c_during_a_query_is_interrupted_not_an_internal_error(tmp_path: Path) -> None:
    import signal
    import time

    bundle = tmp_path / "bundle"
    assert run("synth", str(bundle), "--rows", "20000", "--days", "3", "-q").returncode == 0
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsguard.cli", "analyze", str(bundle), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "evidence.duckdb").exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "dsguard: interrupted"


def test_interrupted_knows_duckdbs_words() -> None:
    """DuckDB's Python client turns Ctrl-C inside a query into ``RuntimeError("Query
    interrupted")`` (seen by hand: SIGINT during a long query); ``con.interrupt()`` raises
    its own exception. Both, and only they, are an interruption."""
    import duckdb

    from dsguard.evidence.duck import interrupted

    assert interrupted(RuntimeError("Query interrupted"))
    assert interrupted(duckdb.InterruptException("INTERRUPT Error: Interrupted!"))
    assert interrupted(KeyboardInterrupt())
    assert not interrupted(RuntimeError("something else"))
    assert not interrupted(duckdb.ConversionException("Query interrupted"))


def test_a_statement_failing_inside_ingest_names_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed statement aborts DuckDB's transaction; the clean-up after it must not replace
    the failure with "Current transaction is aborted"."""
    from typer.testing import CliRunner

    from dsguard.cli import app
    from dsguard.sources.emailevents import EmailEventsReader

    normalise = EmailEventsReader.normalise_sql
    failing = normalise.replace("v_id AS", "error('the real failure') AS", 1)
    assert failing != normalise
    monkeypatch.setattr(EmailEventsReader, "normalise_sql", failing)
    result = CliRunner().invoke(
        app, ["analyze", str(_small_bundle(tmp_path)), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert "the real failure" in result.stderr and "aborted" not in result.stderr


def test_out_of_room_reads_duckdb_words() -> None:
    import errno

    import duckdb

    from dsguard.evidence.store import OUT_OF_DISK, OUT_OF_MEMORY, out_of_room

    full = 'IO Error: Could not write file "/mnt/x/evidence.duckdb": No space left on device'
    assert out_of_room(duckdb.IOException(full)) == OUT_OF_DISK
    memory = "Out of Memory Error: could not allocate block of size 256.0 KiB (15.0 MiB used)"
    assert out_of_room(duckdb.OutOfMemoryException(memory)) == OUT_OF_MEMORY
    assert out_of_room(duckdb.ConversionException("Could not convert string 'x'")) is None
    assert out_of_room(ValueError("No space left on device")) is None  # not DuckDB's
    assert out_of_room(OSError(errno.ENOSPC, "No space left on device")) == OUT_OF_DISK
    assert out_of_room(OSError(errno.EACCES, "Permission denied")) is None


def test_analyze_small_bundle_writes_outputs_and_accounts_rows(tmp_path: Path) -> None:
    bundle = _small_bundle(tmp_path)
    out = tmp_path / "out"
    proc = run("analyze", str(bundle), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    for name in ("ingest.json", "quarantine.jsonl", "alerts.jsonl", "findings.jsonl",
                 "paths.json", "simulation.json", "plan.md"):
        assert (out / name).is_file(), name
    ingest = json.loads((out / "ingest.json").read_text())
    t = ingest["totals"]
    assert t["read"] == t["loaded"] + t["duplicates"] + t["rejected"] and t["balanced"]
    assert summary["counts"]["rows_read"] == t["read"]
    # Idempotent: a second run loads nothing new and says the file is unchanged.
    again = run("analyze", str(bundle), "--out", str(out), "--json")
    files = json.loads(again.stdout)["files"]
    assert all(f["skipped"] and f["loaded"] == 0 for f in files)


@pytest.mark.parametrize("command", ["analyze", "ingest"])
def test_threads_and_memory_limit_reach_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``--threads`` and ``--memory-limit`` bound what a run takes from a shared machine; the
    store's connection must run with them (read back from DuckDB, not from our arguments)."""
    from typer.testing import CliRunner

    from dsguard.cli import app
    from dsguard.evidence.store import EvidenceStore

    seen: list[tuple[str, str]] = []
    opened = EvidenceStore.__init__

    def spy(self: EvidenceStore, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        seen.append(
            self.con.execute(
                "SELECT current_setting('threads'), current_setting('memory_limit')"
            ).fetchone()
        )

    monkeypatch.setattr(EvidenceStore, "__init__", spy)
    where = ["--out", str(tmp_path / "out")] if command == "analyze" else [
        "--db", str(tmp_path / "store.duckdb")
    ]
    result = CliRunner().invoke(
        app,
        [command, str(_small_bundle(tmp_path)), *where, "--threads", "1",
         "--memory-limit", "300MB", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen and all(str(t) == "1" and str(m).startswith("286.1 MiB") for t, m in seen), seen


def test_threads_below_one_is_a_usage_error(tmp_path: Path) -> None:
    proc = run("analyze", str(_small_bundle(tmp_path)), "--out", str(tmp_path / "o"),
               "--threads", "0")  # fmt: skip
    assert proc.returncode == 2
    assert "--threads" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("env", "expected"), [(None, "local[1]"), ("local[3]", None)]
)
def test_threads_bound_a_local_spark_unless_a_master_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str | None
) -> None:
    pytest.importorskip("sqlglot")
    from dsguard.engines import spark
    from dsguard.pipeline import analyze

    class Reached(Exception):
        pass

    masters: list[str | None] = []

    def detect(*args: Any, master: str | None = None, **kwargs: Any) -> list[Any]:
        masters.append(master)
        raise Reached

    monkeypatch.setattr(spark, "detect_with_spark", detect)
    if env is None:
        monkeypatch.delenv("DSGUARD_SPARK_MASTER", raising=False)
    else:
        monkeypatch.setenv("DSGUARD_SPARK_MASTER", env)  # session() reads it itself
    with pytest.raises(Reached):
        analyze(_small_bundle(tmp_path), tmp_path / "out", engine="spark", threads=1)
    assert masters == [expected]


def test_a_month_of_daily_files_folds_into_one_row_per_source_and_status() -> None:
    """Thirty daily exports (or a folder of .eml) would bury the files that need a look: the
    unremarkable ones of a source fold into one row with summed counts; a file with an error,
    a rejected row or a warning keeps its own row, and so does a source with few files."""
    from dsguard.cli import FOLD_FILES, ingest_rows
    from dsguard.evidence.model import FileReport

    days = [f"email_events_2026-11-{d:02d}.csv" for d in range(1, 31)]
    files = [FileReport(file=days[0], source="email_events", read=10, loaded=10)]
    files += [FileReport(file="tenant.json", source="exchange_config", read=3, loaded=3)]
    files += [
        FileReport(file=name, source="email_events", read=10, loaded=9, duplicates=1)
        for name in days[1:14]
    ]
    files += [FileReport(file=days[14], source="email_events", read=10, loaded=8, rejected=2)]
    files += [FileReport(file=days[15], source="email_events", error="bad", read=0)]
    files += [FileReport(file=days[16], source="email_events", warnings=["zoneless"])]
    files += [
        FileReport(file=name, source="email_events", read=5, skipped=True) for name in days[17:]
    ]
    rows = ingest_rows(files)
    assert rows[0] == (
        "email_events", f"14 files: {days[0]} … {days[13]}", 140, 127, 13, 0, "ok"
    )
    assert rows[1] == ("exchange_config", "tenant.json", 3, 3, 0, 0, "ok")
    assert [r[1] for r in rows[2:5]] == days[14:17]
    assert [r[6] for r in rows[2:5]] == ["ok", "error", "ok"]
    # Thirteen unchanged files: more than the fold, so one row of their own status.
    assert len(days[17:]) > FOLD_FILES
    assert rows[5] == ("email_events", f"13 files: {days[17]} … {days[29]}", 65, 0, 0, 0,
                       "unchanged")
    assert len(rows) == 6
    # At or below the fold every file is listed.
    few = files[:1] + files[2:2 + FOLD_FILES - 1]
    assert [r[1] for r in ingest_rows(few)] == [f.file for f in few]
