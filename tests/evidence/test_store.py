"""The store's guarantees, independent of any one reader: accounting, idempotence,
de-duplication across files, and all-or-nothing ingest (a killed ingest leaves no trace)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsguard.evidence import parts
from dsguard.evidence import store as store_module
from dsguard.evidence.model import MessageEvent
from dsguard.evidence.store import EvidenceStore, StoreError
from dsguard.sources.dns import DnsReader

pytestmark = pytest.mark.usefixtures("both_stagings")

HERE = Path(__file__).resolve()
SRC = HERE.parents[2] / "src"

# A minimal append-mode reader over a JSON list, defined as source text so that a child
# process can use it too.
READER_SRC = textwrap.dedent(
    """
    import json, os, time
    from datetime import datetime
    from dsguard.evidence.model import MessageEvent
    from dsguard.sources.base import Reader, StageResult, stage_records

    class ListReader(Reader):
        source = "test_list"
        model = MessageEvent
        patterns = ("*.json",)

        def stage(self, con, path, table):
            rows = []
            for i, r in enumerate(json.loads(path.read_text()), start=1):
                reject = None if r.get("nmid") else "missing NetworkMessageId"
                rows.append({
                    "network_message_id": r.get("nmid"), "recipient": r.get("rcpt"),
                    "ts": datetime.fromisoformat(r["ts"]), "source": "email_events",
                    "source_file": path.name, "source_row": i,
                    "_row": i, "_raw": json.dumps(r), "_reject": reject,
                })
            stage_records(con, table, MessageEvent, rows)
            if os.environ.get("DSGUARD_TEST_STALL") == path.name:
                print("STALLED", flush=True)
                time.sleep(120)
            return StageResult()
    """
)
namespace: dict[str, object] = {}
exec(compile(READER_SRC, "list_reader", "exec"), namespace)
ListReader = namespace["ListReader"]


def _rows(n: int, start: int = 0, rcpt: str = "a@contoso.example") -> list[dict[str, str]]:
    return [
        {"nmid": f"m-{i}", "rcpt": rcpt, "ts": "2026-11-02T10:00:00+00:00"}
        for i in range(start, start + n)
    ]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps(rows))
    return path


def _snapshot(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with EvidenceStore(db) as store:
        msgs = store.con.execute(
            "SELECT network_message_id, recipient, ts, source_file FROM messages ORDER BY ALL"
        ).fetchall()
        files = store.con.execute(
            "SELECT file, read, loaded, duplicates, rejected FROM ingest_files ORDER BY file"
        ).fetchall()
    return msgs, files


def test_accounting_adds_up_and_rejects_are_quarantined(tmp_path: Path) -> None:
    rows = [*_rows(3), {"nmid": "", "rcpt": "x@contoso.example", "ts": "2026-11-02T10:00:00"}]
    rows.append(rows[0])  # a duplicate inside the same file
    f = _write(tmp_path / "a.json", rows)
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (5, 3, 1, 1)
        assert rep.balanced
        (q,) = list(store.quarantine_rows())
        assert q["row"] == 4 and q["reason"] == "missing NetworkMessageId"
        assert json.loads(q["raw"])["rcpt"] == "x@contoso.example"
        assert store.count(MessageEvent) == 3


def test_first_file_into_an_empty_table_loads_as_a_copy_would(tmp_path: Path) -> None:
    """The stage becomes the empty table (no copy): the same rows, columns and winners as
    the copy into a table that already holds something."""
    rows = _rows(3)
    later = {**rows[1], "ts": "2026-11-03T10:00:00+00:00"}  # a repeated key: the first wins
    rows += [later, {"nmid": "", "rcpt": "x@contoso.example", "ts": "2026-11-02T10:00:00"}]
    a = _write(tmp_path / "a.json", rows)
    seed = _write(tmp_path / "seed.json", _rows(1, start=99))
    query = "SELECT * EXCLUDE (source_file) FROM messages WHERE network_message_id <> 'm-99'"
    results = []
    for files in ([a], [seed, a]):
        db = tmp_path / f"e{len(files)}.duckdb"
        with EvidenceStore(db) as store:
            reports = store.ingest([(ListReader(), f) for f in files], root=tmp_path).files
            rep = reports[-1]
            assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (5, 3, 1, 1)
            layout = store.con.execute("DESCRIBE messages").fetchall()
            tables = {r[0] for r in store.con.execute("SHOW TABLES").fetchall()}
            assert "_stage" not in tables
            results.append((layout, store.con.execute(query + " ORDER BY ALL").fetchall()))
    assert results[0] == results[1]
    assert [c[0] for c in results[0][0]] == list(MessageEvent.model_fields)
    assert {r[0]: r[2].day for r in results[0][1]} == {"m-0": 2, "m-1": 2, "m-2": 2}


@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize(
    ("extra", "copied"),
    [
        ([], False),
        ([{"nmid": "", "rcpt": "x@contoso.example", "ts": "2026-11-02T10:00:00"}], True),
        ([{"nmid": "m-1", "rcpt": "a@contoso.example", "ts": "2026-11-09T10:00:00"}], True),
    ],
)
def test_a_staged_file_becomes_a_part_only_when_every_row_stays(
    tmp_path: Path, both_stagings: str, extra: list[dict[str, str]], copied: bool, seeded: bool
) -> None:
    """Deleting from a table created in the transaction makes DuckDB append it again at
    commit, so a stage losing a rejected row or a repeated key is copied into the newest
    part instead; so is every file staged aside. Into an empty table or not, the same."""
    seed = _write(tmp_path / "seed.json", _rows(1, start=99))
    f = _write(tmp_path / "a.json", [*_rows(3), *extra])
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        if seeded:
            store.ingest([(ListReader(), seed)], root=tmp_path)
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert (rep.read, rep.loaded) == (3 + len(extra), 3)
        assert rep.balanced
        con = store.con
        ids = con.execute("SELECT network_message_id, ts FROM messages WHERE ts < '2026-11-05' AND network_message_id <> 'm-99'")
        assert [(n, t.day) for n, t in ids.fetchall()] == [("m-0", 2), ("m-1", 2), ("m-2", 2)]
        tables = {r[0] for r in con.execute("SHOW ALL TABLES").fetchall()}
        in_store = both_stagings == "in the store"
        own_part = in_store and not copied
        count = 1 + (seeded and in_store) + own_part  # the seed is adopted too
        expected = [f"messages_part{i}" for i in range(count)]
        assert parts.parts(con, "messages") == expected
        (in_newest,) = con.execute(f"SELECT count(*) FROM {expected[-1]}").fetchone()
        assert in_newest == 3 + (seeded and not own_part)
        # the view is the table to every reader: a scan gives rows in the order stored
        order = con.execute("SELECT network_message_id FROM messages").fetchall()
        assert order == [*([("m-99",)] if seeded else []), ("m-0",), ("m-1",), ("m-2",)]
    assert not any(t.startswith("_stage") for t in tables)


def test_rows_a_richer_source_replaces_are_deleted_from_their_part(tmp_path: Path) -> None:
    """A poorer row stored in an adopted part is deleted there, not in the newest part."""
    poor = _write(tmp_path / "poor.json", _rows(4))
    rich = _write(tmp_path / "rich.json", _rows(2, start=2))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest([(_PoorReader(), poor)], root=tmp_path)
        store.ingest(
            [(ListReader(), _write(tmp_path / "x.json", _rows(1, start=9)))], root=tmp_path
        )
        (rep,) = store.ingest([(_RichReader(), rich)], root=tmp_path).files
        assert rep.warnings == ["2 rows already known from a poorer source were replaced"]
        rows = store.con.execute("SELECT network_message_id, source FROM messages").fetchall()
        assert parts.count(store.con, "messages") == 5  # the deleted rows not counted
    assert sorted(rows) == [
        ("m-0", "message_trace"), ("m-1", "message_trace"),
        ("m-2", "email_events"), ("m-3", "email_events"), ("m-9", "email_events"),
    ]  # fmt: skip


def test_many_parts_are_merged_with_their_neighbours_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, both_stagings: str
) -> None:
    """Past ``MAX_PARTS`` the smallest neighbouring pair is merged, later rows after
    earlier ones, so a scan of the view keeps the order the rows were stored in."""
    monkeypatch.setattr(parts, "MAX_PARTS", 3)
    sizes = [5, 1, 1, 4, 2]
    start = 0
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        for i, n in enumerate(sizes):
            f = _write(tmp_path / f"f{i}.json", _rows(n, start=start))
            start += n
            store.ingest([(ListReader(), f)], root=tmp_path)
        con = store.con
        names = parts.parts(con, "messages")
        counts = [con.execute(f"SELECT count(*) FROM {p}").fetchone()[0] for p in names]
        order = [r[0] for r in con.execute("SELECT network_message_id FROM messages").fetchall()]
        total = parts.count(con, "messages")  # part by part, as the feature engine counts
        con.execute("CREATE TABLE plain AS SELECT * FROM messages")
        plain = parts.count(con, "plain")  # not kept in parts: counted itself
    assert len(names) <= 3
    assert sum(counts) == sum(sizes) == total == plain
    assert order == [f"m-{i}" for i in range(sum(sizes))]
    if both_stagings == "in the store":  # one part per file, then merges of small pairs
        assert counts == [5, 6, 2]


def test_a_store_from_before_parts_keeps_its_rows(tmp_path: Path) -> None:
    """A store whose ``messages`` is a table: the table becomes the first part."""
    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store:
        store.ingest([(ListReader(), _write(tmp_path / "a.json", _rows(3)))], root=tmp_path)
        con = store.con
        con.execute("CREATE TABLE old AS SELECT * FROM messages")
        con.execute("DROP VIEW messages")
        for p in parts.parts(con, "messages"):
            con.execute(f"DROP TABLE {p}")
        con.execute("ALTER TABLE old RENAME TO messages")
    with EvidenceStore(db) as store:
        assert parts.parts(store.con, "messages") == ["messages_part0"]
        store.ingest(
            [(ListReader(), _write(tmp_path / "b.json", _rows(2, start=3)))], root=tmp_path
        )
        assert store.count(MessageEvent) == 5


def test_same_file_twice_adds_nothing(tmp_path: Path) -> None:
    f = _write(tmp_path / "a.json", _rows(10))
    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store:
        store.ingest([(ListReader(), f)], root=tmp_path)
    first = _snapshot(db)
    with EvidenceStore(db) as store:
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert rep.skipped and rep.read == rep.loaded == 0
    assert _snapshot(db) == first


def test_overlapping_files_count_duplicates_not_rows(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", _rows(10))
    b = _write(tmp_path / "b.json", _rows(10, start=5))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        ra, rb = store.ingest([(ListReader(), a), (ListReader(), b)], root=tmp_path).files
        assert (ra.loaded, ra.duplicates) == (10, 0)
        assert (rb.read, rb.loaded, rb.duplicates) == (10, 5, 5)
        assert store.count(MessageEvent) == 15


class _PoorReader(ListReader):  # type: ignore[misc, valid-type]
    """Rows of a poorer source, which the rich reader's rows replace."""

    def stage(self, con, path, table):  # type: ignore[no-untyped-def]
        result = super().stage(con, path, table)
        con.execute(f"UPDATE \"{table}\" SET source = 'message_trace'")
        return result


