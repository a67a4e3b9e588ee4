"""The DuckDB fast path of the sign-ins reader stages exactly what the Python path stages.

Every test stages a file twice, through ``_fast_stage`` and through the Python path alone,
and compares all columns of all rows and the warnings; and checks the fast path took the
file (or left it to the Python path: damage, other shapes, anything it cannot vouch for).
"""

from __future__ import annotations

import copy
import gzip
import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dsguard.evidence.store import EvidenceStore
from dsguard.sources import signins
from dsguard.sources.signins import SignInsReader

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "signins"


def _pages() -> list[dict[str, Any]]:
    text = (FIX / "signins_graph_pages.json").read_text()
    decoder, pos, pages = json.JSONDecoder(), 0, []
    while pos < len(text.rstrip()):
        page, pos = decoder.raw_decode(text, pos)
        pages.append(page)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return pages


PAGES = _pages()
SIGNINS = [s for page in PAGES for s in page["value"]]


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    return con.execute(f'SELECT * FROM "{table}" ORDER BY _row').fetchall()


def _compare(
    path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool = True
) -> list[tuple[Any, ...]]:
    """Stage ``path`` both ways; assert the fast path took it (or not) and, if it did, that
    rows and warnings are the Python path's. Returns the Python path's rows."""
    con = duckdb.connect()
    warnings = signins._fast_stage(con, path, "fast")
    assert (warnings is not None) == fast, "fast path taken" if warnings is not None else "not"
    with monkeypatch.context() as m:
        m.setattr(signins, "_fast_stage", lambda *_: None)
        slow = SignInsReader().stage(con, path, "slow")
    if warnings is not None:
        assert warnings == slow.warnings
        assert _rows(con, "fast") == _rows(con, "slow")
    return _rows(con, "slow")


def _lines(path: Path, docs: list[Any], newline: str = "\n") -> Path:
    path.write_text(newline.join(json.dumps(d, ensure_ascii=False) for d in docs) + newline)
    return path


def _variant(**change: Any) -> dict[str, Any]:
    rec = copy.deepcopy(SIGNINS[0])
    rec.update(change)
    return rec


# ---------------------------------------------------------------------------- shapes
def test_fast_path_knows_every_field() -> None:
    """A field added to ``map_signin`` but not to ``_COLS`` would silently switch the fast
    path off (``_FAST_COMPLETE``); this says so out loud."""
    assert signins._FAST_COMPLETE


def test_pages_one_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _compare(_lines(tmp_path / "signins.json", PAGES), monkeypatch)
    assert len(rows) == 5


@pytest.mark.parametrize(
    "name",
    ["signins_graph_pages.json", "signins_graph_array.json"],  # pretty-printed, an array
)
def test_fixture_shapes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(_compare(FIX / name, monkeypatch)) == 5


def test_signins_one_a_line_and_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _compare(_lines(tmp_path / "signins.jsonl", SIGNINS), monkeypatch)
    array = tmp_path / "signins_array.json"
    array.write_text(json.dumps(SIGNINS, indent=2))
    _compare(array, monkeypatch)


def test_gzip_crlf_bom_nulls_and_empty_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [None, PAGES[0], {"@odata.context": "x", "value": []}, None,
            {"value": None}, PAGES[1]]
    text = "\n\n".join(json.dumps(d) for d in docs).replace("\n", "\r\n")
    path = tmp_path / "signins.json.gz"
    path.write_bytes(gzip.compress(("\ufeff" + text + "\r\n").encode()))
    assert len(_compare(path, monkeypatch)) == 5


def test_signins_gzip_crlf_bom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "\r\n".join(json.dumps(s) for s in [*SIGNINS, *AWKWARD[:3]]) + "\r\n"
    path = tmp_path / "signins.jsonl.gz"
    path.write_bytes(gzip.compress(("\ufeff" + text).encode()))
    assert len(_compare(path, monkeypatch)) == 8


def test_sentinel_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [{k[0].upper() + k[1:]: v for k, v in s.items()} for s in SIGNINS]
    rows = _compare(_lines(tmp_path / "signins.jsonl", docs), monkeypatch)
    assert all(r[-2] is None for r in rows)  # no rejects


