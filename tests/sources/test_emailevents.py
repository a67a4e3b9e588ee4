"""EmailEvents reader: every export shape, the damage real exports carry, and the accounting.

Every ingest goes through the real store and checks ``read == loaded + duplicates + rejected``.
Fixtures are hand-made in Microsoft's shapes; damaged and re-encoded variants are built here.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.spies import returns_of

from dsguard.evidence.model import FileReport
from dsguard.evidence.store import EvidenceStore
from dsguard.sources._tabular import (
    RawLayout,
    install_macros,
    read_csv_header,
    slash_date_formats,
    utf8_file,
)
from dsguard.sources.base import Reader
from dsguard.sources.emailevents import EmailEventsReader
from dsguard.sources.message_trace import MessageTraceReader

pytestmark = pytest.mark.usefixtures("both_stagings")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email_events"
TRACE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "message_trace"
SPOOF_ID = "6f1c0f5e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
PARTNER_ID = "0d6a4e7b-58c2-4f1e-a3b9-7c2d1e0f9a8b"


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    with EvidenceStore(tmp_path / "e.duckdb") as s:
        yield s


def place(
    tmp_path: Path, name: str, data: bytes | str | None = None, *, fixture: Path | None = None
) -> Path:
    """Put a bundle file into ``tmp_path``: a fixture copy, or the given content."""
    target = tmp_path / name
    if data is None:
        shutil.copyfile(fixture or FIXTURES / name, target)
    elif isinstance(data, str):
        target.write_bytes(data.encode("utf-8"))
    else:
        target.write_bytes(data)
    return target


def ingest(
    store: EvidenceStore, root: Path, *paths: Path, reader: Reader | None = None
) -> list[FileReport]:
    summary = store.ingest([(reader or EmailEventsReader(), p) for p in paths], root=root)
    for report in summary.files:
        assert report.balanced, report
        assert report.read == report.loaded + report.duplicates + report.rejected
    return summary.files


Row = dict[str, Any]


def rows(store: EvidenceStore, where: str = "true", params: list[Any] | None = None) -> list[Row]:
    cur = store.con.execute(
        f"SELECT * FROM messages WHERE {where} ORDER BY source_file, source_row, recipient",
        params or [],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one(store: EvidenceStore, nmid: str, recipient: str) -> Row:
    (found,) = rows(store, "network_message_id = ? AND recipient = ?", [nmid, recipient])
    return found


def quarantine(store: EvidenceStore) -> list[Row]:
    return list(store.quarantine_rows())


def csv_text(header: list[str], records: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(records)
    return buf.getvalue()


MIN_HEADER = [
    "Timestamp", "NetworkMessageId", "SenderFromAddress", "SenderIPv4", "SenderIPv6",
    "RecipientEmailAddress", "Subject", "AuthenticationDetails", "DetectionMethods",
]  # fmt: skip
AUTH_FAIL = '{"SPF":"fail","DKIM":"none","DMARC":"fail","CompAuth":"fail"}'


def row(i: int, **over: str) -> list[str]:
    base = {
        "Timestamp": f"2025-01-06T08:{i % 60:02d}:00Z",
        "NetworkMessageId": f"id-{i}",
        "SenderFromAddress": "ceo@contoso.com",
        "SenderIPv4": "203.0.113.45",
        "SenderIPv6": "",
        "RecipientEmailAddress": f"user{i}@contoso.com",
        "Subject": f"subject {i}",
        "AuthenticationDetails": AUTH_FAIL,
        "DetectionMethods": "",
    }
    base.update(over)
    return [base[h] for h in MIN_HEADER]


# ----------------------------------------------------------------------------- CSV shapes
def test_defender_csv_values(store: EvidenceStore, tmp_path: Path) -> None:
    path = place(tmp_path, "email_events_defender.csv")
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (4, 4, 0)
    assert report.warnings == []

    spoof = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert spoof["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)  # 7 digits
    assert spoof["source"] == "email_events"
    assert spoof["sender_mail_from"] == "ceo@contoso.com"  # lower-cased
    assert spoof["sender_display_name"] == "Jane Doe, CEO"
    assert spoof["subject"] == 'Invoice #4471 "urgent" – please pay today'
    assert (spoof["auth_spf"], spoof["auth_dkim"], spoof["auth_dmarc"], spoof["auth_compauth"]) == (
        "fail",
        "none",
        "fail",
        "fail",
    )
    assert spoof["detection_methods"] == '{"Phish":["Spoof intra-org"]}'
    assert spoof["detection_flags"] == ["Spoof intra-org"]
    assert spoof["connectors"] is None
    assert spoof["direction"] == "Inbound"
    assert spoof["email_cluster_id"] == "3147208371245938816"
    assert (spoof["bulk_complaint_level"], spoof["attachment_count"], spoof["url_count"]) == (
        0,
        1,
        0,
    )
    assert spoof["confidence_level"] == '{"Phish":"High"}'
    assert spoof["source_file"] == "email_events_defender.csv"
    assert spoof["source_row"] == 1

    second = one(store, SPOOF_ID, "megan.bowen@contoso.com")
    assert second["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)  # +01:00
    assert second["sender_mail_from_domain"] == "contoso.com"  # derived from the address
    assert second["detection_flags"] == ["Spoof intra-org", "Mixed analysis detection"]
    assert second["auth_spf"] == "softfail"

    partner = one(store, PARTNER_ID, "alex.wilber@contoso.com")
    assert partner["connectors"] == "Fabrikam partner connector"
    assert partner["sender_ipv6"] == "2001:db8:4::1a"
    assert partner["subject"] == "PO 88 confirmed\nline two"
    assert partner["detection_flags"] is None
    assert partner["ts"] == datetime(2025, 1, 6, 10, 2, 11, 500000, tzinfo=UTC)

    intra = rows(store, "direction = 'Intra-org'")
    assert len(intra) == 1
    assert intra[0]["ts"] == datetime(2025, 1, 6, 10, 30, 0, tzinfo=UTC)  # space, -05:00
    assert intra[0]["source_row"] == 4


def test_sentinel_csv_utc_headers_and_slash_dates(store: EvidenceStore, tmp_path: Path) -> None:
    path = place(tmp_path, "email_events_sentinel.csv")
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded) == (2, 2)
    # TenantId, SourceSystem, Type are known; "[UTC]" columns need no zone warning.
    assert report.warnings == []
    spoof = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    # Timestamp (event time) wins over TimeGenerated (ingestion time).
    assert spoof["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123000, tzinfo=UTC)
    assert spoof["auth_dmarc"] == "fail"
    news = one(store, "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "megan.bowen@contoso.com")
    assert news["ts"] == datetime(2025, 1, 6, 14, 4, 59, 870000, tzinfo=UTC)


def test_timegenerated_only(store: EvidenceStore, tmp_path: Path) -> None:
    header = ["TimeGenerated", *MIN_HEADER[1:]]
    records = [row(1), row(2, Timestamp="02/30/2025 8:00:00 AM")]
    path = place(tmp_path, "email_events_la.csv", csv_text(header, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (1, 1)
    assert rows(store)[0]["ts"] == datetime(2025, 1, 6, 8, 1, tzinfo=UTC)
    (bad,) = quarantine(store)
    assert bad["reason"] == 'unparseable TimeGenerated "02/30/2025 8:00:00 AM"'


def test_gzip_csv(store: EvidenceStore, tmp_path: Path) -> None:
    data = gzip.compress((FIXTURES / "email_events_defender.csv").read_bytes())
    path = place(tmp_path, "email_events_defender.csv.gz", data)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded) == (4, 4)
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["auth_compauth"] == "fail"


def test_utf16_csv(store: EvidenceStore, tmp_path: Path) -> None:
    text = (FIXTURES / "email_events_defender.csv").read_text(encoding="utf-8")
    path = place(tmp_path, "email_events_utf16.csv", text.encode("utf-16"))
    (report,) = ingest(store, tmp_path, path)
    assert report.loaded == 4
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["subject"].endswith("– please pay today")


# ----------------------------------------------------------------------------- JSON shapes
@pytest.mark.parametrize(
    "name", ["email_events_hunting.json", "email_events_hunting_legacy.json",
             "email_events_rows.json", "email_events_rows.jsonl"]
)  # fmt: skip
def test_json_shapes(store: EvidenceStore, tmp_path: Path, name: str) -> None:
    path = place(tmp_path, name)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (2, 2, 0), report
    assert report.warnings == []
    spoof = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert spoof["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)
    assert spoof["auth_spf"] == "fail"
    assert spoof["detection_flags"] == ["Spoof intra-org"]
    assert spoof["email_cluster_id"] == "3147208371245938816"  # a JSON number, exactly
    assert spoof["bulk_complaint_level"] == 0
    assert spoof["connectors"] is None
    assert spoof["sender_ipv6"] is None
    partner = one(store, PARTNER_ID, "megan.bowen@contoso.com")
    assert partner["connectors"] == "Fabrikam partner connector"
    assert partner["source_row"] == 2


def test_hunting_keys_in_any_case(store: EvidenceStore, tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "email_events_hunting.json").read_text())
    shouted = {
        "SCHEMA": [{"NAME": c["name"], "TYPE": c["type"]} for c in doc["schema"]],
        "RESULTS": [{k.lower(): v for k, v in r.items()} for r in doc["results"]],
    }
    path = place(tmp_path, "email_events_shout.json", json.dumps(shouted))
    (report,) = ingest(store, tmp_path, path)
    assert report.loaded == 2 and report.warnings == []
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["auth_dmarc"] == "fail"


def test_streaming_envelope_crlf_gzip(store: EvidenceStore, tmp_path: Path) -> None:
    data = (FIXTURES / "email_events_stream.jsonl").read_bytes()
    assert data.count(b"\r\n") == 2  # CRLF-terminated, as written to a storage account
    path = place(tmp_path, "email_events_stream.jsonl.gz", gzip.compress(data))
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded) == (2, 2)
    # To, Cc, EmailSize, IsFirstContact... are known streaming columns: no warning.
    assert report.warnings == []
    spoof = one(store, SPOOF_ID, "megan.bowen@contoso.com")
    assert spoof["connectors"] is None  # JSON null
    assert spoof["sender_object_id"] is None
    assert spoof["bulk_complaint_level"] is None
    assert spoof["attachment_count"] == 1
    assert spoof["recipient_object_id"] == "5d3c1b2a-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
    assert spoof["report_id"].endswith("-7651264839127386542-1")
    assert spoof["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)
    assert spoof["source_row"] == 2  # line number


def test_event_hub_records_and_other_categories(store: EvidenceStore, tmp_path: Path) -> None:
    lines = (FIXTURES / "email_events_stream.jsonl").read_text().splitlines()
    envelopes = [json.loads(line) for line in lines]
    url_info = {
        "time": "2025-01-06T08:17:02Z",
        "category": "AdvancedHunting-EmailUrlInfo",
        "properties": {"NetworkMessageId": SPOOF_ID, "Url": "https://x.example"},
    }
    del envelopes[0]["properties"]["Timestamp"]  # falls back to the envelope's time
    batch = {"records": [*envelopes, url_info]}
    path = place(tmp_path, "email_events_eventhub.json", json.dumps(batch))
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (3, 2, 1)
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["ts"] == datetime(
        2025, 1, 6, 8, 17, 2, 184721, tzinfo=UTC
    )
    (bad,) = quarantine(store)
    assert "EmailUrlInfo" in bad["reason"] and bad["row"] == 3


def test_bad_json_line_is_rejected_others_load(store: EvidenceStore, tmp_path: Path) -> None:
    good = (FIXTURES / "email_events_rows.jsonl").read_text().splitlines()
    text = (
        "\n".join(
            [good[0], '{"Timestamp": "2025-01-06T08:00:00Z", "NetworkMess', "", "[1, 2]", good[1]]
        )
        + "\n"
    )
    path = place(tmp_path, "email_events_broken.jsonl", text)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (4, 2, 2)
    # Rows are numbered in file order (the blank line is not a row); reasons name the line.
    reasons = {q["row"]: q["reason"] for q in quarantine(store)}
    assert reasons[2].startswith("line 2 is not valid JSON (")
    assert reasons[3] == "not a JSON object"
    assert quarantine(store)[0]["raw"].startswith('{"Timestamp": "2025-01-06T08:00:00Z"')
    assert one(store, PARTNER_ID, "megan.bowen@contoso.com")["source_row"] == 4


def test_not_json_is_a_file_error(store: EvidenceStore, tmp_path: Path) -> None:
    path = place(tmp_path, "email_events.json", "<html><body>Sign in</body></html>\n")
    (report,) = ingest(store, tmp_path, path)
    assert report.error is not None
    assert report.error.startswith("email_events.json: not valid JSON")
    assert report.read == 0


def test_json_missing_required_column(store: EvidenceStore, tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "email_events_hunting.json").read_text())
    for r in doc["results"]:
        del r["RecipientEmailAddress"]
    doc["schema"] = [c for c in doc["schema"] if c["name"] != "RecipientEmailAddress"]
    path = place(tmp_path, "email_events_norcpt.json", json.dumps(doc))
    (report,) = ingest(store, tmp_path, path)
    assert (
        report.error == "email_events_norcpt.json: missing required column(s) RecipientEmailAddress"
    )


def test_json_empty_results(store: EvidenceStore, tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "email_events_hunting.json").read_text())
    doc["results"] = []
    path = place(tmp_path, "email_events_none.json", json.dumps(doc))
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.error, report.warnings) == (0, None, ["no rows"])


# ----------------------------------------------------------------------------- damage
def test_truncated_csv(store: EvidenceStore, tmp_path: Path) -> None:
    data = (FIXTURES / "email_events_defender.csv").read_bytes()
    cut = data[: data.rindex(b"Intra-org") + 4]  # the download stopped mid-record
    path = place(tmp_path, "email_events_cut.csv", cut)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (4, 3, 1)
    (bad,) = quarantine(store)
    assert bad["row"] == 4
    assert bad["reason"].startswith("malformed CSV at line 5: missing columns")
    assert bad["raw"].startswith("2025-01-06 05:30:00.0000001-05:00")


def test_structural_errors_keep_row_numbers(store: EvidenceStore, tmp_path: Path) -> None:
    text = csv_text(MIN_HEADER, [row(1), row(2)])
    text += "2025-01-06T08:03:00Z,id-3,a@b.c,1.2.3.4,,u3@contoso.com,s,{},{},EXTRA\r\n"
    text += "2025-01-06T08:04:00Z,id-4\r\n"
    text += csv_text(MIN_HEADER, [row(5, Subject="two\nlines"), row(6)]).split("\r\n", 1)[1]
    text += '2025-01-06T08:07:00Z,id-7,a@b.c,,,u7@contoso.com,"never closed'
    path = place(tmp_path, "email_events_broken.csv", text)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (7, 4, 3)
    assert [r["source_row"] for r in rows(store)] == [1, 2, 5, 6]
    reasons = {q["row"]: q["reason"] for q in quarantine(store)}
    assert set(reasons) == {3, 4, 7}
    assert "too many columns" in reasons[3]
    assert "missing columns" in reasons[4]
    assert "unquoted value" in reasons[7] or "unterminated" in reasons[7]


def test_damaged_gzip_reads_what_it_held(store: EvidenceStore, tmp_path: Path) -> None:
    text = csv_text(MIN_HEADER, [row(i) for i in range(2000)])
    data = gzip.compress(text.encode())
    path = place(tmp_path, "email_events_cut.csv.gz", data[: len(data) * 2 // 3])
    (report,) = ingest(store, tmp_path, path)
    assert report.error is None
    assert report.warnings[0] == "compressed stream cut short; read what it held"
    assert 0 < report.loaded < 2000
    assert one(store, "id-0", "user0@contoso.com")["auth_spf"] == "fail"


def test_semicolon_delimiter(store: EvidenceStore, tmp_path: Path) -> None:
    text = csv_text(MIN_HEADER, [row(1), row(2)], delimiter=";")
    path = place(tmp_path, "email_events_excel.csv", text)
    (report,) = ingest(store, tmp_path, path)
    assert report.loaded == 2
    assert report.warnings == ["read as semicolon-separated, not comma"]
    assert rows(store)[0]["auth_spf"] == "fail"


@pytest.mark.parametrize(("delimiter", "name"), [("\t", "tab"), ("|", "pipe")])
def test_other_delimiters(store: EvidenceStore, tmp_path: Path, delimiter: str, name: str) -> None:
    path = place(tmp_path, "email_events_d.csv", csv_text(MIN_HEADER, [row(1)], delimiter))
    (report,) = ingest(store, tmp_path, path)
    assert report.loaded == 1
    assert report.warnings == [f"read as {name}-separated, not comma"]


def test_unknown_columns_warn_and_travel_in_raw(store: EvidenceStore, tmp_path: Path) -> None:
    header = [*MIN_HEADER, "Foo", 'We"ird); DROP TABLE messages; --']
    records = [[*row(1), "f1", "w1"], [*row(2, NetworkMessageId=""), "f2", "w2"]]
    path = place(tmp_path, "email_events_extra.csv", csv_text(header, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (1, 1)
    assert report.warnings == [
        "unknown columns not loaded (kept in quarantine copies): Foo, "
        'We"ird); DROP TABLE messages; --'
    ]
    (bad,) = quarantine(store)
    assert bad["reason"] == "missing NetworkMessageId"
    raw = json.loads(bad["raw"])
    assert raw["Foo"] == "f2" and raw['We"ird); DROP TABLE messages; --'] == "w2"
    assert raw["RecipientEmailAddress"] == "user2@contoso.com"


def test_missing_required_column(store: EvidenceStore, tmp_path: Path) -> None:
    header = [h for h in MIN_HEADER if h not in ("SenderFromAddress", "Timestamp")]
    path = place(tmp_path, "email_events_partial.csv", csv_text(header, []))
    (report,) = ingest(store, tmp_path, path)
    assert report.error == (
        "email_events_partial.csv: missing required column(s) Timestamp (or TimeGenerated), "
        "SenderFromAddress"
    )
    assert report.read == 0


def test_not_email_events_at_all(store: EvidenceStore, tmp_path: Path) -> None:
    path = place(
        tmp_path, "email_events_x.csv", (TRACE_FIXTURES / "message_trace_eac.csv").read_bytes()
    )
    (report,) = ingest(store, tmp_path, path)
    assert report.error is not None
    assert report.error.startswith("email_events_x.csv: not an EmailEvents export (columns: ")
    assert report.error.endswith(
        "it looks like a message trace export (name it message_trace*.csv)"
    )


def test_bad_json_in_authentication_details(store: EvidenceStore, tmp_path: Path) -> None:
    records = [
        row(1, AuthenticationDetails='{"SPF":"fail",'),
        row(2, DetectionMethods="Phish: Spoof intra-org"),
        row(3, AuthenticationDetails='["pass"]'),
        row(
            4,
            AuthenticationDetails='{"spf":"PASS","Dkim":"Pass","dmarc":"BestGuessPass",'
            '"COMPAUTH":"Pass"}',
        ),
        row(5, AuthenticationDetails='{"SPF":NaN}'),
        # Valid only once lower-cased: validity is judged on the text as written.
        row(6, AuthenticationDetails='{"SPF":"pass","Strict":TRUE}'),
        # Objects that do not start with a brace take the slower, exact check.
        row(7, AuthenticationDetails='\n{"SPF":"Fail"}', DetectionMethods='\t{"Phish":["Spoof DMARC"]}'),
        row(8, DetectionMethods='\n["Spoof DMARC"]'),
    ]
    path = place(tmp_path, "email_events_auth.csv", csv_text(MIN_HEADER, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (3, 5)
    reasons = {q["row"]: q["reason"] for q in quarantine(store)}
    assert reasons[1] == 'AuthenticationDetails is not a JSON object: "{"SPF":"fail","'
    assert reasons[2] == 'DetectionMethods is not a JSON object: "Phish: Spoof intra-org"'
    assert reasons[3].startswith("AuthenticationDetails is not a JSON object")
    assert reasons[6].startswith("AuthenticationDetails is not a JSON object")
    assert reasons[8].startswith("DetectionMethods is not a JSON object")
    padded = one(store, "id-7", "user7@contoso.com")
    assert (padded["auth_spf"], padded["detection_flags"]) == ("fail", ["Spoof DMARC"])
    ok = one(store, "id-4", "user4@contoso.com")
    assert (ok["auth_spf"], ok["auth_dkim"], ok["auth_dmarc"], ok["auth_compauth"]) == (
        "pass",
        "pass",
        "bestguesspass",
        "pass",
    )


def test_invalid_ips(store: EvidenceStore, tmp_path: Path) -> None:
    records = [
        row(1, SenderIPv4="256.1.1.1"),
        row(2, SenderIPv4="10.0.0"),
        row(3, SenderIPv4="", SenderIPv6="2001:db8::g"),
        row(4, SenderIPv4="", SenderIPv6="2001:DB8::1"),
        row(5, SenderIPv4=" 198.51.100.7 "),
        row(6, SenderIPv4="", SenderIPv6="::ffff:192.0.2.1"),
    ]
    path = place(tmp_path, "email_events_ip.csv", csv_text(MIN_HEADER, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (3, 3)
    reasons = {q["row"]: q["reason"] for q in quarantine(store)}
    assert reasons == {
        1: 'invalid SenderIPv4 "256.1.1.1"',
        2: 'invalid SenderIPv4 "10.0.0"',
        3: 'invalid SenderIPv6 "2001:db8::g"',
    }
    assert one(store, "id-4", "user4@contoso.com")["sender_ipv6"] == "2001:db8::1"
    assert one(store, "id-5", "user5@contoso.com")["sender_ipv4"] == "198.51.100.7"


def test_time_zones_fractions_and_zoneless(store: EvidenceStore, tmp_path: Path) -> None:
    stamps = {
        1: ("2025-01-06T08:15:30.1234567Z", datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)),
        2: (
            "2025-01-06T10:15:30.1234567+02:00",
            datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC),
        ),
        3: ("2025-01-06T03:15:30-0500", datetime(2025, 1, 6, 8, 15, 30, tzinfo=UTC)),
        4: ("2025-01-06 08:15:30", datetime(2025, 1, 6, 8, 15, 30, tzinfo=UTC)),
        5: ("2025-01-06T08:15:30.5", datetime(2025, 1, 6, 8, 15, 30, 500000, tzinfo=UTC)),
        6: ("1/6/2025 8:15:30 PM", datetime(2025, 1, 6, 20, 15, 30, tzinfo=UTC)),
    }
    records = [row(i, Timestamp=text) for i, (text, _) in stamps.items()]
    records += [
        row(7, Timestamp="yesterday"),
        row(8, Timestamp="2025-02-30T00:00:00Z"),
        row(9, Timestamp=""),
    ]
    path = place(tmp_path, "email_events_tz.csv", csv_text(MIN_HEADER, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (6, 3)
    for i, (_, expected) in stamps.items():
        assert one(store, f"id-{i}", f"user{i}@contoso.com")["ts"] == expected, i
    # One warning for the file, however many zone-less values it holds.
    assert report.warnings == [
        "3 timestamps carry no time zone (e.g. '2025-01-06 08:15:30'); read as UTC"
    ]
    reasons = {q["row"]: q["reason"] for q in quarantine(store)}
    assert reasons == {
        7: 'unparseable Timestamp "yesterday"',
        8: 'unparseable Timestamp "2025-02-30T00:00:00Z"',
        9: "missing Timestamp",
    }


def test_missing_keys_are_rejected(store: EvidenceStore, tmp_path: Path) -> None:
    long_subject = "x" * 500
    records = [
        row(1, NetworkMessageId=""),
        row(2, RecipientEmailAddress="  "),
        row(3, Timestamp=long_subject),
    ]
    path = place(tmp_path, "email_events_keys.csv", csv_text(MIN_HEADER, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (0, 3)
    reasons = [q["reason"] for q in quarantine(store)]
    assert reasons[:2] == ["missing NetworkMessageId", "missing RecipientEmailAddress"]
    assert reasons[2] == 'unparseable Timestamp "' + "x" * 80 + '…"'


def test_attacker_strings_stay_data(store: EvidenceStore, tmp_path: Path) -> None:
    nasty = "'); DROP TABLE messages; --\" $file ? {raw}"
    records = [row(1, Subject=nasty), row(2, Timestamp=nasty)]
    path = place(tmp_path, "email_events_nasty.csv", csv_text(MIN_HEADER, records))
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (1, 1)
    assert rows(store)[0]["subject"] == nasty
    assert quarantine(store)[0]["reason"] == f'unparseable Timestamp "{nasty}"'


def test_empty_and_header_only(store: EvidenceStore, tmp_path: Path) -> None:
    empty = place(tmp_path, "email_events_empty.csv", b"")
    header = place(tmp_path, "email_events_header.csv", csv_text(MIN_HEADER, []))
    empty_json = place(tmp_path, "email_events_empty.jsonl", "\r\n")
    reports = ingest(store, tmp_path, empty, header, empty_json)
    assert [(r.read, r.error) for r in reports] == [(0, None)] * 3
    assert reports[0].warnings == ["empty file; no rows"]
    assert reports[1].warnings == ["header only; no rows"]
    assert reports[2].warnings == ["empty file; no rows"]


# ----------------------------------------------------------------------------- store
def test_same_rows_in_two_files_are_duplicates(store: EvidenceStore, tmp_path: Path) -> None:
    original = (FIXTURES / "email_events_defender.csv").read_bytes()
    first = place(tmp_path, "email_events_a.csv", original)
    (tmp_path / "more").mkdir()
    # Same rows, other bytes (so the store does not skip it as an unchanged file).
    second = place(tmp_path, "more/email_events_b.csv.gz", gzip.compress(original))
    # One row also in the Defender export, one new.
    third = place(tmp_path, "email_events_c.json", fixture=FIXTURES / "email_events_hunting.json")
    a, b, c = ingest(store, tmp_path, first, second, third)
    assert (a.loaded, a.duplicates) == (4, 0)
    assert (b.file, b.read, b.loaded, b.duplicates) == ("more/email_events_b.csv.gz", 4, 0, 4)
    assert (c.read, c.loaded, c.duplicates) == (2, 1, 1)
    assert len(rows(store)) == 5
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["source_file"] == "email_events_a.csv"


def test_email_events_supersede_message_trace(store: EvidenceStore, tmp_path: Path) -> None:
    trace = place(
        tmp_path, "message_trace_eac.csv", fixture=TRACE_FIXTURES / "message_trace_eac.csv"
    )
    events = place(tmp_path, "email_events_defender.csv")
    (t,) = ingest(store, tmp_path, trace, reader=MessageTraceReader())
    assert t.loaded == 4
    before = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert before["source"] == "message_trace" and before["auth_spf"] is None
    (e,) = ingest(store, tmp_path, events)
    assert (e.loaded, e.duplicates) == (4, 0)
    assert any("replaced" in w for w in e.warnings)
    after = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert after["source"] == "email_events" and after["auth_spf"] == "fail"
    assert len(rows(store)) == 5  # 4 EmailEvents + 1 outbound row only the trace has


def test_message_trace_after_email_events_is_duplicate(
    store: EvidenceStore, tmp_path: Path
) -> None:
    events = place(tmp_path, "email_events_defender.csv")
    trace = place(
        tmp_path, "message_trace_eac.csv", fixture=TRACE_FIXTURES / "message_trace_eac.csv"
    )
    summary = store.ingest(
        [(EmailEventsReader(), events), (MessageTraceReader(), trace)], root=tmp_path
    )
    e, t = summary.files
    assert summary.balanced
    assert (e.loaded, e.warnings) == (4, [])
    assert (t.read, t.loaded, t.duplicates) == (4, 1, 3)
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["source"] == "email_events"


def test_200k_rows(store: EvidenceStore, tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "email_events_big.csv"
    header = ",".join(MIN_HEADER) + "\r\n"
    auth = AUTH_FAIL.replace('"', '""')
    with path.open("w", newline="") as fh:
        fh.write(header)
        fh.writelines(
            f"2025-01-06T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i:07d}Z,"
            f"id-{i},sender{i % 97}@contoso.com,203.0.{i % 256}.{i % 250},,"
            f'user{i % 1000}@contoso.com,"Subject, {i}","{auth}",'
            f'"{{""Phish"":[""Spoof intra-org""]}}"\r\n'
            for i in range(n)
        )
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (n, n, 0)
    last = one(store, f"id-{n - 1}", f"user{(n - 1) % 1000}@contoso.com")
    assert last["source_row"] == n
    assert last["detection_flags"] == ["Spoof intra-org"]
    assert last["auth_dmarc"] == "fail"
    (fails,) = store.con.execute(
        "SELECT count(*) FROM messages WHERE auth_compauth = 'fail'"
    ).fetchone() or (0,)
    assert fails == n
    # Every row carries its own line, across row groups and threads (the rows are numbered
    # by re-adding the column, see ``_number_in_order``), and nothing of that is left.
    (misnumbered,) = store.con.execute(
        "SELECT count(*) FROM messages "
        "WHERE source_row <> CAST(split_part(network_message_id, '-', 2) AS BIGINT) + 1"
    ).fetchone() or (1,)
    assert misnumbered == 0
    assert store.con.execute(
        "SELECT column_name, column_default FROM duckdb_columns() "
        "WHERE table_name = 'messages' AND column_default IS NOT NULL"
    ).fetchall() == []
    assert store.con.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall() == []


def _big_file(path: Path, n: int, broken: dict[int, str]) -> None:
    """``n`` good records, ``id-i`` on line i + 2 unless broken lines come before it;
    ``broken`` maps the good records' count before each broken line to its text."""
    auth = AUTH_FAIL.replace('"', '""')
    with path.open("w", newline="") as fh:
        fh.write(",".join(MIN_HEADER) + "\r\n")
        for i in range(n):
            if i in broken:
                fh.write(broken[i])
            fh.write(
                f"2025-01-06T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,id-{i},"
                f"s@contoso.com,203.0.113.{i % 250},,u{i % 1000}@contoso.com,s,"
                f'"{auth}",\r\n'
            )
        if n in broken:
            fh.write(broken[n])