class _RichReader(ListReader):  # type: ignore[misc, valid-type]
    supersedes = "source = 'message_trace'"


class _OtherSource(ListReader):  # type: ignore[misc, valid-type]
    source = "test_other"


def test_later_batches_skip_the_stored_keys_check_only_when_no_key_hash_meets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a table's second batch in an ingest on, a batch whose key hashes meet none of
    the stored keys' skips the exact check; a key stored by an earlier batch of the same
    ingest, or by an earlier ingest, still makes the batch check and lose its copy."""
    monkeypatch.setattr(store_module, "BATCH_ROWS", 1)  # each file a batch of its own
    decided: list[bool] = []
    may_meet = EvidenceStore._may_meet

    def spy(self: EvidenceStore, *args: object) -> bool:
        decided.append(may_meet(self, *args))
        return decided[-1]

    monkeypatch.setattr(EvidenceStore, "_may_meet", spy)
    old = _write(tmp_path / "old.json", _rows(1, start=100))
    files = [
        _write(tmp_path / "f1.json", _rows(2)),  # m-0, m-1
        _write(tmp_path / "f2.json", _rows(2, start=2)),
        _write(tmp_path / "f3.json", [*_rows(1, start=4), *_rows(1, start=3)]),  # f2's m-3
        _write(tmp_path / "f4.json", _rows(1, start=5)),
        _write(tmp_path / "f5.json", _rows(1, start=100)),  # stored by the earlier ingest
        _write(tmp_path / "f6.json", _rows(1, start=6)),
    ]
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest([(ListReader(), old)], root=tmp_path)
        assert decided == []  # nothing stored yet: nothing to check
        reports = store.ingest([(ListReader(), f) for f in files], root=tmp_path).files
        assert [(r.loaded, r.duplicates) for r in reports] == [
            (2, 0), (2, 0), (1, 1), (1, 0), (0, 1), (1, 0)
        ]
        assert decided == [True, False, True, False, True, False]
        (n, distinct) = store.con.execute(
            "SELECT count(*), count(DISTINCT network_message_id) FROM messages"
        ).fetchone() or (0, 0)
        assert n == distinct == 8
        temp = store.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_stored_hashes%'"
        ).fetchone()
        assert temp == (0,)  # the hashes live only as long as the ingest
        # Another source's first batch (message trace after EmailEvents mostly meets the
        # stored keys) is checked exactly, without hashing the table for it.
        decided.clear()
        more = [_write(tmp_path / "g1.json", _rows(1, start=7)),
                _write(tmp_path / "g2.json", _rows(1, start=8))]
        reports = store.ingest(
            [(ListReader(), more[0]), (_OtherSource(), more[1])], root=tmp_path
        ).files
        assert [(r.loaded, r.duplicates) for r in reports] == [(1, 0), (1, 0)]
        assert decided == [True, True]


@pytest.mark.parametrize("copy_rows", [1, 7, 99])
@pytest.mark.parametrize(("batch_rows", "batch_files"), [(1, 99), (4, 99), (99, 2), (99, 99)])
def test_a_batch_loads_what_file_by_file_did(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_rows: int,
    batch_files: int,
    copy_rows: int,
) -> None:
    """Files checked together (one batch, or a flush mid-way, by rows or by files) keep the
    winners and the accounting of checking each file on its own (``BATCH_ROWS`` 1): the
    stored row wins unless it is poorer, else the first in file order. Their winners are
    copied a file at a time, a few files at a time, or all at once (``COPY_ROWS``)."""
    monkeypatch.setattr(store_module, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(store_module, "BATCH_FILES", batch_files)
    monkeypatch.setattr(store_module, "COPY_ROWS", copy_rows)
    poor = _write(tmp_path / "poor.json", _rows(3, start=6))  # m-6, m-7, m-8
    a = _write(tmp_path / "a.json", [*_rows(5), _rows(1, start=1)[0]])  # m-1 twice
    b = _write(tmp_path / "b.json", _rows(4, start=3, rcpt="a@contoso.example"))  # m-3..m-6
    c = _write(tmp_path / "c.json", [*_rows(2, start=6), *_rows(1, start=9)])  # m-6, m-7, m-9
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest([(_PoorReader(), poor)], root=tmp_path)
        rich = _RichReader()
        reports = store.ingest([(rich, f) for f in (a, b, c)], root=tmp_path).files
        got = [(r.read, r.loaded, r.duplicates, r.warnings) for r in reports]
        assert got == [
            (6, 5, 1, []),
            (4, 2, 2, ["1 rows already known from a poorer source were replaced"]),
            (3, 2, 1, ["1 rows already known from a poorer source were replaced"]),
        ]
        rows = store.con.execute(
            "SELECT network_message_id, source, source_file FROM messages ORDER BY ALL"
        ).fetchall()
        assert rows == [
            *[(f"m-{i}", "email_events", "a.json") for i in range(5)],
            ("m-5", "email_events", "b.json"),
            ("m-6", "email_events", "b.json"),
            ("m-7", "email_events", "c.json"),
            ("m-8", "message_trace", "poor.json"),
            ("m-9", "email_events", "c.json"),
        ]
        # Stored in file order, each file in row order, however the batch was cut.
        scan = store.con.execute("SELECT network_message_id, source_file FROM messages")
        assert scan.fetchall() == [
            ("m-8", "poor.json"),
            *[(f"m-{i}", "a.json") for i in range(5)],
            ("m-5", "b.json"), ("m-6", "b.json"), ("m-7", "c.json"), ("m-9", "c.json"),
        ]
        changes = store.con.execute(
            "SELECT op, sum(rows) FROM ingest_changes GROUP BY op ORDER BY op"
        ).fetchall()
        assert changes == [("delete", 2), ("insert", 3 + 5 + 2 + 2)]


def test_replace_mode_swaps_the_snapshot(tmp_path: Path) -> None:
    f = tmp_path / "dns.json"
    f.write_text(json.dumps({"contoso.example": ["v=spf1 -all"]}))
    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store:
        store.ingest([(DnsReader(), f)], root=tmp_path)
    f.write_text(json.dumps({"contoso.example": ["v=spf1 ~all"], "_dmarc.contoso.example": []}))
    with EvidenceStore(db) as store:
        store.ingest([(DnsReader(), f)], root=tmp_path)
        values = store.con.execute("SELECT value FROM dns_records").fetchall()
    assert values == [("v=spf1 ~all",)]


def test_reader_crash_rolls_back_everything(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", _rows(5))

    class Boom(DnsReader):
        def stage(self, con, path, table):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug in a reader")

    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store, pytest.raises(RuntimeError):
        store.ingest([(ListReader(), a), (Boom(), a)], root=tmp_path)
    assert _snapshot(db) == ([], [])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_ingest_leaves_store_as_it_was_and_rerun_matches_clean_run(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    files = [
        _write(bundle / "a.json", _rows(2000)),
        _write(bundle / "b.json", _rows(2000, start=1500)),
        _write(bundle / "c.json", _rows(500, start=9000)),
    ]
    script = tmp_path / "child.py"
    script.write_text(
        READER_SRC
        + textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from dsguard.evidence.store import EvidenceStore
            files = [Path(p) for p in {[str(f) for f in files]!r}]
            with EvidenceStore(sys.argv[1]) as s:
                s.ingest([(ListReader(), f) for f in files], root=Path({str(bundle)!r}))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "DSGUARD_TEST_STALL": "c.json"}
    db = tmp_path / "killed.duckdb"
    # A first, complete ingest of a.json only: the kill must not undo committed work.
    with EvidenceStore(db) as store:
        store.ingest([(ListReader(), files[0])], root=bundle)
    before = _snapshot(db)

    child = subprocess.Popen(
        [sys.executable, str(script), str(db)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "STALLED"  # a.json skipped, b.json staged+loaded
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert _snapshot(db) == before

    env.pop("DSGUARD_TEST_STALL")
    subprocess.run([sys.executable, str(script), str(db)], env=env, check=True, timeout=120)
    clean = tmp_path / "clean.duckdb"
    subprocess.run([sys.executable, str(script), str(clean)], env=env, check=True, timeout=120)
    killed_msgs, killed_files = _snapshot(db)
    clean_msgs, clean_files = _snapshot(clean)
    assert killed_msgs == clean_msgs
    assert len(clean_msgs) == 2000 + 1500 + 500
    # Same per-file accounting (a.json was loaded by the first run in the killed store).
    assert killed_files == clean_files


def test_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store:
        store.con.execute("UPDATE store_meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version"):
        EvidenceStore(db)


def test_a_store_keeps_the_hash_it_fingerprinted_its_files_with(tmp_path: Path) -> None:
    """A new store fingerprints with BLAKE3; one that recorded files with SHA-256, before
    BLAKE3, keeps SHA-256, so a known file under a new mtime is still known."""
    from dsguard.evidence import store as store_mod

    f = _write(tmp_path / "a.json", _rows(5))
    fresh = tmp_path / "new.duckdb"
    with EvidenceStore(fresh) as store:
        store.ingest([(ListReader(), f)], root=tmp_path)
        meta = store.con.execute("SELECT value FROM store_meta WHERE key = 'fingerprint'")
        assert meta.fetchone() == ("blake3",)
        (fp,) = store.con.execute("SELECT fingerprint FROM ingest_files").fetchone()
        assert fp == store_mod.fingerprint(f, ListReader.source, "a.json", "blake3")
        assert fp != store_mod.fingerprint(f, ListReader.source, "a.json", "sha256")

    old = tmp_path / "old.duckdb"  # as a store written before BLAKE3 left it
    with EvidenceStore(old) as store:
        store.con.execute("DELETE FROM store_meta WHERE key = 'fingerprint'")
        store.con.execute(
            "INSERT INTO ingest_files (fingerprint, file, source, read, loaded, ingested_at) "
            "VALUES (?, 'a.json', ?, 5, 5, now())",
            [store_mod.fingerprint(f, ListReader.source, "a.json", "sha256"), ListReader.source],
        )
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # no stat key: hashed again
    with EvidenceStore(old) as store:
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert rep.skipped and rep.read == rep.loaded == 0
        meta = store.con.execute("SELECT value FROM store_meta WHERE key = 'fingerprint'")
        assert meta.fetchone() == ("sha256",)

    with EvidenceStore(old) as store:
        store.con.execute("UPDATE store_meta SET value = 'md5' WHERE key = 'fingerprint'")
    with pytest.raises(StoreError, match="'md5'"):
        EvidenceStore(old)


def test_a_large_file_hashed_while_staged_is_still_skipped_when_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files above ``HASH_WHILE_STAGING_BYTES`` are hashed on a thread during staging; the
    answer must be what hashing first gives: unchanged files skipped, and the same content
    under a new mtime staged, then recognised and dropped without adding a row."""
    from dsguard.evidence import store as store_mod

    monkeypatch.setattr(store_mod, "HASH_WHILE_STAGING_BYTES", 0)
    f = _write(tmp_path / "a.json", _rows(10))
    db = tmp_path / "e.duckdb"
    with EvidenceStore(db) as store:
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert (rep.read, rep.loaded, rep.skipped) == (10, 10, False)
        fp = store.con.execute("SELECT fingerprint FROM ingest_files").fetchone()
        assert fp == (store_mod.fingerprint(f, ListReader.source, "a.json"),)
    first = _snapshot(db)
    with EvidenceStore(db) as store:  # unchanged stat: not hashed at all
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert rep.skipped and rep.read == rep.loaded == 0
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    with EvidenceStore(db) as store:
        (rep,) = store.ingest([(ListReader(), f)], root=tmp_path).files
        assert rep.skipped and rep.read == rep.loaded == 0
        tables = {r[0] for r in store.con.execute("SHOW TABLES").fetchall()}
        assert "_stage" not in tables
    assert _snapshot(db) == first
    # a file that fails to stage is still recorded under its fingerprint and stat key
    bad = tmp_path / "bad.json"
    bad.write_text("[not json", encoding="utf-8")
    with EvidenceStore(db) as store:
        (rep,) = store.ingest([(ListReader(), bad)], root=tmp_path).files
        assert rep.error and not rep.skipped
        fp = store_mod.fingerprint(bad, ListReader.source, "bad.json")
        assert store.con.execute(
            "SELECT count(*) FROM ingest_files WHERE fingerprint = ?", [fp]
        ).fetchone() == (1,)
        assert store.con.execute(
            "SELECT fingerprint FROM ingest_stat WHERE file = 'bad.json'"
        ).fetchall() == [(fp,)]


