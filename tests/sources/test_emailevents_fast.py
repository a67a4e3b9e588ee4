"""The DuckDB path for JSON lines of EmailEvents rows stages exactly what the Python path does.

Every test stages a file twice, through the reader as it is and with the DuckDB path switched
off, and compares every column of every staged row and the warnings; and checks which path
took the file: DuckDB for the plain shapes, Python for anything DuckDB would read otherwise.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.spies import returns_of

from dsguard.sources import emailevents
from dsguard.sources.emailevents import EmailEventsReader
from dsguard.synth import SynthConfig, generate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email_events"
ROWS = [json.loads(line) for line in (FIXTURES / "email_events_rows.jsonl").read_text().splitlines()]
STREAM = [
    json.loads(line) for line in (FIXTURES / "email_events_stream.jsonl").read_text().splitlines()
]
# A row as collect writes it: every column, nulls included, integers as numbers.
FULL = {**STREAM[0]["properties"]}
for _key in ("To", "Cc"):  # the streaming API's arrays are not in a hunting row
    del FULL[_key]


def _stage(
    path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool = True
) -> list[tuple[Any, ...]]:
    """Stage ``path`` both ways; assert which path took it and that both staged the same.
    Returns the staged rows."""
    con = duckdb.connect()
    with monkeypatch.context() as m:
        layouts = returns_of(m, emailevents, "stage_json_lines")
        quick = EmailEventsReader().stage(con, path, "quick")
    taken = [layout is not None for layout in layouts]
    assert taken == [fast], "DuckDB path taken" if taken == [True] else "Python path taken"
    with monkeypatch.context() as m:
        m.setattr(emailevents, "stage_json_lines", lambda *_: None)
        slow = EmailEventsReader().stage(con, path, "slow")
    assert quick.warnings == slow.warnings
    # Numbering a streamed stage re-adds its number columns last: compare by name.
    columns = ", ".join(f'"{c}"' for c, *_ in con.execute('DESCRIBE "slow"').fetchall())
    staged = con.execute(f'SELECT {columns} FROM "slow" ORDER BY _row').fetchall()
    assert con.execute(f'SELECT {columns} FROM "quick" ORDER BY _row').fetchall() == staged
    return staged


def _lines(path: Path, docs: list[Any], newline: str = "\n", **dumps: Any) -> Path:
    path.write_text(newline.join(json.dumps(d, **dumps) for d in docs) + newline)
    return path


def _row(n: int, **change: Any) -> dict[str, Any]:
    row = {**FULL, "NetworkMessageId": f"{n:08d}-1d2a-4c3b-9e8f-0a1b2c3d4e5f", **change}
    return {k: v for k, v in row.items() if v is not _DROP}


_DROP = object()


# ---------------------------------------------------------------------------- DuckDB's
def test_fixture_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "email_events_rows.jsonl"
    path.write_bytes((FIXTURES / "email_events_rows.jsonl").read_bytes())
    assert len(_stage(path, monkeypatch)) == 2


def test_collect_rows_crlf_bom_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``collect`` writes (every column, nulls, numbers, booleans), with the quirks a
    copied file picks up: a BOM, CRLF and blank lines, which neither path counts."""
    docs = [_row(n, IsFirstContact=n % 2 == 0, EmailClusterId=9_999_999_999_999_999_999 - n)
            for n in range(40)]
    path = tmp_path / "email_events_collect.jsonl"
    body = "\r\n".join(json.dumps(d, ensure_ascii=False) for d in docs)
    body = body.replace(docs[3]["NetworkMessageId"] + '"', docs[3]["NetworkMessageId"] + '" ')
    path.write_bytes(b"\xef\xbb\xbf" + body.replace("\r\n", "\r\n\r\n  \r\n", 1).encode())
    con = duckdb.connect()
    EmailEventsReader().stage(con, path, "s")
    numbers = con.execute('SELECT _row, source_row FROM "s" ORDER BY _row LIMIT 3').fetchall()
    assert numbers == [(1, 1), (2, 2), (3, 3)]  # the blank lines are not rows
    assert len(_stage(path, monkeypatch)) == 40