@pytest.mark.parametrize(
    ("broken_before", "moved"),
    [
        ({0: "x,y\r\n", 150_000: "a,b\r\n", 150_001: "c\r\n"}, 200_000),
        ({199_000: "a,b\r\n"}, 1_000),
        ({200_000: '2025-01-06T08:00:00Z,id-x,"never closed'}, 0),  # a download cut short
    ],
)
def test_broken_lines_in_a_large_file_keep_every_row_on_its_line(
    store: EvidenceStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    broken_before: dict[int, str],
    moved: int,
) -> None:
    """Rows are numbered in order, then only those after the first broken line move."""
    import dsguard.sources._tabular as tabular

    shifted = returns_of(monkeypatch, tabular, "_shift_past_broken")
    n = 200_000
    path = tmp_path / "email_events_broken_big.csv"
    _big_file(path, n, broken_before)
    (report,) = ingest(store, tmp_path, path)
    assert (report.read, report.loaded, report.rejected) == (
        n + len(broken_before), n, len(broken_before))  # fmt: skip
    assert shifted == [moved]
    # id-i sits after i good lines and every broken line written before it.
    misplaced = store.con.execute(
        "SELECT count(*) FROM messages m, (SELECT unnest(?) AS at) b "
        "WHERE true GROUP BY m.network_message_id, m.source_row "
        "HAVING m.source_row <> CAST(split_part(m.network_message_id, '-', 2) AS BIGINT) + 1"
        " + count(*) FILTER (WHERE b.at <= CAST(split_part(m.network_message_id, '-', 2)"
        " AS BIGINT))",
        [sorted(broken_before)],
    ).fetchall()
    assert misplaced == []
    expected = sorted(k + j + 1 for j, k in enumerate(sorted(broken_before)))
    assert [q["row"] for q in quarantine(store)] == expected
    tables = [r[0] for r in store.con.execute("SHOW ALL TABLES").fetchall()]
    assert not [t for t in tables if t.endswith("_rejected")]  # set apart, then dropped