# ---------------------------------------------------------------------------- values
AWKWARD = [
    _variant(ipAddress="2001:DB8:0:0::1"), _variant(ipAddress=" 203.0.113.9 "),
    _variant(ipAddress="198.51.100.300"), _variant(ipAddress="01.2.3.4"),
    _variant(createdDateTime="2026-03-02T10:15:12+01:00"),
    _variant(createdDateTime="2026-03-02T09:15:12.1234567Z"),
    _variant(createdDateTime="3/2/2026, 9:15:12 AM"), _variant(createdDateTime="yesterday"),
    _variant(createdDateTime="2026-02-30T00:00:00Z"), _variant(createdDateTime=""),
    _variant(createdDateTime="2026-03-02T24:00:00Z"), _variant(createdDateTime=None),
    _variant(id=None), _variant(id="  "), _variant(userPrincipalName="ÉLODIE@Contoso.com"),
    _variant(userPrincipalName=" Padded@Contoso.com\t"), _variant(userDisplayName="\u00a0x\u3000"),
    _variant(userDisplayName=42), _variant(appDisplayName=True), _variant(userId=1.5),
    _variant(isInteractive="yes"), _variant(isInteractive=None),
    _variant(status={"errorCode": "50126", "failureReason": " x "}),
    _variant(status={"errorCode": 9223372036854775807, "failureReason": None}),
    _variant(status=None), _variant(conditionalAccessStatus=1),
    _variant(conditionalAccessStatus=7), _variant(location={"city": "Zürich"}),
    _variant(deviceDetail={"operatingSystem": "quote\"and\\back", "browser": "a\nb"}),
]


def test_values_python_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values SQL leaves to the Python converters, rejects and hashed keys included."""
    rows = _compare(_lines(tmp_path / "signins.jsonl", AWKWARD), monkeypatch)
    rejects = [r[-2] for r in rows if r[-2]]
    assert "line 3: invalid IP address '198.51.100.300'" in rejects
    assert "line 8: unparseable timestamp 'yesterday'" in rejects
    assert "line 10: no timestamp (createdDateTime / TimeGenerated)" in rejects
    assert any(str(r[0]).startswith("sha256:") for r in rows)


def test_rejects_in_pages_name_page_line_and_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [PAGES[0], None, {"value": [SIGNINS[0], None, _variant(ipAddress="x")]}]
    rows = _compare(_lines(tmp_path / "signins.json", docs), monkeypatch)
    assert [r[-2] for r in rows if r[-2]] == [
        "page 2 (line 3) item 2: not a sign-in object (a JSON null)",
        "page 2 (line 3) item 3: invalid IP address 'x'",
    ]
    raw = [r[-3] for r in rows if r[-2]]
    assert raw[0] == "null" and json.loads(raw[1])["ipAddress"] == "x"
    assert all(r[-3] is None for r in rows if not r[-2])  # _raw only for rejects


def test_rejects_outside_json_lines_go_to_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only JSON lines give a document's line without parsing; rejects elsewhere are read
    by the Python path (accepted oddities are not)."""
    path = tmp_path / "signins.json"
    path.write_text(json.dumps([SIGNINS[0], _variant(ipAddress="2001:db8::1")]))
    _compare(path, monkeypatch)
    path.write_text(json.dumps([SIGNINS[0], _variant(ipAddress="x")]))
    rows = _compare(path, monkeypatch, fast=False)
    assert rows[1][-2] == "line 1: invalid IP address 'x'"


def test_randomised_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded random files mixing plain and awkward values in the fast path's shapes."""
    rng = random.Random(7)
    plain = SIGNINS[:4]
    for n in range(12):
        recs = [rng.choice(AWKWARD) if rng.random() < 0.3 else rng.choice(plain)
                for _ in range(rng.randrange(1, 40))]
        if n % 2:
            docs: list[Any] = [{"@odata.context": "x", "value": recs[i:i + 7]}
                               for i in range(0, len(recs), 7)]
        else:
            docs = recs
        _compare(_lines(tmp_path / f"signins_{n}.json", docs), monkeypatch)


