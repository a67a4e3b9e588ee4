"""Message trace reader: EAC reports and Get-MessageTraceV2 exports, in the encodings Windows
writes, through the real store with the accounting checked on every ingest."""

from __future__ import annotations

import codecs
import gzip
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsguard.evidence.model import FileReport
from dsguard.evidence.store import EvidenceStore
from dsguard.sources.message_trace import V2_NETWORK_MESSAGE_ID, MessageTraceReader

pytestmark = pytest.mark.usefixtures("both_stagings")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "message_trace"
EE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "email_events"
SPOOF_ID = "6f1c0f5e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
V2_WARNING = "3 timestamps carry no time zone (e.g. '1/6/2025 8:15:30 AM'); read as UTC"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    with EvidenceStore(tmp_path / "e.duckdb") as s:
        yield s


def place(tmp_path: Path, name: str, data: bytes | None = None) -> Path:
    target = tmp_path / name
    if data is None:
        shutil.copyfile(FIXTURES / name, target)
    else:
        target.write_bytes(data)
    return target


def ingest(store: EvidenceStore, root: Path, *paths: Path) -> list[FileReport]:
    summary = store.ingest([(MessageTraceReader(), p) for p in paths], root=root)
    for report in summary.files:
        assert report.balanced, report
        assert report.read == report.loaded + report.duplicates + report.rejected
    return summary.files


Row = dict[str, Any]


