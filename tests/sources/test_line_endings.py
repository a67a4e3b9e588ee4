"""CSV lines DuckDB's reader gets wrong on its own: mixed line endings and overlong lines.

DuckDB's CSV reader takes one line ending for a file. Past a switch it folded the rest of the
file into a few broken records (a 2,000-row export read as 1,000), rejected every line, or
failed the statement and with it the whole ingest. Files joined from a Windows and a Unix
export do this; a Defender or Excel export's own line breaks inside quoted values must not
be mistaken for it. And a line more than twice its 4 MB buffer, unquoted, was dropped without
a reject: the file's count simply came out one short.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.spies import returns_of

from dsguard.evidence.duck import memory_limit_bytes
from dsguard.evidence.store import EvidenceStore
from dsguard.sources import _tabular
from dsguard.sources._tabular import (
    CSV_BUFFER_BYTES,
    MIXED_LINE_ENDINGS,
    LineSurvey,
    TextFile,
    csv_buffer_bytes,
    csv_text,
    survey_lines,
)
from dsguard.sources.base import Reader
from dsguard.sources.emailevents import EmailEventsReader
from dsguard.sources.message_trace import MessageTraceReader

N = 3000
EVENTS_HEADER = [
    "Timestamp", "NetworkMessageId", "SenderFromAddress", "SenderIPv4",
    "RecipientEmailAddress", "Subject", "AuthenticationDetails",
]  # fmt: skip
TRACE_HEADER = [
    "origin_timestamp", "sender_address", "Recipient_status", "message_subject",
    "network_message_id", "original_client_ip", "directionality",
]  # fmt: skip


def events_rows() -> list[list[str]]:
    auth = '{"SPF":"fail","DKIM":"none","DMARC":"fail","CompAuth":"fail"}'
    return [
        [f"2025-01-06T08:{i % 60:02d}:{i % 59:02d}Z", f"id-{i}", "ceo@contoso.com",
         f"203.0.113.{i % 250}", f"user{i}@contoso.com", f'Invoice "{i}", due', auth]
        for i in range(N)
    ]  # fmt: skip


def trace_rows() -> list[list[str]]:
    return [
        [f"2025-01-06T08:{i % 60:02d}:00.0000000Z", "ceo@contoso.com",
         f"user{i}@contoso.com##Receive, Deliver", f"Invoice {i}", f"id-{i}",
         "203.0.113.7", "Originating"]
        for i in range(N)
    ]  # fmt: skip


def csv_lines(header: list[str], records: list[list[str]]) -> list[bytes]:
    """Each record as CSV without its line ending (values quoted, as Microsoft writes them)."""
    out = []
    for rec in [header, *records]:
        buf = io.StringIO(newline="")
        csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="").writerow(rec)
        out.append(buf.getvalue().encode())
    return out


def joined(lines: list[bytes], endings: Iterator[bytes] | list[bytes]) -> bytes:
    return b"".join(line + end for line, end in zip(lines, endings, strict=True))


def variants(lines: list[bytes]) -> dict[str, bytes]:
    """The same records with their lines ended in every way seen in the wild."""
    n, half = len(lines), len(lines) // 2
    return {
        "crlf then lf": joined(lines, [b"\r\n"] * half + [b"\n"] * (n - half)),
        "lf then crlf": joined(lines, [b"\n"] * half + [b"\r\n"] * (n - half)),
        "lf, the last line crlf": joined(lines, [b"\n"] * (n - 1) + [b"\r\n"]),
        "crlf, one lone cr": joined(lines, [b"\r\n"] * half + [b"\r"] + [b"\r\n"] * (n - half - 1)),
        "alternating": joined(lines, [b"\r\n" if i % 2 else b"\n" for i in range(n)]),
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    with EvidenceStore(tmp_path / "e.duckdb") as s:
        yield s


def stored(store: EvidenceStore) -> list[dict[str, Any]]:
    cur = store.con.execute("SELECT * EXCLUDE (source_file) FROM messages ORDER BY source_row")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def load(tmp_path: Path, name: str, data: bytes, reader: Reader) -> tuple[Any, list[Any]]:
    folder = tmp_path / name.replace(" ", "_").replace(",", "")
    folder.mkdir()
    path = folder / ("message_trace.csv" if isinstance(reader, MessageTraceReader) else
                     "email_events.csv")  # fmt: skip
    path.write_bytes(data)
    with EvidenceStore(folder / "e.duckdb") as store:
        (report,) = store.ingest([(reader, path)], root=folder).files
        assert report.read == report.loaded + report.duplicates + report.rejected
        return report, stored(store)


# ----------------------------------------------------------------------------- detection
CASES = {
    b"a,b\nc,d\n": False,
    b"a,b\r\nc,d\r\n": False,
    b"a,b\r\nc,d": False,
    b'a,"two\nlines"\r\nc,d\r\n': False,  # an export's own line break inside a value
    b'a,"two\r\nlines"\nc,d\n': False,
    b'a,"x\ry"\nc,d\n': False,  # a lone CR inside a value
    b'a,"say ""hi""\nthere"\r\nc,d\r\n': False,  # escaped quotes keep the count even
    b"a,b\r\nc,d\n": True,
    b"a,b\nc,d\r\n": True,
    b"a,b\rc,d\r\n": True,
    b"a,b\r\nc,d\r": True,  # a lone CR as the last byte
    b'a,"x"\nc,d\r\n': True,
    b'a,"x"\r\n"y\nz",d\r\nc,d\n': True,
}


@pytest.mark.parametrize("chunk", [2, 3, 5, 8 << 20])
@pytest.mark.parametrize(("data", "mixed"), CASES.items(), ids=[repr(c) for c in CASES])
def test_mixed_line_endings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, mixed: bool, chunk: int
) -> None:
    """Small chunks put every CRLF, quote and CR across a chunk boundary somewhere."""
    monkeypatch.setattr(_tabular, "_LINE_CHUNK", chunk)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    survey = survey_lines(path)
    assert (survey.mixed, survey.longest) == (mixed, 0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8 << 20])
def test_the_copy_ends_every_line_with_lf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(_tabular, "_LINE_CHUNK", chunk)
    lines = csv_lines(EVENTS_HEADER, events_rows()[:20])
    unix = joined(lines, [b"\n"] * len(lines))
    for name, data in variants(lines).items():
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        copy, note = csv_text(TextFile(path, None, tmp_path), "f.csv")
        assert copy.path != path, name
        assert copy.path.read_bytes() == unix, name
        assert note == MIXED_LINE_ENDINGS


def test_a_file_with_one_line_ending_is_read_in_place(tmp_path: Path) -> None:
    lines = csv_lines(EVENTS_HEADER, events_rows()[:20])
    for end in (b"\n", b"\r\n"):
        path = tmp_path / "f.csv"
        path.write_bytes(joined(lines, [end] * len(lines)))
        text = TextFile(path, None, tmp_path)
        read, note = csv_text(text, "f.csv")
        assert (read.path, note) == (path, None)
        assert read.line_bytes == pytest.approx(len(path.read_bytes()) / len(lines))


# ----------------------------------------------------------------------------- through the store
@pytest.mark.parametrize(
    ("reader", "header", "records"),
    [
        (EmailEventsReader(), EVENTS_HEADER, events_rows()),
        (MessageTraceReader(), TRACE_HEADER, trace_rows()),
    ],
    ids=["email_events", "message_trace"],
)
def test_every_row_is_read_whatever_the_line_endings(
    tmp_path: Path, reader: Reader, header: list[str], records: list[list[str]]
) -> None:
    lines = csv_lines(header, records)
    base, expected = load(tmp_path, "lf", joined(lines, [b"\n"] * len(lines)), reader)
    assert (base.loaded, base.rejected, base.warnings) == (N, 0, [])
    crlf, rows = load(tmp_path, "crlf", joined(lines, [b"\r\n"] * len(lines)), reader)
    assert (crlf.loaded, crlf.rejected, crlf.warnings, rows) == (N, 0, [], expected)
    for name, data in variants(lines).items():
        report, rows = load(tmp_path, name, data, reader)
        assert (report.read, report.loaded, report.rejected, report.error) == (N, N, 0, None), name
        assert MIXED_LINE_ENDINGS in report.warnings, name
        assert rows == expected, name


def test_lost_records_refuse_the_file_instead_of_shortening_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: EvidenceStore
) -> None:
    """Should DuckDB lose the record boundaries anyway (here: the line endings are left
    mixed), the file is refused with its name, and the ingest goes on."""
    monkeypatch.setattr(_tabular, "survey_lines", lambda path: LineSurvey(False, 0))
    lines = csv_lines(EVENTS_HEADER, events_rows())
    broken = tmp_path / "email_events_joined.csv"
    broken.write_bytes(variants(lines)["crlf then lf"])
    good = tmp_path / "email_events_good.csv"
    good.write_bytes(joined(lines[:11], [b"\n"] * 11))
    reader = EmailEventsReader()
    first, second = store.ingest([(reader, broken), (reader, good)], root=tmp_path).files
    assert first.error is not None
    assert first.error.startswith("email_events_joined.csv: the CSV reader lost track of records")
    assert first.loaded == 0
    assert (second.loaded, second.error) == (10, None)
    assert store.con.execute("SELECT count(*) FROM messages").fetchall() == [(10,)]


def test_a_damaged_line_is_one_rejected_row_and_the_rest_is_read(
    tmp_path: Path, store: EvidenceStore
) -> None:
    """After a stray quote DuckDB reports errors from several places in the same line; that
    is one broken record, not lost ones, and must not refuse the file."""
    lines = csv_lines(EVENTS_HEADER, events_rows())
    lines[1000] = lines[1000].replace(b",", b',"', 4)
    path = tmp_path / "email_events.csv"
    path.write_bytes(joined(lines, [b"\n"] * len(lines)))
    (report,) = store.ingest([(EmailEventsReader(), path)], root=tmp_path).files
    assert (report.read, report.loaded, report.rejected, report.error) == (N, N - 1, 1, None)
    (reason,) = [r["reason"] for r in store.quarantine_rows()]
    assert reason.startswith("malformed CSV at line 1001:")
    # The premise: DuckDB did report that line from more than one place.
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE t AS SELECT * FROM read_csv('{path}', auto_detect = false,
            columns = {{{", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(EVENTS_HEADER)))}}},
            header = true, quote = '"', escape = '"', strict_mode = true,
            store_rejects = true, rejects_table = 'r', rejects_scan = 's')"""
    )
    [(starts,)] = con.execute("SELECT count(DISTINCT line_byte_position) FROM r").fetchall()
    assert starts > 1