# ---------------------------------------------------------------------------- fallback
@pytest.mark.parametrize(
    "text",
    [
        '{"value": [{"ipAddress": "1.1.1.1", "IPAddress": "2.2.2.2", "id": "a"}]}\n',
        '{"id": "a", "ipAddress": "1.1.1.1"}\n{"id": "b", "IP_address": "2.2.2.2"}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z", "ipAddress": "1.1.1.1",'
        ' "ipAddress": "2.2.2.2"}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z",}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z", "n": nan}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z"}\n\x0c\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z"}\n{"id": "b", "createdDate',
        '{"tables": [{"columns": [{"name": "Id"}], "rows": [["a"]]}]}\n',
        '{"schema": [], "results": [{"Id": "a"}]}\n',
        '{"records": [{"time": "2026-03-02T09:15:12Z", "category": "SignInLogs",'
        ' "properties": {"id": "a"}}]}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z", "location": "Leeds, GB"}\n',
        '{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z", "status": "{broken"}\n',
        '[{"id": "a"}]\n[{"id": "b"}]\n',
        '[{"id": "a", "createdDateTime": "2026-03-02T09:15:12Z"},\n',
        '"just text"\n',
    ],
)
def test_left_to_python(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "signins.jsonl"
    path.write_text(text)
    _compare(path, monkeypatch, fast=False)


def test_mixed_and_damaged_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("signins_lines.jsonl", "signins_graph_truncated.json",
                 "signins_diagnostic_settings.json"):
        _compare(FIX / name, monkeypatch, fast=False)


def test_utf16_is_left_to_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "signins.json"
    path.write_bytes(json.dumps(PAGES[0]).encode("utf-16"))
    _compare(path, monkeypatch, fast=False)


def test_text_that_only_looks_lenient_stays_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [_variant(status={"errorCode": 1, "failureReason": "a, inf [nan,] :Infinity"}),
            _variant(location={"city": "x", "geoCoordinates": {"latitude": float("nan")}})]
    _compare(_lines(tmp_path / "signins.jsonl", docs), monkeypatch)


def test_replacement_characters_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signins, "_PROBE_CHUNK", 7)  # U+FFFD across chunk boundaries
    docs = [_variant(userDisplayName="\ufffd\ufffd x \ufffd") for _ in range(3)]
    path = _lines(tmp_path / "signins.jsonl", docs)
    con = duckdb.connect()
    assert signins._fast_stage(con, path, "fast") == [
        "9 undecodable characters replaced with U+FFFD"
    ]
    _compare(path, monkeypatch)


# ---------------------------------------------------------------------------- store
def test_store_ingest_through_both_paths(tmp_path: Path) -> None:
    """A file the fast path gives up on (DuckDB fails to parse it) must not abort the
    store's transaction: the next file still loads, and fast-path rejects quarantine."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    broken = bundle / "signins_a.jsonl"
    broken.write_text(json.dumps(SIGNINS[0]) + '\n{"id": "cut", "createdDate\n')
    good = _lines(bundle / "signins_b.jsonl", [*SIGNINS[1:], _variant(id="z", ipAddress="x")])
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        summary = store.ingest([(SignInsReader(), p) for p in (broken, good)], root=bundle)
        reports = [(f.read, f.loaded, f.rejected, f.error) for f in summary.files]
        assert reports == [(2, 1, 1, None), (5, 3, 1, None)]  # one overlap with file a
        quarantine = list(store.quarantine_rows())
    assert [q["reason"] for q in quarantine][-1] == "line 5: invalid IP address 'x'"
    assert json.loads(quarantine[-1]["raw"])["id"] == "z"


def test_many_pages_one_per_line_past_the_page_limit_stay_on_the_fast_path(
    tmp_path: Path,
) -> None:
    """A large Graph export is many pages, one per line, together far over the size one
    document may have. Read as JSON lines, it takes the fast path; the slicer for one page
    too big for a document looks only at the file's head and tail, so a file of many pages
    must never reach it first (that sent a 457 MB export down the Python path, 7x slower)."""
    pages, per_page, n = 0, 2_000, 0
    path = tmp_path / "signins.json"
    with path.open("w", encoding="utf-8") as fh:
        while path.stat().st_size <= signins._FAST_MAX_OBJECT:
            value = [_variant(id=f"id-{n + i}") for i in range(per_page)]
            page = {"@odata.context": "https://graph/$metadata#auditLogs/signIns",
                    "value": value, "@odata.nextLink": f"https://graph/next?page={pages}"}
            fh.write(json.dumps(page) + "\n")
            fh.flush()
            n, pages = n + per_page, pages + 1
    assert pages > 1
    con = duckdb.connect()
    assert signins._fast_stage(con, path, "fast") == []
    assert con.execute('SELECT count(*) FROM "fast"').fetchone() == (n,)


# ---------------------------------------------------------------------------- one big page
@pytest.fixture
def big_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any page "too big for DuckDB", so its value array is sliced out."""
    monkeypatch.setattr(signins, "_FAST_MAX_OBJECT", 0)
    first_keys = signins._FastJson._first_keys

    def refuse(self: signins._FastJson) -> list[str]:
        if self.fmt != "array":
            raise duckdb.InvalidInputException("maximum_object_size exceeded")
        return first_keys(self)

    monkeypatch.setattr(signins._FastJson, "_first_keys", refuse)


