"""Sign-in logs: Graph pages in every packing, Sentinel and portal CSVs, and damage."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsguard.evidence.model import FileReport
from dsguard.evidence.store import EvidenceStore
from dsguard.sources import signins
from dsguard.sources.signins import SignInsReader, map_signin, parse_timestamp

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "signins"
SCANNER_ID = "b1c2d3e4-0f1e-4d2c-8b3a-49586a7b8c01"


def _bundle(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        dst = tmp_path / "bundle" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIX / name, dst)
        out.append(dst)
    return out


def _ingest(tmp_path: Path, *paths: Path) -> tuple[EvidenceStore, list[FileReport]]:
    store = EvidenceStore(tmp_path / "e.duckdb")
    summary = store.ingest([(SignInsReader(), p) for p in paths], root=tmp_path / "bundle")
    for f in summary.files:
        assert f.read == f.loaded + f.duplicates + f.rejected, f
    return store, summary.files


def _signins(store: EvidenceStore) -> dict[str, dict[str, Any]]:
    cur = store.con.execute("SELECT * FROM signins")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _reasons(store: EvidenceStore) -> list[str]:
    return [q["reason"] for q in _quarantine(store)]


def _quarantine(store: EvidenceStore) -> list[dict[str, Any]]:
    return list(store.quarantine_rows())


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------------------- Graph JSON
def test_graph_pages_back_to_back(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_graph_pages.json"))
    # page 1 has 3 sign-ins, page 2 repeats the last one (paging overlap) and adds one
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (5, 4, 1, 0)
    assert rep.error is None and rep.warnings == []
    rows = _signins(store)
    scan = rows[SCANNER_ID]
    assert scan["ts"] == _utc(2026, 3, 2, 9, 17, 40)
    assert scan["user_principal_name"] == "scanner@contoso.com"  # lower-cased
    assert scan["client_app_used"] == "Authenticated SMTP"
    assert scan["error_code"] == 50126
    assert scan["failure_reason"].startswith("Error validating credentials")
    assert (scan["country"], scan["city"]) == ("GB", "Leeds")
    assert scan["app_id"] == "00000002-0000-0ff1-ce00-000000000000"
    assert scan["is_interactive"] is True
    assert scan["source_file"] == "signins_graph_pages.json"
    megan = rows["c7d8e9f0-1a2b-4c3d-9e8f-7a6b5c4d3e2f"]
    assert megan["ip_address"] == "2001:db8:4:1::2c"
    assert (megan["operating_system"], megan["browser"]) == ("Windows10", "Edge 122.0.0")
    adele = rows["66ea54eb-6301-4ee5-be62-ff5a759b0100"]
    assert adele["conditional_access_status"] == "success"
    assert adele["error_code"] == 0
    assert rows["d4e5f6a7-b8c9-4dab-8cde-f0123456789a"]["error_code"] == 50074


def test_graph_array_of_pages_equals_back_to_back(tmp_path: Path) -> None:
    a, _ = _ingest(tmp_path / "a", *_bundle(tmp_path / "a", "signins_graph_pages.json"))
    b, [rep] = _ingest(tmp_path / "b", *_bundle(tmp_path / "b", "signins_graph_array.json"))
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (5, 4, 1, 0)
    strip = {"source_file"}
    left = {k: {c: v for c, v in r.items() if c not in strip} for k, r in _signins(a).items()}
    right = {k: {c: v for c, v in r.items() if c not in strip} for k, r in _signins(b).items()}
    assert left == right


def test_truncated_page_keeps_complete_signins(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_graph_truncated.json"))
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (3, 2, 0, 1)
    assert set(_signins(store)) == {"66ea54eb-6301-4ee5-be62-ff5a759b0100", SCANNER_ID}
    [q] = _quarantine(store)
    assert "truncated JSON" in q["reason"]
    assert q["raw"].startswith("{") and "d4e5f6a7-b8c9-4dab-8cde-f0123456789a" in q["raw"]


@pytest.mark.parametrize("name", ["signins_graph_pages.json", "signins_graph_truncated.json"])
def test_huge_page_is_walked_item_by_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A page bigger than _BIG is streamed; the result must not change."""
    plain, plain_rep = _ingest(tmp_path / "a", *_bundle(tmp_path / "a", name))
    monkeypatch.setattr(signins, "_BIG", 64)
    walked, walked_rep = _ingest(tmp_path / "b", *_bundle(tmp_path / "b", name))
    assert [(r.read, r.loaded, r.duplicates, r.rejected) for r in walked_rep] == [
        (r.read, r.loaded, r.duplicates, r.rejected) for r in plain_rep
    ]
    assert set(_signins(walked)) == set(_signins(plain))