def _settings(store: EvidenceStore) -> tuple[str, str]:
    row = store.con.execute(
        "SELECT current_setting('memory_limit'), current_setting('block_allocator_memory')"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_buffer_pool_keeps_its_pages_up_to_the_memory_limit(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "s.duckdb", memory_limit="512MB") as store:
        limit, pool = _settings(store)
    assert limit == pool == "488.2 MiB"


def test_a_memory_limit_beyond_what_can_be_reserved_still_opens(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "s.duckdb", memory_limit="100TB") as store:
        limit, pool = _settings(store)
        store.con.execute("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
    assert limit == "90.9 TiB" and pool == "0 bytes"  # DuckDB's default: blocks are returned


def test_an_invalid_memory_limit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid memory limit 'lots'"):
        EvidenceStore(tmp_path / "s.duckdb", memory_limit="lots")


def test_a_lent_table_does_not_hide_the_failure_inside_its_block() -> None:
    import duckdb
    import pyarrow as pa

    from dsguard.evidence.duck import registered

    con = duckdb.connect()
    con.begin()
    with (
        pytest.raises(duckdb.InvalidInputException, match="the real failure"),
        registered(con, "lent", pa.table({"a": [1]})),
    ):
        con.execute("SELECT error('the real failure') FROM lent")
    con.rollback()
    with registered(con, "lent", pa.table({"a": [2]})):
        assert con.execute("SELECT a FROM lent").fetchall() == [(2,)]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT a FROM lent")  # returned after the block


def test_duckdb_draws_no_progress_bar_on_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """DuckDB draws a progress bar on standard output for a query over two seconds, terminal
    or not: it broke ``--json`` and ``--quiet`` on large inputs. Every connection dsguard
    opens turns it off (here DuckDB is made to draw after 10 ms, before dsguard's settings)."""
    import duckdb

    real = duckdb.connect

    def eager(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        con = real(*args, **kwargs)  # type: ignore[arg-type]
        con.execute("SET progress_bar_time = 10")
        return con

    query = "SELECT sum(i) FROM range(300000000) t(i)"
    monkeypatch.setattr(duckdb, "connect", eager)
    # The control: a plain connection does draw with this query, so the check below can fail.
    with duckdb.connect() as plain:
        plain.execute(query).fetchall()
    assert "%" in capfd.readouterr().out
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.con.execute(query).fetchall()
    assert capfd.readouterr().out == ""
    # The store's and the sign-in reader's connections come from one place.
    src = Path(__file__).resolve().parents[2] / "src" / "dsguard"
    direct = [
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if "duckdb.connect(" in p.read_text(encoding="utf-8")
    ]
    assert direct == ["evidence/duck.py"]


def test_side_connections_share_a_database_and_keep_nothing(tmp_path: Path) -> None:
    """Readers parse untrusted files on a side connection: one database per spill folder
    (a new one per file left memory behind), nothing left from one use to the next, and a
    store with another spill folder still gets one after the first has spilled (DuckDB
    cannot switch folders then)."""
    from dsguard.evidence.duck import side_connection

    sort = "SELECT count(*) FROM (SELECT md5(i::VARCHAR) v FROM range(2000000) t(i) ORDER BY v)"
    with EvidenceStore(tmp_path / "a.duckdb", memory_limit="64MB") as a:
        with side_connection(a.con) as side:
            side.execute("CREATE TEMP TABLE leftover AS SELECT 1 AS x")
            assert side.execute(sort).fetchone() == (2_000_000,)  # spills
            first = side.execute("SELECT current_setting('memory_limit')").fetchone()
        with side_connection(a.con) as side:
            assert side.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'leftover'"
            ).fetchone() == (0,)
            assert side.execute("SELECT current_setting('memory_limit')").fetchone() == first
    assert any((tmp_path / "a.duckdb.tmp").iterdir())
    with EvidenceStore(tmp_path / "b.duckdb") as b, side_connection(b.con) as side:
        row = side.execute("SELECT current_setting('temp_directory')").fetchone()
        assert row == (str(tmp_path / "b.duckdb.tmp"),)


def test_a_side_connection_takes_the_settings_it_is_given_each_time(tmp_path: Path) -> None:
    """The side database keeps its memory limit and threads between uses (setting them again
    cost 12 ms a file), so a use with other settings must still change them."""
    from dsguard.evidence.duck import SideSettings, side_connection

    spill = str(tmp_path / "spill")
    seen = []
    for limit, threads in [("64MB", 1), ("64MB", 1), ("128MB", 2), ("64MB", 1)]:
        with side_connection(SideSettings(limit, threads, spill)) as side:
            seen.append(side.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')"
            ).fetchone())
    assert seen[0] == seen[1] == seen[3] != seen[2]
    assert [t for _, t in seen] == [1, 1, 2, 1]


def test_side_connections_open_at_once_on_two_threads(tmp_path: Path) -> None:
    """A reader prepares the next file on a thread while this one is staged: a side
    connection held by one thread must not wait for another's to close (the two readers
    ran one after the other when the lock covered the whole use)."""
    import threading

    from dsguard.evidence.duck import SideSettings, side_connection

    settings = SideSettings("256MB", 1, str(tmp_path / "spill"))
    seen: list[object] = []

    def other() -> None:
        with side_connection(settings) as side:
            seen.append(side.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mine'"
            ).fetchone())

    with side_connection(settings) as held:
        held.execute("CREATE TEMP TABLE mine AS SELECT 1 AS x")
        thread = threading.Thread(target=other, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "a second side connection waited for the first"
        assert held.execute("SELECT x FROM mine").fetchall() == [(1,)]
    assert seen == [(0,)]


def test_a_side_connection_in_use_is_not_closed_under_its_user(tmp_path: Path) -> None:
    """Another spill folder asked for while the shared database is in use gets a database
    of its own; the shared one is replaced only once nobody holds it."""
    import threading

    from dsguard.evidence.duck import SideSettings, side_connection

    first = SideSettings("256MB", 1, str(tmp_path / "first"))
    other = SideSettings("256MB", 1, str(tmp_path / "other"))
    where = "SELECT current_setting('temp_directory')"
    seen: list[object] = []

    def use_other() -> None:
        with side_connection(other) as side:
            seen.append(side.execute(where).fetchone())

    with side_connection(first) as held:
        thread = threading.Thread(target=use_other, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "a second side connection waited for the first"
        assert held.execute(where).fetchone() == (first.spill,)
    use_other()
    assert seen == [(other.spill,)] * 2


def test_small_files_of_an_appending_reader_are_staged_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, both_stagings: str
) -> None:
    """A stage table in the store's transaction keeps its memory until the commit; a small
    file's is staged in the database aside, which is closed after the ingest, failed or
    not. Replace-mode readers always stage in the store."""
    used: list[tuple[str, bool]] = []
    stage = ListReader.stage

    def spy(self: object, con: object, path: Path, table: str) -> object:
        if path.name == "crash.json":
            raise RuntimeError("reader bug")
        used.append((path.name, con is store.con))
        return stage(self, con, path, table)

    monkeypatch.setattr(ListReader, "stage", spy)
    a = _write(tmp_path / "a.json", _rows(3))
    b = _write(tmp_path / "b.json", _rows(3, start=2))
    dns = tmp_path / "dns.json"
    dns.write_text(json.dumps([{"name": "contoso.example", "type": "TXT", "value": "v=spf1 -all"}]))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest([(ListReader(), a), (ListReader(), b), (DnsReader(), dns)], root=tmp_path)
        assert used == [("a.json", both_stagings != "aside"), ("b.json", both_stagings != "aside")]
        assert store._aside_con is None
        tables = {r[0] for r in store.con.execute("SHOW TABLES").fetchall()}
        assert not {t for t in tables if t.startswith("_stage")}
        assert store.con.execute("SELECT count(*) FROM messages").fetchall() == [(5,)]
        c = _write(tmp_path / "c.json", _rows(2, start=10))
        crash = _write(tmp_path / "crash.json", _rows(1))
        with pytest.raises(RuntimeError):
            store.ingest([(ListReader(), c), (ListReader(), crash)], root=tmp_path)
        assert store._aside_con is None
        assert store.con.execute("SELECT count(*) FROM messages").fetchall() == [(5,)]