def rows(store: EvidenceStore, where: str = "true", params: list[Any] | None = None) -> list[Row]:
    cur = store.con.execute(
        f"SELECT * FROM messages WHERE {where} ORDER BY source_row, recipient", params or []
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one(store: EvidenceStore, nmid: str, recipient: str) -> Row:
    (found,) = rows(store, "network_message_id = ? AND recipient = ?", [nmid, recipient])
    return found


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- EAC reports
def test_eac_enhanced_summary(store: EvidenceStore, tmp_path: Path) -> None:
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_eac.csv"))
    # Three report rows; the first names two recipients and becomes two rows.
    assert (report.read, report.loaded, report.rejected) == (4, 4, 0)
    assert report.warnings == []

    alex = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert alex["source"] == "message_trace"
    assert alex["ts"] == datetime(2025, 1, 6, 8, 15, 30, 123456, tzinfo=UTC)
    assert alex["sender_from"] == "ceo@contoso.com"  # P2 = sender_address
    assert alex["sender_from_domain"] == "contoso.com"
    assert alex["sender_mail_from"] is None  # P1 unknown without return_path
    assert alex["sender_ipv4"] == "203.0.113.45"
    assert alex["direction"] == "Inbound"
    assert alex["delivery_action"] == "Delivered"
    assert alex["connectors"] is None
    assert alex["subject"] == 'Invoice #4471 "urgent"'
    assert alex["internet_message_id"] == "<20250106081530.A1B2@contoso.com>"
    assert alex["auth_spf"] is None and alex["detection_flags"] is None
    assert (alex["source_file"], alex["source_row"]) == ("message_trace_eac.csv", 1)

    megan = one(store, SPOOF_ID, "megan.bowen@contoso.com")
    assert megan["delivery_action"] == "Failed"
    assert megan["source_row"] == 1

    partner = one(store, "0d6a4e7b-58c2-4f1e-a3b9-7c2d1e0f9a8b", "alex.wilber@contoso.com")
    assert partner["sender_ipv6"] == "2001:db8:4::1a" and partner["sender_ipv4"] is None
    assert partner["connectors"] == "Fabrikam partner connector"

    out = one(store, "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "partner@fabrikam.com")
    assert out["direction"] == "Outbound"  # Originating
    assert out["delivery_action"] == "Delivered"  # Send


def test_eac_extended_report(store: EvidenceStore, tmp_path: Path) -> None:
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_extended.csv"))
    # RECEIVE (2 recipients) + AGENTINFO (2) + DELIVER (1): the RECEIVE rows are kept.
    assert (report.read, report.loaded, report.duplicates) == (5, 2, 3)
    alex = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert alex["ts"] == datetime(2025, 1, 6, 8, 15, 30, 98000, tzinfo=UTC)
    assert alex["sender_mail_from"] == "scanner@contoso.com"  # P1 = return_path
    assert alex["sender_mail_from_domain"] == "contoso.com"
    assert alex["sender_from"] == "ceo@contoso.com"
    assert alex["sender_ipv4"] == "203.0.113.45"  # client_ip, original_client_ip empty
    assert alex["delivery_action"] is None  # a RECEIVE event says nothing of the outcome
    assert alex["source_row"] == 1


# ----------------------------------------------------------------------------- V2 exports
def check_v2(store: EvidenceStore, report: FileReport) -> None:
    assert (report.read, report.loaded, report.rejected) == (3, 3, 0), report
    quarantined = one(store, SPOOF_ID, "alex.wilber@contoso.com")
    assert quarantined["ts"] == datetime(2025, 1, 6, 8, 15, 30, tzinfo=UTC)
    assert (quarantined["delivery_action"], quarantined["delivery_location"]) == (
        "Blocked",
        "Quarantine",
    )
    assert quarantined["sender_ipv4"] == "203.0.113.45"
    assert quarantined["direction"] is None
    assert quarantined["source_row"] == 1
    spam = one(store, "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "megan.bowen@contoso.com")
    assert (spam["delivery_action"], spam["delivery_location"]) == ("Junked", "Junk folder")
    assert spam["ts"] == datetime(2025, 1, 6, 14, 4, 59, tzinfo=UTC)  # PM
    sent = one(store, "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "partner@fabrikam.com")
    assert sent["delivery_action"] == "Delivered" and sent["sender_ipv4"] is None


def test_v2_export_with_type_line(store: EvidenceStore, tmp_path: Path) -> None:
    assert fixture_text("message_trace_v2.csv").startswith("#TYPE ")
    assert V2_NETWORK_MESSAGE_ID == "MessageTraceId"
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_v2.csv"))
    check_v2(store, report)
    assert report.warnings == [V2_WARNING]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
     ("utf-8", codecs.BOM_UTF8), ("utf-16-le", b"")],
)  # fmt: skip
def test_v2_encodings(store: EvidenceStore, tmp_path: Path, encoding: str, bom: bytes) -> None:
    data = bom + fixture_text("message_trace_v2.csv").encode(encoding)
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_enc.csv", data))
    check_v2(store, report)


def test_utf16_gzip_eac(store: EvidenceStore, tmp_path: Path) -> None:
    data = gzip.compress(fixture_text("message_trace_eac.csv").encode("utf-16"))
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_eac.csv.gz", data))
    assert (report.read, report.loaded) == (4, 4)
    assert one(store, SPOOF_ID, "megan.bowen@contoso.com")["subject"] == 'Invoice #4471 "urgent"'


def test_non_ascii_survives_utf16(store: EvidenceStore, tmp_path: Path) -> None:
    text = fixture_text("message_trace_v2.csv").replace("Newsletter", "Überweisung – 請求書")
    (report,) = ingest(
        store, tmp_path, place(tmp_path, "message_trace_u.csv", text.encode("utf-16"))
    )
    assert report.loaded == 3
    spam = one(store, "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "megan.bowen@contoso.com")
    assert spam["subject"] == "Überweisung – 請求書"


# ----------------------------------------------------------------------------- damage
def test_invalid_values_are_rejected(store: EvidenceStore, tmp_path: Path) -> None:
    header, *lines = fixture_text("message_trace_eac.csv").splitlines()
    lines[0] = lines[0].replace('"203.0.113.45"', '"203.0.113.450"')
    lines[1] = lines[1].replace('"2025-01-06T10:02:11.5000000Z"', '"06.01.2025 10:02"')
    lines[2] = lines[2].replace('"partner@fabrikam.com##Receive, Send"', '""')
    lines.append(lines[2].replace('"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"', '""'))
    text = "\r\n".join([header, *lines]) + "\r\n"
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_bad.csv", text.encode()))
    assert (report.read, report.loaded, report.rejected) == (5, 0, 5)
    reasons = sorted((q["row"], q["reason"]) for q in store.quarantine_rows())
    assert reasons == [
        (1, 'invalid original_client_ip "203.0.113.450"'),
        (1, 'invalid original_client_ip "203.0.113.450"'),
        (2, 'unparseable origin_timestamp "06.01.2025 10:02"'),
        (3, "missing recipient (Recipient_status)"),
        (4, "missing network_message_id"),
    ]


def test_truncated_export(store: EvidenceStore, tmp_path: Path) -> None:
    data = (FIXTURES / "message_trace_v2.csv").read_bytes()
    cut = data[: data.rindex(b"Re: PO 88")]
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_cut.csv", cut))
    assert (report.read, report.loaded, report.rejected) == (3, 2, 1)
    (bad,) = store.quarantine_rows()
    assert bad["row"] == 3 and bad["reason"].startswith("malformed CSV at line 5:")


def test_missing_required_column(store: EvidenceStore, tmp_path: Path) -> None:
    text = fixture_text("message_trace_v2.csv").replace('"MessageTraceId"', '"TraceId"')
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_x.csv", text.encode()))
    assert report.error == (
        "message_trace_x.csv: missing required column(s) network_message_id (or MessageTraceId)"
    )


def test_email_events_file_named_as_trace(store: EvidenceStore, tmp_path: Path) -> None:
    data = (EE_FIXTURES / "email_events_defender.csv").read_bytes()
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_ee.csv", data))
    assert report.error is not None
    assert report.error.startswith("message_trace_ee.csv: not a message trace export")
    assert report.error.endswith("(name it email_events*.csv)")


def test_semicolon_export(store: EvidenceStore, tmp_path: Path) -> None:
    text = fixture_text("message_trace_v2.csv").replace('","', '";"')
    (report,) = ingest(store, tmp_path, place(tmp_path, "message_trace_de.csv", text.encode()))
    check_v2(store, report)
    assert report.warnings == ["read as semicolon-separated, not comma", V2_WARNING]


def test_reingest_same_trace_in_other_file(store: EvidenceStore, tmp_path: Path) -> None:
    first = place(tmp_path, "message_trace_v2.csv")
    second = place(
        tmp_path,
        "message_trace_v2_again.csv",
        fixture_text("message_trace_v2.csv").encode("utf-16"),
    )
    a, b = ingest(store, tmp_path, first, second)
    assert (a.loaded, b.loaded, b.duplicates) == (3, 0, 3)
