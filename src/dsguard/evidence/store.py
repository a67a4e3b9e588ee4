"""The DuckDB evidence store: one file holding the normalised snapshot of a bundle.

Ingest is one transaction for the whole bundle: a killed ingest leaves the store as it was.
Every staged row is accounted for: ``read = loaded + duplicates + rejected`` per file, and the
rejected rows are kept in ``quarantine`` with the reason.

Every change to an evidence table is also written to ``ingest_changes`` (table, insert or
delete, rows, time range), so the detect stage can tell "one more day arrived" from "history
changed" and extend its baselines instead of recomputing them.

Memory is bounded on purpose: DuckDB spills to ``<store>.tmp`` beyond ``memory_limit``
(``DEFAULT_MEMORY_LIMIT`` unless the caller sets one), so ten million rows fit on a laptop.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from blake3 import blake3

from dsguard import __version__
from dsguard.evidence import parts
from dsguard.evidence.duck import arrow_rows, connect, registered, side_settings
from dsguard.evidence.model import RECORD_TYPES, FileReport, Record
from dsguard.evidence.schema import all_ddl, columns
from dsguard.sources.base import Reader, SourceError, StageResult, rejected_apart

# Bump when a reader's output for the same file changes, so unchanged files are re-read.
SCHEMA_VERSION = "1"
STAGE = "_stage"
# DuckDB's working memory when the caller sets none; it spills to disk beyond it. Sized so a
# whole analysis stays under 2 GB of resident memory (Python, Arrow and DuckDB together).
DEFAULT_MEMORY_LIMIT = "1GB"
# Evidence tables whose changes are journalled, with their event-time column.
JOURNALLED: dict[str, str] = {"messages": "ts", "signins": "ts", "raw_messages": "date"}

CHANGES_DDL = """CREATE TABLE IF NOT EXISTS ingest_changes (
    seq BIGINT, tbl VARCHAR, op VARCHAR, rows BIGINT, min_ts TIMESTAMPTZ, max_ts TIMESTAMPTZ)"""
# (size, mtime, inode) of each file whose fingerprint was computed: an unchanged file is not
# hashed again, which would cost a read of the whole month on every daily run.
STAT_DDL = """CREATE TABLE IF NOT EXISTS ingest_stat (
    file VARCHAR, source VARCHAR, size BIGINT, mtime_ns BIGINT, inode BIGINT,
    fingerprint VARCHAR)"""

Progress = Callable[[str, int, int], None]
# Files at least this large are hashed while they are staged (``_fingerprint``).
# How DuckDB says a step ran out of room: disk for the store or its spill folder (a full
# drive, or the spill cap DuckDB derives from the free space), or memory it could not spill.
_NO_DISK = re.compile(
    r"No space left on device|Disk quota exceeded|failed to offload|max_temp_directory_size"
)
_NO_MEMORY = re.compile(r"Out of Memory Error|could not allocate block|failed to (pin|allocate) ")
OUT_OF_DISK = (
    "a disk dsguard writes to is full (the evidence store's, where DuckDB also spills into a "
    "folder named after the store plus .tmp, or --out's); free space, or choose another --out "
    "(or --db)"
)
OUT_OF_MEMORY = (
    "DuckDB needed more memory than its limit allows for one step, and that step could not "
    "spill to disk; rerun with a larger --memory-limit (for example 2GB)"
)
HASH_WHILE_STAGING_BYTES = 64 << 20
# How a new store fingerprints files (``fingerprint``); a store records the one it uses.
FINGERPRINT = "blake3"
_HASHES: dict[str, Callable[[bytes], Any]] = {"blake3": blake3, "sha256": hashlib.sha256}
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsguard-hash")
# Consecutive files of one appending reader are de-duplicated together, up to this many rows
# (``_Batch``): one probe of the stored keys per batch instead of one per file. A batch of
# small files waits in the database aside, uncompressed (about 1.1 KB a row of EmailEvents):
# at 10M rows in 1,000 files, batches of 250,000 rows peaked at 1,666 MiB against 1,969 MiB
# with 500,000, and the 40 probes cost no more than 20 did (benchmarks/HISTORY.md).
BATCH_ROWS = 250_000
# ... or this many staged files: each keeps a table of its own until the check, which reads
# them in one statement (a folder of one-row files must not become one statement per file).
BATCH_FILES = 256
# Staged winners are copied into the store in inserts of up to this many rows (one insert per
# file of ``collect``'s ten thousand rows ran on one core, 63 ms each). Under DuckDB's row group
# (122,880 rows): DuckDB writes a larger insert to the file ahead of the commit, which took
# longer in all, the commit included, and left the file half as large again
# (benchmarks/HISTORY.md).
COPY_ROWS = 100_000
# Files smaller than this, of an appending reader, are staged in a database of their own
# (``EvidenceStore._aside``) and only their winning rows enter the store. A stage table in the
# store's transaction keeps its memory until the commit even once dropped, and one under a
# row group is never written out: the 1,000 files ``collect`` writes for ten million rows
# left 11 GB of dead stage rows spilling to disk. Larger files fill row groups, which DuckDB
# writes to the store file as they come (and the first one into an empty table becomes it).
STAGE_ASIDE_BYTES = 64 << 20


class StoreError(Exception):
    """The store cannot be opened or written (locked, corrupt, wrong version)."""


@dataclass
class _Pending:
    """A file whose valid rows wait in a stage table of their own until the batch is checked."""

    fp: str
    report: FileReport
    valid: int
    stage: str | None = None  # None once its rows are in the table (or when it has none)


@dataclass
class _Batch:
    """Staged files of one appending reader, checked against the stored keys together.

    Checking each file's keys against the stored ones meant a scan of the whole table per
    file: 111 s of a 406 s ingest of the 1,000 files ``collect`` writes for ten million rows.
    A batch's files keep their stage tables until ``EvidenceStore._flush`` checks all of them
    in one probe and copies each file's winning rows once. Rows are never put in the table
    and deleted again: a delete among rows written in the same transaction makes DuckDB
    rewrite all of them at commit (33 s after a first ten-million-row file).
    """

    reader: Reader
    con: duckdb.DuckDBPyConnection  # where the stage tables are: the store's or the one aside
    files: list[_Pending] = field(default_factory=list)
    rows: int = 0  # staged rows
    staged: int = 0  # files with a stage table


@dataclass
class IngestSummary:
    files: list[FileReport] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)


def fingerprint(path: Path, source: str, rel: str, algorithm: str = FINGERPRINT) -> str:
    """Content, where it sits in the bundle, and how it is read: two config kinds with the
    same text (``[]`` is common) are still two files.

    BLAKE3 hashes the benchmark's 6.7 GB export in 1.7 CPU-seconds against SHA-256's 4.5
    (benchmarks/HISTORY.md, seventeenth session). A file under ``HASH_WHILE_STAGING_BYTES``
    is hashed on the store's thread before it is staged, which bounds a folder of
    ``collect``'s files. A store made before keeps SHA-256 (``store_meta.fingerprint``), so
    the files it knows are still known.
    """
    h = _HASHES[algorithm](f"{source}\0{SCHEMA_VERSION}\0{rel}\0".encode())
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return str(h.hexdigest())


def out_of_room(exc: BaseException) -> str | None:
    """What to do when DuckDB ran out of disk or memory (``OUT_OF_DISK``/``OUT_OF_MEMORY``),
    or a file could not be written for want of space; None for any other error. Not the
    input's fault, so never "cannot read"."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OUT_OF_DISK
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc)
    if _NO_DISK.search(text):
        return OUT_OF_DISK
    if _NO_MEMORY.search(text):
        return OUT_OF_MEMORY
    return None