# ----------------------------------------------------------------------------- long lines
@pytest.mark.parametrize("chunk", [16, 24, 8 << 20])
def test_the_longest_line_is_measured_when_a_window_has_no_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """With 4-byte windows every line of 8 bytes or more must be found and measured."""
    monkeypatch.setattr(_tabular, "_LINE_CHUNK", chunk)
    monkeypatch.setattr(_tabular, "_LINE_WINDOW", 4)
    cases = {
        b"ab\ncd\n": 2,
        b"abc\n" * 10: 3,
        b"ab\n" + b"x" * 8 + b"\ncd\n": 8,
        b"ab\n" + b"x" * 21 + b"\ncd\n" + b"y" * 9 + b"\n": 21,
        b"ab\r\n" + b"x" * 13 + b"\r\ncd\r\n": 13,
        b"ab\rcd\r" + b"x" * 10 + b"\r": 10,  # lone CRs only: no LF in any window
        b"ab\n" + b"z" * 30: 30,  # the last line, without a line break
    }
    for data, longest in cases.items():
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        survey = survey_lines(path)
        if longest >= 8:  # twice the window: must be found and measured
            assert survey.longest == longest, data
        else:  # may be found (a window without a break) but then measured exactly
            assert survey.longest in (0, longest), data


@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_line_longer_than_the_buffer_is_read_whole(
    tmp_path: Path, store: EvidenceStore, where: str
) -> None:
    lines = csv_lines(EVENTS_HEADER, events_rows())
    long = events_rows()[0]
    long[1], long[5] = "id-long", "x" * (9 << 20)  # unquoted: DuckDB dropped it silently
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="").writerow(long)
    at = 1500 if where == "middle" else len(lines)
    lines.insert(at, buf.getvalue().encode())
    path = tmp_path / "email_events.csv"
    path.write_bytes(joined(lines, [b"\n"] * len(lines)))
    (report,) = store.ingest([(EmailEventsReader(), path)], root=tmp_path).files
    assert (report.read, report.loaded, report.rejected, report.error) == (N + 1, N + 1, 0, None)
    (found,) = store.con.execute(
        "SELECT length(subject), source_row FROM messages WHERE network_message_id = 'id-long'"
    ).fetchall()
    assert found == (9 << 20, at)