def _numbered_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "email_events_numbered.csv"
    records = [row(i) for i in range(n)]
    records.insert(2, row(99, NetworkMessageId=""))  # a rejected row keeps its line too
    path.write_text(csv_text(MIN_HEADER, records), newline="")
    return path


def test_rows_are_numbered_without_an_update_of_every_row(
    store: EvidenceStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dsguard.sources._tabular as tabular

    calls = returns_of(monkeypatch, tabular, "_number_in_order")
    (report,) = ingest(store, tmp_path, _numbered_file(tmp_path, 5))
    assert calls == [True]
    assert (report.loaded, report.rejected) == (5, 1)
    assert [r["source_row"] for r in rows(store)] == [1, 2, 4, 5, 6]
    assert [q["row"] for q in quarantine(store)] == [3]


def test_rows_are_numbered_by_update_when_the_order_check_fails(
    store: EvidenceStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dsguard.sources._tabular as tabular

    real = tabular._misplaced

    def shuffled(con: duckdb.DuckDBPyConnection, stage: str, targets: list[str]) -> int:
        # As if DuckDB had filled the new columns out of order.
        con.execute(f'UPDATE "{stage}" SET source_row = source_row + 10, _row = _row + 10')
        return real(con, stage, targets)

    monkeypatch.setattr(tabular, "_misplaced", shuffled)
    (report,) = ingest(store, tmp_path, _numbered_file(tmp_path, 5))
    assert (report.loaded, report.rejected) == (5, 1)
    assert [r["source_row"] for r in rows(store)] == [1, 2, 4, 5, 6]
    assert [q["row"] for q in quarantine(store)] == [3]
    assert store.con.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall() == []


# ----------------------------------------------------------------------------- helpers
def test_addresses_lose_padding_at_either_end_and_nothing_else() -> None:
    """``dsg_addr`` tests only an address's first and last character for padding (space,
    ``<``, ``>``, tab); whatever it finds there is trimmed, the rest kept, and case lowered."""
    con = duckdb.connect()
    install_macros(con)
    cases = {
        "A@Contoso.example": "a@contoso.example",
        "": None,
        "  ": None,
        "<>": None,
        "é@x.example": "é@x.example",
        "a b@x.example": "a b@x.example",  # padding inside is not padding
        "a@x.example\u00a0": "a@x.example\u00a0",  # only the four characters count
    }
    for pad in (" ", "<", ">", "\t"):
        cases[f"{pad}a@x.example"] = "a@x.example"
        cases[f"a@x.example{pad}"] = "a@x.example"
    cases["\t<A@X.example> "] = "a@x.example"
    for raw, want in cases.items():
        (got,) = con.execute("SELECT dsg_addr(?)", [raw]).fetchone() or (None,)
        assert got == want, repr(raw)
    assert con.execute("SELECT dsg_addr(NULL)").fetchone() == (None,)


def test_ip_patterns_agree_with_ipaddress() -> None:
    con = duckdb.connect()
    install_macros(con)
    cases = [
        "0.0.0.0",
        "255.255.255.255",
        "256.0.0.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "::",
        "::1",
        "1::",
        "2001:db8::1",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "::ffff:192.0.2.1",
        "::ffff:192.0.2.256",
        "12345::",
        "fe80::1:2:3:4:5:6",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "g::1",
        ":1::",
        "1:2:3:4:5:6:1.2.3.4",
    ]
    for case in cases:
        v4, v6 = con.execute("SELECT dsg_ipv4(?), dsg_ipv6(?)", [case, case]).fetchone() or ()
        assert v4 == _valid(ipaddress.IPv4Address, case), case
        assert v6 == _valid(ipaddress.IPv6Address, case), case


def _valid(kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address], text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def test_slash_date_order_is_one_setting() -> None:
    con = duckdb.connect()
    (value,) = con.execute(
        "SELECT try_strptime('6/1/2025 8:15:30', ?)", [slash_date_formats("DMY")]
    ).fetchone() or (None,)
    assert value == datetime(2025, 1, 6, 8, 15, 30)


def test_header_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('\ufeff#TYPE Selected.X\r\n"timestamp";"NETWORKMESSAGEID";"Other"\r\n')
    header = read_csv_header(utf8_file(path, tmp_path), ("Timestamp", "NetworkMessageId"))
    assert header is not None
    assert (header.delimiter, header.skip, header.has_rows) == (";", 1, False)
    assert header.layout.columns == [
        ("Timestamp", "Timestamp"),
        ("NetworkMessageId", "NetworkMessageId"),
        ("_extra_1", "Other"),
    ]
    assert isinstance(header.layout, RawLayout)


def test_lone_surrogates_and_odd_keys(store: EvidenceStore, tmp_path: Path) -> None:
    lines = (FIXTURES / "email_events_rows.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["Subject"] = "\ud800 broken escape"  # legal JSON (\\ud800), not legal UTF-8
    first["X-\udfff"] = "odd key"
    first["subject"] = first.pop("Subject")  # key casing varies
    text = json.dumps(first) + "\n" + lines[1] + "\n"
    assert "\\ud800" in text
    path = place(tmp_path, "email_events_odd.jsonl", text)
    (report,) = ingest(store, tmp_path, path)
    assert (report.loaded, report.rejected) == (2, 0)
    assert one(store, SPOOF_ID, "alex.wilber@contoso.com")["subject"] == "\ufffd broken escape"
    assert report.warnings == ["unknown columns not loaded (kept in quarantine copies): X-\ufffd"]


def test_stage_leaves_nothing_behind(store: EvidenceStore, tmp_path: Path) -> None:
    broken = csv_text(MIN_HEADER, [row(1)]) + "2025-01-06T08:00:00Z,short\r\n"
    paths = [
        place(tmp_path, "email_events_a.csv", broken),
        place(tmp_path, "email_events_b.json", fixture=FIXTURES / "email_events_rows.json"),
    ]
    ingest(store, tmp_path, *paths)
    leftovers = store.con.execute(
        """SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_raw%' ESCAPE '\\'
           UNION ALL
           SELECT view_name FROM duckdb_views() WHERE view_name LIKE '\\_raw%' ESCAPE '\\'"""
    ).fetchall()
    assert leftovers == []


def test_streamed_csv_path_with_quotes_is_data_not_sql(
    store: EvidenceStore, tmp_path: Path
) -> None:
    """The streamed CSV is read by a view whose text holds the path: a quote in a file name
    must stay part of the name."""
    text = csv_text(MIN_HEADER, [row(1), row(2)])
    path = place(tmp_path, "email_events_o'brien'); DROP TABLE messages; --.csv", text)
    (report,) = ingest(store, tmp_path, path)
    assert (report.error, report.read, report.loaded) == (None, 2, 2)
    assert [r["source_row"] for r in rows(store)] == [1, 2]