def test_keys_that_come_and_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows without some columns, unknown columns first met later, other key order, and a
    row the normalisation rejects: its quarantine copy lists the columns in the order the
    Python path first met them."""
    docs = [
        _row(1, Subject=_DROP, Connectors=_DROP),
        _row(2, Extra_One="x"),
        {"Zeta": 1, **_row(3, Timestamp="yesterday")},  # rejected: no time
        _row(4, Subject="Re: [EXT] a, b}", Extra_Two=None),
        dict(reversed(list(_row(5).items()))),
    ]
    staged = _stage(_lines(tmp_path / "email_events_x.jsonl", docs), monkeypatch)
    assert len(staged) == 5
    con = duckdb.connect()
    path = _lines(tmp_path / "email_events_y.jsonl", docs)
    result = EmailEventsReader().stage(con, path, "s")
    assert result.warnings[0].endswith("Extra_One, Zeta, Extra_Two")
    rejected = con.execute('SELECT _raw FROM "s" WHERE _reject IS NOT NULL').fetchall()
    assert len(rejected) == 1, rejected  # the row without a time
    assert list(json.loads(rejected[0][0]))[-3:] == ["Extra_One", "Zeta", "Extra_Two"]


def test_unicode_escapes_and_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [_row(1, Subject="Réunion 😀 \"quoted\" \\ tab\tend", SenderDisplayName="Zoë")]
    _stage(_lines(tmp_path / "email_events_a.jsonl", docs), monkeypatch)  # \\u escapes
    plain = _lines(tmp_path / "plain.jsonl", docs, ensure_ascii=False)
    packed = tmp_path / "email_events_b.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    _stage(packed, monkeypatch)


def test_many_rows_keep_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough rows for DuckDB to read the file in parallel pieces."""
    docs = [_row(n, Subject=f"message {n}" + "x" * (n % 300)) for n in range(30_000)]
    docs[17_000]["Timestamp"] = "not a time"
    staged = _stage(_lines(tmp_path / "email_events_many.jsonl", docs), monkeypatch)
    assert len(staged) == 30_000


# ---------------------------------------------------------------------------- Python's
@pytest.mark.parametrize(
    "line",
    [
        '{"Timestamp": "2025-01-06T08:00:00Z", "NetworkMessageId": "x",}',  # trailing comma
        '{"Timestamp": "2025-01-06T08:00:00Z", "NetworkMessageId": "x"',  # cut short
        "[1, 2]",
        "{}",
        '{"Timestamp": "2025-01-06T08:00:00Z", "UrlCount": 1.0}',  # a float
        '{"Timestamp": "2025-01-06T08:00:00Z", "UrlCount": NaN}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "UrlCount": 123456789012345678901}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "To": [{"a": 1}]}',  # an object
        '{"Timestamp": "2025-01-06T08:00:00Z", "AdditionalFields": {"a": "b"}}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "UrlCount": -1234567890123456789}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "To": ["a\\"b"]}',  # an escape in an array
        '{"Timestamp": "2025-01-06T08:00:00Z", "To": [1.5]}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "To": ["a", 2e3]}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "To": [12345678901234567890]}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "Subject": "a", "Subject": "b"}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "subject": "a"}',  # case of another line's key
        '{"Timestamp": "2025-01-06T08:00:00Z", "X-Header": "a"}',  # a key outside [A-Za-z0-9_]
        '{"Timestamp": "2025-01-06T08:00:00Z", "Subject": "\\ud800"}',  # a lone surrogate
        '{"Timestamp": "2025-01-06T08:00:00Z", "Subject": "a\\u0000b"}',
        '{"Timestamp": "2025-01-06T08:00:00Z", "Subject": "tab\there"}',  # a raw control char
    ],
)
def test_lines_left_to_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    text = json.dumps(ROWS[0]) + "\n" + line + "\n" + json.dumps(ROWS[1]) + "\n"
    path = tmp_path / "email_events_odd.jsonl"
    path.write_text(text)
    _stage(path, monkeypatch, fast=False)


def test_arrays_of_plain_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [
        _row(1, To=["a@b.c", "d@mail2.example"], Cc=[]),  # a digit before a dot is no float
        _row(2, To=[1, -0, -7, True, None], Cc=["x", "o365.example"]),
    ]
    assert len(_stage(_lines(tmp_path / "email_events_to.jsonl", docs), monkeypatch)) == 2