class EvidenceStore:
    """Open (or create) a store. Use as a context manager so the file is closed."""

    def __init__(
        self,
        path: Path | str,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self._batch: _Batch | None = None
        self._aside_con: duckdb.DuckDBPyConnection | None = None
        # This ingest's batches checked, by table and source, and the tables whose stored
        # key hashes are kept beside them (``_may_meet``).
        self._checks: set[tuple[str, str]] = set()
        self._hashed: set[str] = set()
        self._aside_tables = 0
        self._algorithm = FINGERPRINT  # a read-only store never hashes
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open evidence store {self.path}: {exc}") from exc
        self.con.execute("SET TimeZone='UTC'")
        # DuckDB's default, set because dsguard depends on it: a CSV row's place in its file
        # (``source_row``, a quarantined row's line, the first of two rows with one key) is
        # its insertion order, and the CSV reader has no row number of its own. Without it a
        # 10M-row ingest is 13% faster and numbers rows wrongly (benchmarks/HISTORY.md).
        self.con.execute("SET preserve_insertion_order = true")
        limit = memory_limit or DEFAULT_MEMORY_LIMIT
        try:
            self.con.execute("SET memory_limit = ?", [limit])
        except duckdb.Error as exc:
            raise StoreError(f"invalid memory limit {limit!r}: {_one_line(exc)}") from exc
        self._keep_pool_pages(limit)
        if str(self.path) != ":memory:" and not read_only:
            self.con.execute("SET temp_directory = ?", [str(self.path) + ".tmp"])
        if threads:
            self.con.execute(f"SET threads={int(threads)}")
        if not read_only:
            for ddl in [*all_ddl(), CHANGES_DDL, STAT_DDL]:
                self.con.execute(ddl)
            self._check_version()  # before a store of another version is touched
            self._algorithm = self._fingerprint_algorithm()
            for model in RECORD_TYPES:
                if model.__parts__:
                    parts.ensure(self.con, model)

    def _keep_pool_pages(self, limit: str) -> None:
        """Keep the buffer pool's pages once touched, up to the memory limit: by default DuckDB
        hands freed blocks back to the OS and faults them in again, which cost about a fifth
        of the CPU of a 10M-row ingest in kernel time (benchmarks/HISTORY.md). A limit beyond
        what DuckDB can reserve (or one it reads differently) keeps the default; this only
        saves time."""
        with contextlib.suppress(duckdb.Error):
            self.con.execute("SET block_allocator_memory = ?", [limit])

    def _check_version(self) -> None:
        row = self.con.execute("SELECT value FROM store_meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.con.execute(
                "INSERT INTO store_meta VALUES ('schema_version', ?), ('created_by', ?)",
                [SCHEMA_VERSION, f"dsguard {__version__}"],
            )
        elif row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"evidence store {self.path} has schema version {row[0]}, this dsguard writes "
                f"{SCHEMA_VERSION}; use a new --db"
            )

    def _fingerprint_algorithm(self) -> str:
        """The hash this store fingerprints files with: ``FINGERPRINT`` for a new store,
        SHA-256 for one that recorded files before BLAKE3 (its fingerprints must still match
        the same files)."""
        row = self.con.execute("SELECT value FROM store_meta WHERE key = 'fingerprint'").fetchone()
        if row is not None:
            if row[0] not in _HASHES:
                raise StoreError(
                    f"evidence store {self.path} fingerprints files with {row[0]!r}, which this "
                    "dsguard does not know; use a new --db"
                )
            return str(row[0])
        (known,) = _one(self.con, "SELECT count(*) FROM ingest_files")
        algorithm = "sha256" if known else FINGERPRINT
        self.con.execute("INSERT INTO store_meta VALUES ('fingerprint', ?)", [algorithm])
        return algorithm

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        files: list[tuple[Reader, Path]],
        *,
        root: Path,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """Ingest files in order, all or nothing."""
        summary = IngestSummary()
        self._checks, self._hashed = set(), set()
        self.con.begin()
        try:
            for i, (reader, path) in enumerate(files):
                rel = _relative(path, root)
                if progress:
                    progress(rel, i, len(files))
                if i + 1 < len(files) and files[i + 1][0].source == reader.source:
                    self._look_ahead(*files[i + 1], root)
                summary.files.append(self._ingest_file(reader, path, rel))
            self._flush()
            for model in RECORD_TYPES:
                if model.__parts__:
                    parts.compact(self.con, model.__table__)
            if progress:
                progress("", len(files), len(files))
            # The stage is an ordinary table (see ``_adopt``); none may outlive the ingest.
            self.con.execute(f'DROP TABLE IF EXISTS "{STAGE}"')
            self.con.commit()
        except BaseException:
            self._batch = None
            self.con.rollback()
            raise
        finally:
            with contextlib.suppress(duckdb.Error):  # never in the way of a failure
                for table in self._hashed:
                    self.con.execute(f"DROP TABLE IF EXISTS {_stored_hashes(table)}")
            self._checks, self._hashed = set(), set()
            if self._aside_con is not None:
                self._aside_con.close()
                self._aside_con = None
        return summary

    def _aside(self) -> duckdb.DuckDBPyConnection:
        """The database small files are staged in (``STAGE_ASIDE_BYTES``): in memory, outside
        the ingest transaction, so a dropped stage frees its memory at once. It has the store's
        settings and spills into a folder of its own beside the store's (two databases must
        not share one)."""
        if self._aside_con is None:
            settings = side_settings(self.con)
            con = connect()
            con.execute("SET TimeZone='UTC'")
            con.execute("SET preserve_insertion_order = true")
            con.execute("SET memory_limit = ?", [settings.limit])
            con.execute(f"SET threads = {settings.threads}")
            if settings.spill:  # beside the store's (DuckDB makes only a path's last folder)
                con.execute("SET temp_directory = ?", [f"{settings.spill}-aside"])
            self._aside_con = con
        return self._aside_con

    def _look_ahead(self, reader: Reader, path: Path, root: Path) -> None:
        """Let the reader start on the next file, unless it is one already read (known by
        its size, mtime and inode): a daily run must not survey a month of files again.
        Only a file of the source being read is announced, so a reader's preparation (the
        sign-ins reader's takes some 400 MB for a 22 MB page) never runs beside another
        source's staging."""
        _, known = self._stat_fingerprint(path, reader.source, _relative(path, root))
        if known is None or self._seen(known) is None:
            reader.look_ahead(self.con, path)

    def _stat_fingerprint(self, path: Path, source: str, rel: str) -> tuple[list[Any], str | None]:
        """The file's stat key, and its fingerprint if that key was hashed before."""
        st = path.stat()
        key = [rel, source, st.st_size, st.st_mtime_ns, st.st_ino]
        row = self.con.execute(
            """SELECT fingerprint FROM ingest_stat
               WHERE file = ? AND source = ? AND size = ? AND mtime_ns = ? AND inode = ?""",
            key,
        ).fetchone()
        return key, None if row is None else str(row[0])

    def _fingerprint(
        self, path: Path, source: str, rel: str
    ) -> tuple[list[Any], str | Future[str]]:
        """``fingerprint``, reused while the file's size, mtime and inode are unchanged.

        A large file is hashed on a thread while it is staged (a future): hashing ten million
        rows takes about half as long as DuckDB takes to read them, and ``hashlib`` releases
        the GIL, so the two overlap on a second core.
        """
        key, known = self._stat_fingerprint(path, source, rel)
        if known is not None:
            return key, known
        if key[2] < HASH_WHILE_STAGING_BYTES:
            return key, self._remember(key, fingerprint(path, source, rel, self._algorithm))
        return key, _HASHER.submit(fingerprint, path, source, rel, self._algorithm)

    def _remember(self, key: list[Any], fp: str) -> str:
        rel, source = key[0], key[1]
        self.con.execute("DELETE FROM ingest_stat WHERE file = ? AND source = ?", [rel, source])
        self.con.execute("INSERT INTO ingest_stat VALUES (?, ?, ?, ?, ?, ?)", [*key, fp])
        return fp

    def _resolved(self, key: list[Any], hashed: str | Future[str]) -> str:
        """The fingerprint, waiting for a hash still running and remembering its stat key (a
        hashing error propagates, as it did when files were hashed before staging)."""
        return hashed if isinstance(hashed, str) else self._remember(key, hashed.result())

    def _seen(self, fp: str) -> Any:
        if self._batch is not None and any(f.fp == fp for f in self._batch.files):
            return datetime.now(UTC)  # read earlier in this ingest, recorded at the flush
        row = self.con.execute(
            "SELECT ingested_at FROM ingest_files WHERE fingerprint = ?", [fp]
        ).fetchone()
        return None if row is None else row[0]

    def _ingest_file(self, reader: Reader, path: Path, rel: str) -> FileReport:
        aside = reader.mode != "replace" and path.stat().st_size < STAGE_ASIDE_BYTES
        con, stage = self.con, STAGE
        if aside:
            con = self._aside()
            self._aside_tables += 1
            stage = f"{STAGE}_aside_{self._aside_tables}"
        batch = self._batch
        if batch is not None and (batch.reader is not reader or batch.con is not con):
            self._flush()
        report = FileReport(file=rel, source=reader.source)
        key, hashed = self._fingerprint(path, reader.source, rel)
        if isinstance(hashed, str):
            fp = hashed
            if (seen := self._seen(fp)) is not None:
                return _skipped(report, seen)
        try:
            result = reader.stage(con, path, stage)
            if not isinstance(hashed, str):
                fp = self._resolved(key, hashed)
                if (seen := self._seen(fp)) is not None:  # the same content under a new stat
                    _drop_stage(con, stage)
                    return _skipped(report, seen)
        except SourceError as exc:
            report.error = str(exc)
            self._record(self._resolved(key, hashed), report)
            _drop_stage(con, stage)
            return report
        except duckdb.Error as exc:
            # DuckDB aborts the whole transaction on a failed statement, so this file's
            # failure cannot be recorded beside the others: stop, roll back, say which file
            # (unless the machine, not the file, ran out of room: the caller says that).
            if out_of_room(exc):
                raise
            raise StoreError(f"{rel}: cannot read as {reader.source}: {_one_line(exc)}") from exc
        except (OSError, ValueError, UnicodeError) as exc:
            report.error = f"{rel}: cannot read as {reader.source}: {_one_line(exc)}"
            self._record(self._resolved(key, hashed), report)
            _drop_stage(con, stage)
            return report
        if self._account(reader, result, report, fp, con, stage):
            self._record(fp, report)
        con.execute(f'DROP TABLE IF EXISTS "{rejected_apart(stage)}"')  # in quarantine now
        batch = self._batch
        if batch is None or all(f.stage != stage for f in batch.files):  # not kept for a batch
            con.execute(f'DROP TABLE IF EXISTS "{stage}"')
        return report

    @contextlib.contextmanager
    def _in_store(self, con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[str]:
        """``sql``, run on ``con``, as a relation the store's connection can read: the query
        itself when ``con`` is the store's, else its rows streamed over from the stage aside."""
        if con is self.con:
            yield f"({sql})"
            return
        rows = arrow_rows(con, sql)
        try:
            with registered(self.con, "_from_aside", rows) as name:
                yield name
        finally:
            rows.close()  # a join may stop reading early; the stream must not stay open

    def _account(
        self,
        reader: Reader,
        result: StageResult,
        report: FileReport,
        fp: str,
        stage_con: duckdb.DuckDBPyConnection,
        stage: str,
    ) -> bool:
        """Quarantine the rejected rows and load the rest; ``False`` while the file's rows wait
        in a batch (its report is finished and recorded when the batch is flushed)."""
        con = self.con
        model = reader.model
        report.warnings.extend(result.warnings)
        if result.error:
            report.error = result.error
            stage_con.execute(
                f'UPDATE "{stage}" SET _reject = ? WHERE _reject IS NULL', [result.error]
            )
        rejects = f'SELECT _row, _reject, _raw FROM "{stage}" WHERE _reject IS NOT NULL'
        (apart,) = _one(
            stage_con,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
            [rejected_apart(stage)],
        )
        if apart:
            rejects += f' UNION ALL SELECT _row, _reject, _raw FROM "{rejected_apart(stage)}"'
        with self._in_store(stage_con, rejects) as rows:
            con.execute(
                f"INSERT INTO quarantine SELECT ?, ?, ?, _row, _reject, _raw FROM {rows}",
                [fp, report.file, reader.source],
            )
        (report.rejected,) = _one(stage_con, f"SELECT count(*) FROM ({rejects})")
        (valid,) = _one(stage_con, f'SELECT count(*) FROM "{stage}" WHERE _reject IS NULL')
        report.read = valid + report.rejected
        cols = list(columns(model))
        table = model.__table__
        if reader.mode != "replace":
            self._add_to_batch(reader, _Pending(fp, report, valid), stage_con, stage)
            return False
        if table in self._hashed:  # keys that bypass the batch: hash afresh
            self._hashed.discard(table)
            con.execute(f"DROP TABLE IF EXISTS {_stored_hashes(table)}")
        scope = reader.replace_scope(Path(report.file))
        if scope is not None:
            self._journal_delete(table, scope[0], scope[1])
            con.execute(f'DELETE FROM "{table}" WHERE {scope[0]}', scope[1])
        inserted = _insert_firsts(con, table, cols, model.__key__)
        self._journal_insert(table, inserted, f'SELECT * FROM "{STAGE}" WHERE _reject IS NULL')
        # Loaded rows are counted from what the insert added, never assumed.
        report.loaded = inserted
        report.duplicates = valid - report.loaded
        return True

    def _add_to_batch(
        self,
        reader: Reader,
        pending: _Pending,
        stage_con: duckdb.DuckDBPyConnection,
        stage: str,
    ) -> None:
        """Keep a file's stage for its batch."""
        con = self.con
        batch = self._batch = self._batch or _Batch(reader, stage_con)
        batch.files.append(pending)
        if pending.valid:
            if stage_con is con:
                pending.stage = f"{STAGE}_{len(batch.files)}"
                con.execute(f'ALTER TABLE "{STAGE}" RENAME TO "{pending.stage}"')
            else:
                pending.stage = stage  # already a name of its own
            batch.rows += pending.valid
            batch.staged += 1
        if batch.rows >= BATCH_ROWS or batch.staged >= BATCH_FILES:
            self._flush()

    def _flush(self) -> None:
        """Check the batch's staged rows against the stored keys and each other, store the
        winners, and finish and record its files' reports.

        Of the rows sharing a key, the stored one wins, unless the reader ``supersedes`` it
        (it is deleted and counted as replaced); otherwise the batch's first row (its files
        in order, each in row order) wins. Written for the usual batch of new, distinct keys:
        one semi-join over the stored keys and one hash count over the batch's. A stage in
        the store that keeps every row becomes a part of the table (``_adopt``); other
        winners are copied into the newest part.
        """
        batch, self._batch = self._batch, None
        if batch is None:
            return
        staged = [(i, f) for i, f in enumerate(batch.files) if f.stage]
        replaced: dict[int, int] = {}
        losers = False
        if staged:
            losers, replaced = self._check_batch(batch, staged)
        con, aside, model = self.con, batch.con, batch.reader.model
        run: list[tuple[int, _Pending]] = []  # consecutive files whose winners are copied
        for i, pending in enumerate(batch.files):
            if pending.stage and aside is con and self._keeps_all(pending, i, losers):
                self._copy_winners(batch, run, losers)
                run = []
                pending.report.loaded = self._adopt(model, pending.stage)
                pending.report.duplicates = pending.valid - pending.report.loaded
            elif pending.stage:
                if run and sum(p.valid for _, p in run) + pending.valid > COPY_ROWS:
                    self._copy_winners(batch, run, losers)
                    run = []
                run.append((i, pending))
        self._copy_winners(batch, run, losers)
        for i, pending in enumerate(batch.files):
            if replaced.get(i):
                pending.report.warnings.append(
                    f"{replaced[i]} rows already known from a poorer source were replaced"
                )
            self._record(pending.fp, pending.report)
        aside.execute("DROP TABLE IF EXISTS _losers")
        aside.execute("DROP VIEW IF EXISTS _batch_keys")

    def _copy_winners(self, batch: _Batch, run: list[tuple[int, _Pending]], losers: bool) -> None:
        """Append the winning rows of consecutive staged files (``run``, up to ``COPY_ROWS``)
        to the newest part, in file and row order, with one insert."""
        if not run:
            return
        con, aside = self.con, batch.con
        table = batch.reader.model.__table__
        col_sql = ", ".join(f'"{c}"' for c in columns(batch.reader.model))
        selects = []
        for i, pending in run:
            rows = f'(SELECT * FROM "{pending.stage}" WHERE _reject IS NULL) s'
            if losers:
                rows += f" ANTI JOIN (SELECT _row FROM _losers WHERE _f = {i}) l USING (_row)"
            selects.append(f"SELECT {i} AS _f, s.* FROM {rows}")
        aside.execute("CREATE OR REPLACE TEMP VIEW _winners AS " + " UNION ALL ".join(selects))
        into = parts.newest(con, table)
        # In file and row order without a sort (which held a second copy of the batch in
        # memory): the store keeps insertion order, and a UNION ALL reads its parts in turn.
        with self._in_store(aside, f"SELECT {col_sql} FROM _winners") as winners:
            inserted = _count(
                con, f'INSERT INTO "{into}" ({col_sql}) SELECT {col_sql} FROM {winners}'
            )
        per_file = dict(aside.execute("SELECT _f, count(*) FROM _winners GROUP BY _f").fetchall())
        # Loaded rows are counted from what the insert added, never assumed.
        if inserted != sum(per_file.values()):
            raise StoreError(  # a bug, not input
                f"{table}: the insert added {inserted} rows, the files' winners are "
                f"{sum(per_file.values())}"
            )
        self._journal_insert(table, inserted, "SELECT * FROM _winners", aside)
        aside.execute("DROP VIEW _winners")
        for i, pending in run:
            aside.execute(f'DROP TABLE "{pending.stage}"')
            pending.report.loaded = int(per_file.get(i, 0))
            pending.report.duplicates = pending.valid - pending.report.loaded

    def _keeps_all(self, pending: _Pending, i: int, losers: bool) -> bool:
        """Whether every staged row of the batch's ``i``-th file is to be stored: none was
        rejected and none loses to another row of its key."""
        assert pending.stage is not None
        (staged,) = _one(self.con, f'SELECT count(*) FROM "{pending.stage}"')
        if staged != pending.valid:
            return False
        if not losers:
            return True
        (lost,) = _one(self.con, f"SELECT count(*) FROM _losers WHERE _f = {i}")
        return not lost

    def _check_batch(
        self, batch: _Batch, staged: list[tuple[int, _Pending]]
    ) -> tuple[bool, dict[int, int]]:
        """Find the staged rows that lose to another of their key (``_losers``: file and
        row, beside the stages) and delete the stored rows the batch supersedes; whether any
        row loses, and per file the stored rows it replaced."""
        con, aside, reader = self.con, batch.con, batch.reader
        table = reader.model.__table__
        keys = [f'"{k}"' for k in reader.model.__key__]
        key_sql = ", ".join(keys)
        on = " AND ".join(f"a.{k} = b.{k}" for k in keys)
        # A view: the stages are only read for their keys here. A ten-million-row file, now
        # checked like any other, would otherwise pay for a copy of its keys.
        aside.execute(
            "CREATE OR REPLACE TEMP VIEW _batch_keys AS "
            + " UNION ALL ".join(
                f'SELECT {i} AS _f, _row, {key_sql} FROM "{f.stage}" WHERE _reject IS NULL'
                for i, f in staged
            )
        )
        supersede = getattr(reader, "supersedes", None)
        poorer = f"coalesce({supersede}, false)" if supersede else "false"
        (stored,) = _one(con, f'SELECT EXISTS (SELECT 1 FROM "{table}")')  # count(*) scans a view
        stored = stored and self._may_meet(aside, table, reader.source, key_sql)
        meets = f'SEMI JOIN {{}} b ON {on}' if stored else "WHERE false"  # no probe of nothing
        with self._in_store(aside, f"SELECT {key_sql} FROM _batch_keys") as batch_keys:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _known AS
                    SELECT {", ".join(f"a.{k}" for k in keys)}, {poorer} AS poorer
                    FROM "{table}" a {meets.format(batch_keys)}"""
            )
        # Distinct key hashes prove distinct keys; only a batch where two hashes meet (a
        # repeated key, or a collision) pays for the exact ranking on the key text.
        (distinct,) = _one(aside, f"SELECT count(DISTINCT hash({key_sql})) FROM _batch_keys")
        (known, poorer_rows) = _one(con, "SELECT count(*), count(*) FILTER (poorer) FROM _known")
        with contextlib.ExitStack() as lent:
            if aside is not con and known:  # the stored keys the batch meets, beside it
                known_rows = arrow_rows(con, "SELECT * FROM _known").read_all()
                lent.enter_context(registered(aside, "_known", known_rows))
            losing = []
            if known > poorer_rows:
                losing.append(
                    f"""SELECT b._f, b._row FROM _batch_keys b
                        SEMI JOIN (SELECT * FROM _known WHERE NOT poorer) a ON {on}"""
                )
            if distinct < batch.rows:
                losing.append(
                    f"""SELECT _f, _row FROM _batch_keys
                        QUALIFY row_number() OVER (PARTITION BY {key_sql} ORDER BY _f, _row) > 1"""
                )
            if losing:
                aside.execute("CREATE OR REPLACE TEMP TABLE _losers AS " + " UNION ".join(losing))
            replaced: dict[int, int] = {}
            if poorer_rows:
                first = f"""(SELECT * FROM _batch_keys
                    QUALIFY row_number() OVER (PARTITION BY {key_sql} ORDER BY _f, _row) = 1)"""
                replaced = {
                    int(i): int(n)
                    for i, n in aside.execute(
                        f"""SELECT b._f, count(*) FROM {first} b
                            SEMI JOIN (SELECT * FROM _known WHERE poorer) a ON {on}
                            GROUP BY b._f"""
                    ).fetchall()
                }
                match = " AND ".join(f'"{table}".{k} = b.{k}' for k in keys)
                where = f"EXISTS (SELECT 1 FROM _known b WHERE b.poorer AND {match})"
                self._journal_delete(table, where, [])
                part_match = " AND ".join(f"{{part}}.{k} = b.{k}" for k in keys)
                parts.delete(con, table, "_known b", f"b.poorer AND {part_match}")
        con.execute("DROP TABLE IF EXISTS _known")
        return bool(losing), replaced

    def _may_meet(
        self, aside: duckdb.DuckDBPyConnection, table: str, source: str, key_sql: str
    ) -> bool:
        """Whether a key of the batch may be stored already, which only the exact semi-join
        over every stored key settles (0.2-0.4 s at ten million rows, once per batch: 6 s
        over a month of daily files, more over collect's files).

        From the second batch of one source in an ingest on (a folder of daily or collected
        files; another source's first batch, such as message trace after EmailEvents, mostly
        meets stored keys, so hashing for it would be wasted), the hashes of the table's
        stored keys are kept beside it and every batch adds its own: a batch none of whose
        key hashes is among them meets no stored key (equal keys hash alike), and skips the
        semi-join. A stale hash (a row since replaced) only costs a batch the exact check.
        """
        first = (table, source) not in self._checks
        self._checks.add((table, source))
        if first and table not in self._hashed:
            return True
        hashes = _stored_hashes(table)
        con = self.con
        if table not in self._hashed:  # the table holds what earlier batches added
            con.execute(f"CREATE OR REPLACE TEMP TABLE {hashes} AS "
                        f'SELECT hash({key_sql}) AS h FROM "{table}"')
            self._hashed.add(table)
        with self._in_store(aside, f"SELECT hash({key_sql}) AS h FROM _batch_keys") as batch:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _batch_hashes AS SELECT h FROM {batch}")
        (met,) = _one(
            con, f"SELECT EXISTS (SELECT 1 FROM _batch_hashes SEMI JOIN {hashes} USING (h))"
        )
        con.execute(f"INSERT INTO {hashes} SELECT h FROM _batch_hashes")
        con.execute("DROP TABLE _batch_hashes")
        return bool(met)

    def _adopt(self, model: type[Record], stage: str) -> int:
        """Make a stage that keeps every row a part of its table (``evidence/parts.py``)
        instead of copying it, the bookkeeping columns dropped; how many rows it holds.

        Writing ten million normalised rows costs more than reading them, so a large file
        is written once. A stage with rejected rows or losing keys is copied instead:
        deleting any row of a table created in the transaction makes DuckDB append it again,
        on one core, at commit (49 s at ten million rows, against about half that for the
        copy).
        """
        con, table = self.con, model.__table__
        cols = list(columns(model))
        for column in [r[0] for r in con.execute(f'DESCRIBE "{stage}"').fetchall()]:
            if column not in cols:
                con.execute(f'ALTER TABLE "{stage}" DROP COLUMN "{column}"')
        target = [r[:2] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
        if [r[:2] for r in con.execute(f'DESCRIBE "{stage}"').fetchall()] != target:
            raise StoreError(f"staged rows do not match table {table}")  # a bug, not input
        part = parts.adopt(con, table, stage)
        (inserted,) = _one(con, f'SELECT count(*) FROM "{part}"')
        self._journal_insert(table, inserted, f'SELECT * FROM "{part}"')
        return int(inserted)

    def _journal_insert(
        self, table: str, rows: int, relation: str, con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """Journal ``rows`` inserted from ``relation`` (on ``con``, the store's by default)."""
        if table not in JOURNALLED or not rows:
            return
        ts = JOURNALLED[table]
        lo, hi = _one(con or self.con, f'SELECT min("{ts}"), max("{ts}") FROM ({relation}) x')
        self._journal(table, "insert", rows, lo, hi)

    def _journal_delete(self, table: str, where: str, params: list[Any]) -> None:
        if table not in JOURNALLED:
            return
        ts = JOURNALLED[table]
        n, lo, hi = _one(
            self.con, f'SELECT count(*), min("{ts}"), max("{ts}") FROM "{table}" WHERE {where}',
            params,
        )
        if n:
            self._journal(table, "delete", int(n), lo, hi)

    def _journal(self, table: str, op: str, rows: int, lo: Any, hi: Any) -> None:
        self.con.execute(
            """INSERT INTO ingest_changes
               SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ? FROM ingest_changes""",
            [table, op, rows, lo, hi],
        )

    def _record(self, fp: str, report: FileReport) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                fp,
                report.file,
                report.source,
                report.read,
                report.loaded,
                report.duplicates,
                report.rejected,
                report.error,
                report.warnings,
                datetime.now(UTC),
            ],
        )

    # ------------------------------------------------------------------ reads
    def count(self, model: type[Record]) -> int:
        (n,) = _one(self.con, f'SELECT count(*) FROM "{model.__table__}"')
        return int(n)

    def quarantine_rows(self) -> Iterator[dict[str, Any]]:
        """Every set-aside row with its reason, streamed (a bad file can have millions)."""
        cur = self.con.cursor()
        cur.execute("SELECT file, source, row, reason, raw FROM quarantine ORDER BY file, row")
        names = [d[0] for d in cur.description]
        while batch := cur.fetchmany(10_000):
            for r in batch:
                yield dict(zip(names, r, strict=True))
        cur.close()

    def ingest_history(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * EXCLUDE (fingerprint) FROM ingest_files ORDER BY file")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _skipped(report: FileReport, seen: datetime) -> FileReport:
    report.skipped = True
    report.warnings.append(f"unchanged since {seen:%Y-%m-%d %H:%M:%S}Z; skipped")
    return report


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Run an INSERT and return how many rows it added, as DuckDB reports it."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _insert_firsts(
    con: duckdb.DuckDBPyConnection, table: str, cols: list[str], key: tuple[str, ...]
) -> int:
    """Insert the stage's valid rows into ``table``, the first of each key in file order;
    how many were added (a replacing reader's small tables; appended ones go by batch)."""
    col_sql = ", ".join(f'"{c}"' for c in cols)
    key_sql = ", ".join(f'"{k}"' for k in key)
    return _count(con,
        f"""INSERT INTO "{table}" ({col_sql})
            SELECT {col_sql} FROM "{STAGE}" WHERE _reject IS NULL
            QUALIFY row_number() OVER (PARTITION BY {key_sql} ORDER BY _row) = 1"""
    )  # fmt: skip


def _stored_hashes(table: str) -> str:
    """The temporary table of ``table``'s stored key hashes (``_may_meet``)."""
    return f'"_stored_hashes_{table}"'


def _drop_stage(con: duckdb.DuckDBPyConnection, stage: str) -> None:
    con.execute(f'DROP TABLE IF EXISTS "{stage}"')
    con.execute(f'DROP TABLE IF EXISTS "{rejected_apart(stage)}"')


def _one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