def test_json_lines_with_damage_and_mixed_time_zones(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_lines.jsonl"))
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (10, 6, 0, 4)
    rows = _signins(store)
    # +01:00, -05:00 and no offset at all all land in UTC
    assert rows[SCANNER_ID]["ts"] == _utc(2026, 3, 2, 9, 17, 40)
    assert rows["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b"]["ts"] == _utc(2026, 3, 2, 9, 30)
    assert rows["f0e1d2c3-b4a5-4968-8776-655443322110"]["ts"] == _utc(2026, 3, 2, 11, 0)
    assert "d4e5f6a7-b8c9-4dab-8cde-f0123456789a" in rows  # the line holding a whole page
    hashed = [k for k in rows if k.startswith("sha256:")]
    assert len(hashed) == 1 and rows[hashed[0]]["user_principal_name"] == "scanner@contoso.com"
    reasons = _reasons(store)
    assert reasons[0].startswith("line 5: invalid JSON at line 5")
    assert reasons[1] == "line 6: invalid IP address '198.51.100.300'"
    assert reasons[2] == "line 7: no timestamp (createdDateTime / TimeGenerated)"
    assert reasons[3] == "line 8: unparseable timestamp 'yesterday'"
    assert all("\n" not in r for r in reasons)


def test_same_signin_from_two_files_and_time_zones_is_one(tmp_path: Path) -> None:
    paths = _bundle(tmp_path, "signins_lines.jsonl", "signins_graph_pages.json")
    _, [lines, pages] = _ingest(tmp_path, *paths)
    assert lines.loaded == 6
    # Adele's, the scanner's (given there as +01:00) and the one-line page's sign-ins are
    # known already, and page 2 repeats page 1's last: only Megan's is new
    assert (pages.read, pages.loaded, pages.duplicates) == (5, 1, 4)


def test_hashed_key_is_stable(tmp_path: Path) -> None:
    first = _bundle(tmp_path, "signins_lines.jsonl")[0]
    again = first.with_name("signins_again.jsonl")
    again.write_bytes(first.read_bytes() + b"\n")  # other bytes, so not skipped as unchanged
    _, [a, b] = _ingest(tmp_path, first, again)
    assert (a.loaded, a.rejected) == (6, 4)
    assert (b.read, b.loaded, b.duplicates, b.rejected) == (10, 0, 6, 4)


def test_hashed_key_uses_time_upn_ip_app_and_correlation() -> None:
    rec = {"createdDateTime": "2026-03-02T12:00:00Z", "userPrincipalName": "A@contoso.com",
           "ipAddress": "198.51.100.7", "appId": "x", "correlationId": "c"}

    def key(**change: str) -> str:
        return str(map_signin({**rec, **change})[0]["signin_id"])

    assert key() == key(createdDateTime="2026-03-02T13:00:00+01:00")
    assert key() == key(userPrincipalName="a@CONTOSO.com")
    for change in ({"ipAddress": "198.51.100.8"}, {"correlationId": "d"}, {"appId": "y"}):
        assert key(**change) != key()


def test_bad_line_that_swallows_the_next_resyncs(tmp_path: Path) -> None:
    good = json.loads((FIX / "signins_lines.jsonl").read_text().splitlines()[0])
    text = (
        '{"id": "broken", "createdDateTime": [\n'
        + json.dumps(good) + "\n"
        + json.dumps({**good, "id": "second"}) + "\n"
    )
    path = tmp_path / "bundle" / "signins_x.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    store, [rep] = _ingest(tmp_path, path)
    assert (rep.read, rep.loaded, rep.rejected) == (3, 2, 1)
    assert set(_signins(store)) == {good["id"], "second"}
    assert _reasons(store)[0].startswith("line 1: invalid JSON")


@pytest.mark.parametrize(
    ("text", "read"),
    [("", 0), ("\n\n", 0), ("null\n", 0), ('{"@odata.context": "x", "value": []}', 0),
     ('{"value": null}', 0)],
)
def test_empty_inputs_are_zero_signins(tmp_path: Path, text: str, read: int) -> None:
    path = tmp_path / "bundle" / "signins.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    _, [rep] = _ingest(tmp_path, path)
    assert (rep.read, rep.error) == (read, None)


def test_non_objects_in_a_page_are_rejected(tmp_path: Path) -> None:
    good = json.loads((FIX / "signins_lines.jsonl").read_text().splitlines()[0])
    path = tmp_path / "bundle" / "signins.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"value": [good, 42, "x"]}))
    store, [rep] = _ingest(tmp_path, path)
    assert (rep.read, rep.loaded, rep.rejected) == (3, 1, 2)
    assert _reasons(store) == [
        "page 1 (line 1) item 2: not a sign-in object (a JSON number)",
        "page 1 (line 1) item 3: not a sign-in object (a JSON string)",
    ]


def test_unclosed_top_level_array_is_a_warning(tmp_path: Path) -> None:
    good = json.loads((FIX / "signins_lines.jsonl").read_text().splitlines()[0])
    path = tmp_path / "bundle" / "signins.json"
    path.parent.mkdir(parents=True)
    path.write_text("[" + json.dumps(good) + ",\n")
    _, [rep] = _ingest(tmp_path, path)
    assert (rep.read, rep.loaded) == (1, 1)
    assert "never closed" in rep.warnings[0]


def test_diagnostic_settings_envelope(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_diagnostic_settings.json"))
    assert (rep.read, rep.loaded) == (1, 1)
    [row] = _signins(store).values()
    assert row["signin_id"] == "9c0d1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f"
    assert row["ts"] == _utc(2026, 3, 2, 14, 58, 51, 537000)
    assert row["is_interactive"] is False  # from signInEventTypes
    assert row["country"] == "US"


# ---------------------------------------------------------------------------- CSV
def test_sentinel_signinlogs_csv(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_sentinel_signinlogs.csv"))
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (5, 2, 0, 3)
    rows = _signins(store)
    scan = rows[SCANNER_ID]
    # CreatedDateTime (the sign-in), not TimeGenerated (ingestion), in the portal's format
    assert scan["ts"] == _utc(2026, 3, 2, 9, 17, 40)
    assert scan["error_code"] == 50126
    assert (scan["country"], scan["city"]) == ("GB", "Leeds")
    assert scan["client_app_used"] == "Authenticated SMTP"
    adele = rows["a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d"]
    assert adele["ts"] == _utc(2026, 3, 2, 13, 1, 10, 482000)
    assert adele["user_principal_name"] == "adelev@contoso.com"
    assert (adele["operating_system"], adele["browser"]) == ("Windows10", "Edge 122.0.0")
    assert adele["is_interactive"] is True and adele["error_code"] == 0
    reasons = _reasons(store)
    assert reasons[0].startswith("line 4: column 'LocationDetails' is not valid JSON")
    assert reasons[1] == "line 5: invalid IP address '198.51.100.256'"
    assert reasons[2] == "line 6: no timestamp (createdDateTime / TimeGenerated)"
    raw = json.loads(_quarantine(store)[1]["raw"])
    assert raw["IPAddress"] == "198.51.100.256"  # quarantine keeps the row as exported


def test_sentinel_and_graph_agree_on_the_key(tmp_path: Path) -> None:
    paths = _bundle(tmp_path, "signins_graph_pages.json", "signins_sentinel_signinlogs.csv")
    _, [_, csv_rep] = _ingest(tmp_path, *paths)
    assert csv_rep.duplicates == 1  # the scanner's failed SMTP AUTH sign-in


def test_noninteractive_with_flattened_columns(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_sentinel_noninteractive.csv"))
    assert (rep.read, rep.loaded, rep.rejected) == (2, 2, 0)
    rows = _signins(store)
    adele = rows["f1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8"]
    assert adele["ts"] == _utc(2026, 3, 2, 9, 29, 58, 123456)  # 7 fractional digits
    assert adele["is_interactive"] is False
    assert (adele["country"], adele["city"], adele["operating_system"]) == (
        "US", "Redmond", "Windows10")
    megan = rows["a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"]
    assert megan["ts"] == _utc(2026, 3, 2, 9, 44, 1, 500000)  # +01:00
    assert megan["ip_address"] == "2001:db8:4:1::2c"
    assert megan["error_code"] == 70044
    assert megan["conditional_access_status"] == "failure"


def test_entra_portal_download(tmp_path: Path) -> None:
    store, [rep] = _ingest(tmp_path, *_bundle(tmp_path, "signins_entra_portal_download.csv"))
    assert (rep.read, rep.loaded) == (1, 1)
    [row] = _signins(store).values()
    assert row["signin_id"] == "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"  # Request ID
    assert row["ts"] == _utc(2026, 3, 2, 14, 20, 31)
    assert (row["country"], row["city"]) == ("GB", "Leeds")  # "Leeds, England, GB"
    assert (row["error_code"], row["client_app_used"]) == (50126, "Authenticated SMTP")
    assert row["user_principal_name"] == "scanner@contoso.com"
    assert row["user_display_name"] == "Scan to mail"


def test_utf16_csv(tmp_path: Path) -> None:
    [src] = _bundle(tmp_path, "signins_sentinel_signinlogs.csv")
    dst = src.with_name("signins_utf16.csv")
    dst.write_bytes(src.read_text(encoding="utf-8-sig").encode("utf-16"))  # BOM + LE
    src.unlink()
    store, [rep] = _ingest(tmp_path, dst)
    assert (rep.read, rep.loaded, rep.rejected) == (5, 2, 3)
    assert _signins(store)[SCANNER_ID]["country"] == "GB"


def test_csv_without_time_column_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "bundle" / "signins.csv"
    path.parent.mkdir(parents=True)
    path.write_text("UserPrincipalName,IPAddress\nadelev@contoso.com,203.0.113.24\n")
    _, [rep] = _ingest(tmp_path, path)
    assert rep.read == 0
    assert rep.error is not None and rep.error.startswith("signins.csv: no time column")


def test_csv_row_with_extra_cells_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bundle" / "signins.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "CreatedDateTime,UserPrincipalName,IPAddress\n"
        "2026-03-02T09:00:00Z,a@contoso.com,203.0.113.1\n"
        "2026-03-02T09:01:00Z,b@contoso.com,203.0.113.2,surplus\n"
    )
    store, [rep] = _ingest(tmp_path, path)
    assert (rep.read, rep.loaded, rep.rejected) == (2, 1, 1)
    assert _reasons(store) == ["line 3: 4 cells but the header has 3"]


# ---------------------------------------------------------------------------- compression
def test_gzip(tmp_path: Path) -> None:
    [src] = _bundle(tmp_path, "signins_lines.jsonl")
    dst = src.with_name("signins_lines.jsonl.gz")
    dst.write_bytes(gzip.compress(src.read_bytes()))
    src.unlink()
    _, [rep] = _ingest(tmp_path, dst)
    assert (rep.read, rep.loaded, rep.rejected) == (10, 6, 4)


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    [src] = _bundle(tmp_path, "signins_graph_pages.json")
    data = gzip.compress(src.read_bytes())
    dst = src.with_name("signins_graph_pages.json.gz")
    dst.write_bytes(data[: len(data) * 2 // 3])
    src.unlink()
    _, [rep] = _ingest(tmp_path, dst)
    assert rep.error is None
    assert any("compressed data ends early" in w for w in rep.warnings)
    assert rep.loaded >= 1 and rep.rejected == 1


def test_not_gzip_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "bundle" / "signins.json.gz"
    path.parent.mkdir(parents=True)
    path.write_text('{"value": []}')
    _, [rep] = _ingest(tmp_path, path)
    assert rep.error is not None and "gzip" in rep.error


# ---------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:15:12Z", _utc(2026, 3, 2, 9, 15, 12)),
        ("2026-03-02T09:15:12.1234567Z", _utc(2026, 3, 2, 9, 15, 12, 123456)),
        ("2026-03-02T11:15:12+02:00", _utc(2026, 3, 2, 9, 15, 12)),
        ("2026-03-02 09:15:12", _utc(2026, 3, 2, 9, 15, 12)),
        ("3/2/2026, 9:15:12.123 AM", _utc(2026, 3, 2, 9, 15, 12, 123000)),
        ("3/2/2026, 12:05:00.000 AM", _utc(2026, 3, 2, 0, 5)),
        ("3/2/2026, 9:15:12 PM", _utc(2026, 3, 2, 21, 15, 12)),
        ("25/2/2026 09:15:12", _utc(2026, 2, 25, 9, 15, 12)),
        ("/Date(1772500512000)/", _utc(2026, 3, 3, 1, 15, 12)),
        ("", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", "3/2/2026, 13:00:00 PM"])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