@pytest.mark.usefixtures("big_page")
def test_one_big_page_without_nulls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = {"value": [*SIGNINS, _variant(ipAddress="x")], "@odata.count": 6}
    path = tmp_path / "signins.json"
    path.write_text(json.dumps(page))
    rows = _compare(path, monkeypatch)
    assert [r[-2] for r in rows if r[-2]] == ["page 1 (line 1) item 6: invalid IP address 'x'"]


@pytest.mark.usefixtures("big_page")
@pytest.mark.parametrize("indent", [None, 2])
def test_one_big_page_is_sliced(
    indent: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = {"@odata.context": "https://graph/$metadata#auditLogs/signIns",
            "value": [*SIGNINS, None, _variant(ipAddress="x"), _variant(id=None)],
            "@odata.nextLink": "https://graph/next?$skiptoken=a]b"}
    path = tmp_path / "signins.json"
    path.write_text("\n\n" + json.dumps(page, indent=indent) + "\n")
    rows = _compare(path, monkeypatch)
    assert [r[-2] for r in rows if r[-2]] == [
        "page 1 (line 3) item 6: not a sign-in object (a JSON null)",
        "page 1 (line 3) item 7: invalid IP address 'x'",
    ]


@pytest.mark.usefixtures("big_page")
@pytest.mark.parametrize(
    "text",
    [
        '{"@odata.context": "x", "value": [{"id": "a"}], "other": 1}',  # not only @ keys
        '{"value": [{"id": "a"}], "value": [{"id": "b"}]}',
        '{"value": [{"id": "a"}]} {"value": []}',
        '{"value": [{"id": "a"}, ]}',
        '{"value": [{"id": "a"}]',
    ],
)
def test_big_page_lookalikes_go_to_python(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "signins.json"
    path.write_text(text)
    _compare(path, monkeypatch, fast=False)


def test_files_prepared_ahead_stage_what_they_would_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store announces the next file (``look_ahead``) and the reader prepares it on a
    thread: each file is prepared once, the rows are those of preparing it when staged,
    and a file rewritten after it was prepared is read as it is now."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    files = []
    for n in range(4):
        page = {"value": [_variant(id=f"{n}-{i}", ipAddress="x" if i == 2 else s["ipAddress"])
                          for i, s in enumerate(SIGNINS)]}
        files.append(bundle / f"signins_{n}.json")
        files[-1].write_text(json.dumps(page))
    # A pool of its own: a preparation this test leaves behind (the rewritten file's old
    # one) must not outlive it in the module's.
    monkeypatch.setattr(signins, "_PREPARED", {})
    prepared: list[str] = []
    prepare = signins._prepare

    def spy(con: Any, path: Path) -> Any:
        prepared.append(path.name)
        return prepare(con, path)

    monkeypatch.setattr(signins, "_prepare", spy)

    def ingest(store_path: Path) -> tuple[list[Any], list[Any], list[Any]]:
        with EvidenceStore(store_path) as store:
            summary = store.ingest([(SignInsReader(), p) for p in files], root=bundle)
            rows = store.con.execute("SELECT * FROM signins").fetchall()
            return ([(f.read, f.loaded, f.rejected) for f in summary.files], rows,
                    [q["reason"] for q in store.quarantine_rows()])

    ahead = ingest(tmp_path / "ahead.duckdb")
    assert sorted(prepared) == [f.name for f in files]  # once each
    assert ahead[0] == [(5, 4, 1)] * 4
    with monkeypatch.context() as m:
        m.setattr(SignInsReader, "look_ahead", lambda *_: None)
        assert ingest(tmp_path / "staged.duckdb") == ahead

    con = duckdb.connect()
    SignInsReader().look_ahead(con, files[0])
    signins._PREPARED[signins._stat_key(files[0])].result()
    files[0].write_text(json.dumps({"value": [_variant(id="rewritten")]}))
    assert signins._fast_stage(con, files[0], "now") == []
    assert con.execute("SELECT signin_id FROM now").fetchall() == [("rewritten",)]
    for stale in signins._PREPARED.values():
        stale.result().close()