def test_a_line_too_long_to_buffer_refuses_the_file_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: EvidenceStore
) -> None:
    monkeypatch.setattr(_tabular, "MAX_LINE_BYTES", 2 << 20)
    lines = csv_lines(EVENTS_HEADER, events_rows()[:10])
    long = events_rows()[0]
    long[5] = "x" * (3 << 20)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="").writerow(long)
    huge = tmp_path / "email_events_huge.csv"
    huge.write_bytes(joined([*lines, buf.getvalue().encode()], [b"\n"] * (len(lines) + 1)))
    good = tmp_path / "email_events_good.csv"
    good.write_bytes(joined(lines, [b"\n"] * len(lines)))
    first, second = store.ingest(
        [(EmailEventsReader(), huge), (EmailEventsReader(), good)], root=tmp_path
    ).files
    assert first.error == (
        "email_events_huge.csv: a line of 3 MB, longer than the 2 MB dsguard reads;"
        " nothing was read from the file"
    )
    assert (first.loaded, second.loaded, second.error) == (0, 10, None)


# ----------------------------------------------------------------------------- buffers
@pytest.mark.parametrize("chunk", [64, 8 << 20])
def test_the_survey_samples_how_long_lines_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Lines are counted in every ``_LINE_SAMPLE_EVERY``-th chunk: an estimate, exact for
    lines of one length; a file without a line feed has none."""
    monkeypatch.setattr(_tabular, "_LINE_CHUNK", chunk)
    path = tmp_path / "f.csv"
    path.write_bytes(b"x" * 31 + b"\n" + (b"y" * 15 + b"\n") * 5000)
    assert survey_lines(path).line_bytes == pytest.approx(16, rel=0.02)
    path.write_bytes(b"a,b\rc,d\r")
    assert survey_lines(path).line_bytes == 0


def test_buffers_hold_more_than_a_row_group_when_memory_allows() -> None:
    """A batch past a row group is not copied again to merge it (``BATCH_ROW_GROUPS``); the
    small default stays when lines are unknown, short, or too long for the memory limit."""
    gib = 1 << 30
    assert csv_buffer_bytes(666.5, gib) == 137 << 20  # the benchmark's 10M-row export
    assert csv_buffer_bytes(0, gib) == CSV_BUFFER_BYTES
    assert csv_buffer_bytes(10, gib) == CSV_BUFFER_BYTES  # under 4 MB anyway
    assert csv_buffer_bytes(666.5, 512 << 20) == CSV_BUFFER_BYTES  # a sixth of the limit
    assert csv_buffer_bytes(666.5, 0) == CSV_BUFFER_BYTES  # a limit DuckDB spelt oddly


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("1GB", 953.6 * (1 << 20)), ("3GB", 2.7 * (1 << 30)), ("200KiB", 200 << 10)],
)
def test_the_memory_limit_is_read_in_bytes(limit: str, expected: float) -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = ?", [limit])
    assert memory_limit_bytes(con) == int(expected)


def test_rows_keep_their_lines_across_buffers_past_a_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: EvidenceStore
) -> None:
    """600,000 short lines are read in several buffers of about 1.75 row groups each, one
    line broken inside a later buffer: every row keeps its own line, in order, as with the
    small buffers, and the broken line is one rejected row."""
    sizes = returns_of(monkeypatch, _tabular, "csv_buffer_bytes")
    rows, broken = 600_000, 450_000  # the broken line comes after row id-449999
    path = tmp_path / "email_events.csv"
    with path.open("w", newline="") as fh:
        fh.write("Timestamp,NetworkMessageId,RecipientEmailAddress,SenderFromAddress\n")
        for i in range(rows):
            if i == broken:
                fh.write("2025-01-06T08:00:00Z,id-broken,one field short\n")
            fh.write(
                f"2025-01-06T08:{i % 60:02d}:00Z,id-{i},u{i % 977}@contoso.com,ceo@contoso.com\n"
            )
    (report,) = store.ingest([(EmailEventsReader(), path)], root=tmp_path).files
    assert (report.read, report.loaded, report.rejected, report.error) == (rows + 1, rows, 1, None)
    assert sizes and CSV_BUFFER_BYTES < sizes[0] < path.stat().st_size / 2
    [(misplaced,)] = store.con.execute(
        """SELECT count(*) FROM messages WHERE network_message_id <> 'id-' ||
               (source_row - CASE WHEN source_row > ? THEN 2 ELSE 1 END)""",
        [broken + 1],
    ).fetchall()
    assert misplaced == 0
    (reason,) = [r["reason"] for r in store.quarantine_rows()]
    assert reason.startswith(f"malformed CSV at line {broken + 2}:")