# ---------------------------------------------------------------------------- envelopes
def _envelopes(*rows: dict[str, Any], **outer: Any) -> list[dict[str, Any]]:
    base = {k: v for k, v in STREAM[0].items() if k != "properties"}
    return [{**base, **outer, "properties": row} for row in rows]


def test_streaming_envelopes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "email_events_stream.jsonl"
    path.write_bytes((FIXTURES / "email_events_stream.jsonl").read_bytes())  # CRLF
    assert len(_stage(path, monkeypatch)) == 2


def test_records_of_other_tables_are_rejected_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [
        *_envelopes(_row(1)),
        *_envelopes(_row(2, Url="https://x.example"), category="AdvancedHunting-EmailUrlInfo"),
        *_envelopes(_row(3), category="ADVANCEDHUNTING-EMAILEVENTS"),
        *_envelopes(_row(4), category=None),
    ]
    staged = _stage(_lines(tmp_path / "email_events_mixed.jsonl", docs, "\r\n"), monkeypatch)
    assert len(staged) == 4


@pytest.mark.parametrize(
    "docs",
    [
        _envelopes(_row(1, Timestamp=_DROP)),  # the envelope's time stands in
        [*_envelopes(_row(1)), _row(2)],  # envelopes and plain rows
        [{"Properties": _row(1)}],  # another spelling
        [{"properties": _row(1), "Category": "x"}],
        [*_envelopes(_row(1)), {"properties": None, "time": "2025-01-06T08:00:00Z"}],
        _envelopes(_row(1), category="Advanced'Hunting"),  # Python's repr quotes it otherwise
        _envelopes(_row(1), category=5),
    ],
)
def test_envelopes_left_to_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Any]
) -> None:
    _stage(_lines(tmp_path / "email_events_odd.jsonl", docs), monkeypatch, fast=False)


def test_synthetic_streaming_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthetic tenant's streaming-API shape, a few thousand rows."""
    generate(tmp_path / "b", SynthConfig(users=30, days=3, seed=5, shape="jsonl"))
    staged = _stage(tmp_path / "b" / "email_events.jsonl", monkeypatch)
    assert len(staged) > 1000


def test_a_document_is_not_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runHuntingQuery answer never reaches the DuckDB path: its first line is no object."""
    path = tmp_path / "email_events_hunting.json"
    path.write_bytes((FIXTURES / "email_events_hunting.json").read_bytes())
    con = duckdb.connect()
    with monkeypatch.context() as m:
        m.setattr(emailevents, "stage_json_lines", pytest.fail)
        EmailEventsReader().stage(con, path, "s")


def test_the_next_file_is_surveyed_ahead_once_and_known_files_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """collect's files are surveyed one ahead, on another thread, each once; a second ingest
    of the same files surveys none of them (they are skipped as already read)."""
    from dsguard.evidence.store import EvidenceStore
    from dsguard.sources import _json_lines

    rows = [json.loads(line) for line in (FIXTURES / "email_events_rows.jsonl").open()]
    files = []
    for n in range(4):
        path = tmp_path / f"email_events_{n}.jsonl"
        path.write_text(
            "".join(json.dumps({**r, "NetworkMessageId": f"{n}-{i}"}) + "\n" for i, r in enumerate(rows))
        )
        files.append(path)
    surveyed: list[str] = []
    survey = _json_lines._survey

    def spy(side: duckdb.DuckDBPyConnection, path: Path) -> Any:
        surveyed.append(path.name)
        return survey(side, path)

    monkeypatch.setattr(_json_lines, "_survey", spy)
    ahead: list[str] = []
    survey_ahead = _json_lines.survey_ahead
    monkeypatch.setattr(
        emailevents,
        "survey_ahead",
        lambda con, path: (ahead.append(path.name), survey_ahead(con, path))[1],
    )
    reader = EmailEventsReader()
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        first = store.ingest([(reader, f) for f in files], root=tmp_path).files
        assert [r.loaded for r in first] == [len(rows)] * 4
        assert sorted(surveyed) == [f.name for f in files]  # once each
        assert ahead == [f.name for f in files[1:]]  # the first is surveyed when staged
        surveyed.clear()
        ahead.clear()
        again = store.ingest([(reader, f) for f in files], root=tmp_path).files
        assert all(r.skipped for r in again)
        assert (surveyed, ahead) == ([], [])
