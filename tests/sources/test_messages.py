"""Raw message files: parsing, damage, the reader's accounting in the store, Outlook .msg, and
every real-world message in ../shared (read from there, never copied)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.evidence.model import RawMessage
from dsguard.evidence.store import EvidenceStore
from dsguard.sources.messages import (
    MessageFileError,
    MessageFileReader,
    bundle_relative,
    parse_message_bytes,
    parse_message_file,
)

DIRECT_SEND = (
    b"Received: from AM6P191CA0001.EURP191.PROD.OUTLOOK.COM (2603:10a6:209:8b::14) by\r\n"
    b" DB9PR01MB1234.eurprd01.prod.outlook.com with HTTPS; Mon, 6 Jan 2026 10:00:03 +0000\r\n"
    b"Authentication-Results: spf=fail (sender IP is 203.0.113.66)\r\n"
    b" smtp.mailfrom=contoso.com; dkim=none (message not signed) header.d=none;dmarc=fail\r\n"
    b" action=none header.from=contoso.com;compauth=fail reason=601\r\n"
    b"Received: from WIN-PRINTER (203.0.113.66) by AM0PR01FT012.mail.protection.outlook.com\r\n"
    b" (10.152.16.1) with Microsoft SMTP Server id 15.20.6954.15 via Frontend Transport;\r\n"
    b" Mon, 6 Jan 2026 10:00:01 +0000\r\n"
    b"From: =?utf-8?B?Q0VPIELDtnNl?= <CEO@Contoso.com>\r\n"
    b"To: ceo@contoso.com, \"Finance, Team\" <finance@contoso.com>\r\n"
    b"Cc: audit@contoso.com\r\n"
    b"Subject: =?utf-8?Q?Voicemail_f=C3=BCr_you?=\r\n"
    b"Date: Mon, 6 Jan 2026 11:00:00 +0100\r\n"
    b"Message-ID: <abc123@WIN-PRINTER>\r\n"
    b"X-Mailer: PowerShell\r\n"
    b"X-MS-Exchange-Organization-Network-Message-Id: 4943bf69-c227-4d82-7725-08db120428e7\r\n"
    b"X-MS-Exchange-Organization-MessageDirectionality: Incoming\r\n"
    b"X-MS-Exchange-Organization-AuthAs: Anonymous\r\n"
    b"X-MS-Exchange-CrossTenant-FromEntityHeader: Internet\r\n"
    b"X-Forefront-Antispam-Report: CIP:203.0.113.66;CTRY:NL;IPV:NLI;SFV:SPM;H:WIN-PRINTER;\r\n"
    b"\tCAT:SPOOF;DIR:INB;\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Please call back.\r\n"
)


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / "messages" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- parsing
def test_parse_direct_send_message() -> None:
    m = parse_message_bytes(DIRECT_SEND, name="x.eml")
    assert m.format == "eml" and len(m.sha256) == 64 and m.size == len(DIRECT_SEND)
    assert m.subject == "Voicemail für you"
    assert (m.from_address, m.from_display_name) == ("ceo@contoso.com", "CEO Böse")
    assert m.to_addresses == ["ceo@contoso.com", "finance@contoso.com"]
    assert m.cc_addresses == ["audit@contoso.com"]
    assert m.date is not None and m.date.isoformat() == "2026-01-06T10:00:00+00:00"
    assert m.internet_message_id == "<abc123@WIN-PRINTER>"
    assert m.headers[0][0] == "Received" and len(m.headers) == 17
    ev = m.evidence
    assert ev.received_by_exo and ev.network_message_id == "4943bf69-c227-4d82-7725-08db120428e7"
    assert ev.auth is not None and ev.auth.compauth_reason == "601"
    assert (ev.antispam.cip, ev.antispam.cat) == ("203.0.113.66", "SPOOF")
    assert ev.mailer == "PowerShell"
    assert m.defects == []
    record = m.to_record("messages/x.eml")
    assert isinstance(record, RawMessage) and record.evidence["org"]["auth_as"] == "Anonymous"


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        # broken RFC 2047: unknown charset, bad base64, unterminated word
        (b"From: =?x-unknown?B?QUJD?= <a@b.example>\nSubject: =?utf-8?B?!!!?= =?utf-8?Q?ok\n"
         b"Date: Mon, 6 Jan 2026 10:00:00 +0000\n\nbody", {"from_display_name": "ABC"}),
        # raw non-UTF-8 bytes in headers
        (b"From: J\xe9r\xf4me <j@b.example>\nSubject: caf\xe9\nDate: Mon, 6 Jan 2026 10:00:00 +0000"
         b"\n\nbody", {"subject": "café", "from_display_name": "Jérôme"}),
        # duplicate From (the spoof trick of two authors), LF line endings
        (b"From: a@one.example\nFrom: b@two.example\nTo: x@y.example\n\nbody",
         {"from_address": "a@one.example"}),
        # a display name that contains a bracketed address
        (b'From: "Bank <support@bank.example>" <attacker@evil.example>\n\nbody',
         {"from_address": "attacker@evil.example"}),
        # obsolete "From :" (read by the stdlib as an mbox line) and a BOM
        (b"\xef\xbb\xbfFrom : a@b.example\nSubject : hi\n\nbody",
         {"from_address": "a@b.example", "subject": "hi"}),
        # mbox From_ line, mixed line endings, missing Date
        (b"From MAILER-DAEMON Mon Jan  6 10:00:00 2026\r\nFrom: a@b.example\nTo: c@d.example\r\n"
         b"\r\nbody", {"from_address": "a@b.example", "date": None}),
        # only MIME headers
        (b"Content-Type: text/plain\r\nMIME-Version: 1.0\r\n\r\nhello", {"from_address": None}),
        # multipart with a missing boundary
        (b"From: a@b.example\nContent-Type: multipart/mixed; boundary=zz\n\nno parts here",
         {"from_address": "a@b.example"}),
    ],
)
def test_damaged_messages_load_with_defects(data: bytes, expect: dict[str, object]) -> None:
    m = parse_message_bytes(data, name="d.eml")
    for key, value in expect.items():
        assert getattr(m, key) == value, key
    json.dumps(m.model_dump(mode="json"))  # everything is serialisable text
    assert all("\n" not in d for d in m.defects)


def test_defects_name_what_was_wrong() -> None:
    dup = parse_message_bytes(b"From: a@x.example\nFrom: b@y.example\n\nx", name="a.eml")
    assert "2 from headers; the first is used" in dup.defects
    assert "no Date header" in dup.defects
    bad = parse_message_bytes(b"From: J\xe9 <j@x.example>\nDate: someday\n\nx", name="a.eml")
    assert any(d.startswith("non-UTF-8 bytes in header(s) From") for d in bad.defects)
    assert any(d.startswith("unparsable Date") for d in bad.defects)
    mime = parse_message_bytes(
        b"From: a@x.example\nContent-Type: multipart/mixed; boundary=zz\n\nx", name="a.eml"
    )
    assert any("Boundary" in d for d in mime.defects)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.eml", b"", "empty file"),
        ("blank.eml", b"\r\n \r\n", "empty file"),
        ("binary.eml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("page.eml", b"<!DOCTYPE html><html><body>hi</body></html>", "HTML or XML document"),
        ("text.eml", b"just some notes\nwithout headers\n", "no header fields"),
        ("yaml.eml", b"name: value\nother: thing\n", "no message header fields"),
        ("notole.msg", DIRECT_SEND, "not an Outlook .msg: no OLE compound file signature; "
                                    "it looks like an .eml"),
        ("junk.msg", b"\x00" * 2048, "not an Outlook .msg"),
        ("short.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "truncated OLE"),
        ("trunc.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\xff" * 4000, "not a readable"),
        ("ole.eml", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000, "an Outlook .msg"),
    ],
)
def test_not_a_message_is_a_one_line_error(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(MessageFileError) as err:
        parse_message_bytes(data, name=name)
    assert str(err.value).startswith(reason)
    assert "\n" not in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["x.eml", "x.msg", "x.bin"]))
def test_arbitrary_bytes_parse_or_fail_with_a_reason(data: bytes, name: str) -> None:
    try:
        m = parse_message_bytes(data, name=name)
    except MessageFileError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        json.dumps(m.model_dump(mode="json"))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_real_shape_never_escapes(data: st.DataObject) -> None:
    raw = bytearray(DIRECT_SEND)
    for _ in range(data.draw(st.integers(1, 20))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MessageFileError):
        parse_message_bytes(bytes(raw), name="x.eml")


def test_unreadable_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MessageFileError, match="cannot read file"):
        parse_message_file(tmp_path / "missing.eml")
    big = tmp_path / "big.eml"
    big.write_bytes(DIRECT_SEND)
    monkeypatch.setattr("dsguard.sources.messages.MAX_MESSAGE_BYTES", 10)
    with pytest.raises(MessageFileError, match="larger than"):
        parse_message_file(big)


def test_bundle_relative_paths(tmp_path: Path) -> None:
    assert bundle_relative(tmp_path / "b" / "messages" / "a" / "x.eml") == "messages/a/x.eml"
    assert bundle_relative(Path("/elsewhere/x.msg")) == "x.msg"
    write(tmp_path, "a/b/c.eml", b"x")
    write(tmp_path, "d.msg", b"x")
    write(tmp_path, "notes.txt", b"x")
    found = sorted(p.relative_to(tmp_path).as_posix()
                   for pattern in MessageFileReader.patterns for p in tmp_path.glob(pattern))
    assert found == ["messages/a/b/c.eml", "messages/d.msg"]


# --------------------------------------------------------------------------- the store
def test_store_round_trip_and_accounting(tmp_path: Path) -> None:
    good = write(tmp_path, "inbox/spoof.eml", DIRECT_SEND)
    copy = write(tmp_path, "inbox/copy-of-spoof.eml", DIRECT_SEND)
    other = write(tmp_path, "lf.eml", DIRECT_SEND.replace(b"\r\n", b"\n"))
    empty = write(tmp_path, "empty.eml", b"")
    html = write(tmp_path, "page.eml", b"<html><body>not mail</body></html>")
    notole = write(tmp_path, "fake.msg", b"hello")
    files = [good, copy, other, empty, html, notole]
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        summary = store.ingest([(MessageFileReader(), p) for p in files], root=tmp_path)
        by_file = {r.file: r for r in summary.files}
        assert summary.balanced
        for r in summary.files:
            assert r.read == r.loaded + r.duplicates + r.rejected, r
        assert by_file["messages/inbox/spoof.eml"].loaded == 1
        # byte-identical copy elsewhere in the bundle: read, and a duplicate by its sha256
        copy = by_file["messages/inbox/copy-of-spoof.eml"]
        assert (copy.read, copy.loaded, copy.duplicates) == (1, 0, 1)
        assert by_file["messages/lf.eml"].loaded == 1  # other bytes, other sha256
        assert [by_file[f].rejected for f in ("messages/empty.eml", "messages/page.eml",
                                              "messages/fake.msg")] == [1, 1, 1]
        assert (summary.read, summary.loaded, summary.duplicates, summary.rejected) == (6, 2, 1, 3)
        assert store.count(RawMessage) == 2
        quarantine = {q["file"]: q["reason"] for q in store.quarantine_rows()}
        assert quarantine == {
            "messages/empty.eml": "empty file",
            "messages/page.eml": "HTML or XML document, not a message",
            "messages/fake.msg": "not an Outlook .msg: no OLE compound file signature",
        }
        row = store.con.execute(
            "SELECT file, source_file, format, sha256, network_message_id, subject, "
            "from_address, to_addresses, date, headers, evidence, defects FROM raw_messages "
            "WHERE file = 'messages/inbox/spoof.eml'"
        ).fetchone()
    assert row is not None
    file, source_file, fmt, sha, nmid, subject, sender, to, date, headers, evidence, defects = row
    assert (file, source_file, fmt) == ("messages/inbox/spoof.eml",) * 2 + ("eml",)
    assert nmid == "4943bf69-c227-4d82-7725-08db120428e7" and subject == "Voicemail für you"
    assert sender == "ceo@contoso.com" and to == ["ceo@contoso.com", "finance@contoso.com"]
    assert date.isoformat().startswith("2026-01-06T10:00:00")
    assert json.loads(headers)[0][0] == "Received" and defects is None
    ev = json.loads(evidence)
    assert ev["auth"]["compauth_reason"] == "601" and ev["org"]["auth_as"] == "Anonymous"
    assert len(sha) == 64


def test_a_row_the_store_cannot_hold_is_rejected_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "a.eml", DIRECT_SEND)
    good_row = MessageFileReader.row

    def bad_row(p: Path, rel: str) -> dict[str, object]:
        return {**good_row(p, rel), "date": "not a timestamp"}

    monkeypatch.setattr(MessageFileReader, "row", staticmethod(bad_row))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        summary = store.ingest([(MessageFileReader(), path)], root=tmp_path)
        assert (summary.read, summary.rejected) == (1, 1)
        assert next(iter(store.quarantine_rows()))["reason"].startswith("cannot store: ")


def test_same_message_twice_in_one_file_list_is_stored_once(tmp_path: Path) -> None:
    a = write(tmp_path, "a.eml", DIRECT_SEND)
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest([(MessageFileReader(), a)], root=tmp_path)
        again = store.ingest([(MessageFileReader(), a)], root=tmp_path)
        assert again.files[0].skipped and store.count(RawMessage) == 1


# --------------------------------------------------------------------------- Outlook .msg
# extract-msg reads .msg but cannot write one, so the tests build a minimal Compound File
# Binary (MS-CFB v3: 512-byte sectors, every stream in the 64-byte mini stream) by hand.
_SECTOR, _MINI = 512, 64
_END, _FREE, _FATSECT, _NONE = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _dir_entry(name: str, kind: int, child: int = _NONE, right: int = _NONE, start: int = 0,
               size: int = 0) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    return (encoded.ljust(64, b"\0") + struct.pack("<HBB3I", len(encoded), kind, 1, _NONE, right,
                                                   child)
            + b"\0" * 36 + struct.pack("<IQ", start, size))


def _chain(first: int, count: int) -> list[int]:
    return [first + i + 1 for i in range(count - 1)] + [_END] if count else []


def build_cfb(streams: dict[str, bytes]) -> bytes:
    """A compound file whose root storage holds ``streams`` (each under 4096 bytes)."""
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # CFB sibling order
    mini_fat: list[int] = []
    ministream = b""
    starts: dict[str, int] = {}
    for n in names:
        count = max(1, -(-len(streams[n]) // _MINI))
        starts[n] = len(mini_fat)
        mini_fat += _chain(len(mini_fat), count)
        ministream += streams[n].ljust(count * _MINI, b"\0")
    n_dir = -(-(len(names) + 1) // 4)
    n_minifat = -(-len(mini_fat) * 4 // _SECTOR)
    n_ms = -(-len(ministream) // _SECTOR)
    dir_at, minifat_at = 1, 1 + n_dir
    ms_at = minifat_at + n_minifat
    fat = [_FATSECT, *_chain(dir_at, n_dir), *_chain(minifat_at, n_minifat), *_chain(ms_at, n_ms)]
    assert len(fat) <= _SECTOR // 4
    fat += [_FREE] * (_SECTOR // 4 - len(fat))
    entries = [_dir_entry("Root Entry", 5, child=1 if names else _NONE,
                          start=ms_at if n_ms else _END, size=len(ministream))]
    for i, n in enumerate(names):  # a right-leaning chain is a valid sibling tree
        right = i + 2 if i + 1 < len(names) else _NONE
        entries.append(_dir_entry(n, 2, right=right, start=starts[n], size=len(streams[n])))
    entries += [_dir_entry("", 0)] * (-len(entries) % 4)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<5H", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<9I", 0, 1, dir_at, 0, 4096, minifat_at if n_minifat else _END,
                            n_minifat, _END, 0)
              + struct.pack("<109I", 0, *([_FREE] * 108)))
    minifat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    minifat_bytes += struct.pack("<I", _FREE) * ((n_minifat * _SECTOR - len(minifat_bytes)) // 4)
    return (header + struct.pack(f"<{len(fat)}I", *fat) + b"".join(entries) + minifat_bytes
            + ministream.ljust(n_ms * _SECTOR, b"\0"))


def build_msg(transport_headers: str | None, *, message_class: str = "IPM.Note",
              subject: str = "Invoice", sender: str = "ceo@contoso.com") -> bytes:
    """A minimal Outlook message: property stream, class, subject, sender, headers."""
    def u(text: str) -> bytes:
        return text.encode("utf-16-le")

    props = b"\0" * 32 + struct.pack("<IIQ", 0x0E070003, 6, 1)  # PR_MESSAGE_FLAGS = read
    props += struct.pack("<IIQ", 0x340D0003, 6, 0x40000)  # PR_STORE_SUPPORT_MASK: Unicode
    streams = {
        "__properties_version1.0": props,
        "__substg1.0_001A001F": u(message_class),
        "__substg1.0_0037001F": u(subject),
        "__substg1.0_0C1A001F": u("The CEO"),
        "__substg1.0_5D01001F": u(sender),
    }
    if transport_headers is not None:
        streams["__substg1.0_007D001F"] = u(transport_headers)
    return build_cfb(streams)


def _transport_headers() -> str:
    head = DIRECT_SEND.split(b"\r\n\r\n", 1)[0].decode()
    return "Microsoft Mail Internet Headers Version 2.0\r\n" + head + "\r\n\r\n"


def test_msg_with_transport_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "outlook.msg", build_msg(_transport_headers()))
    m = parse_message_file(path)
    assert m.format == "msg"
    assert m.subject == "Voicemail für you"  # from the transport headers
    assert m.from_address == "ceo@contoso.com" and m.to_addresses[0] == "ceo@contoso.com"
    assert m.evidence.received_by_exo and m.evidence.auth is not None
    assert m.evidence.auth.compauth_reason == "601"
    assert m.evidence.cross_tenant.from_entity_header == "Internet"
    assert m.defects == []
    if Path("/proc/self/fd").is_dir():  # the file is closed again
        targets = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert str(path.resolve()) not in targets


def test_msg_without_transport_headers_falls_back_to_mapi_properties() -> None:
    m = parse_message_bytes(build_msg(None, subject="Draft", sender="Alice@Contoso.com"),
                            name="draft.msg")
    assert (m.subject, m.from_address, m.from_display_name) == (
        "Draft", "alice@contoso.com", "The CEO")
    assert m.headers == [] and not m.evidence.received_by_exo
    assert m.defects == ["no transport headers (PR_TRANSPORT_MESSAGE_HEADERS): no header evidence"]


def test_outlook_items_that_are_not_mail_are_rejected() -> None:
    with pytest.raises(MessageFileError, match=r"class 'IPM\.Contact', not an e-mail"):
        parse_message_bytes(build_msg(None, message_class="IPM.Contact"), name="c.msg")
    with pytest.raises(MessageFileError, match=r"^not a readable Outlook \.msg: "):
        parse_message_bytes(build_cfb({"WordDocument": b"\0" * 100}), name="doc.msg")
    with pytest.raises(MessageFileError, match=r"class 'unknown', not an e-mail"):
        parse_message_bytes(build_cfb({"__properties_version1.0": b"\0" * 32}), name="x.msg")


def test_msg_in_the_store(tmp_path: Path) -> None:
    good = write(tmp_path, "a.msg", build_msg(_transport_headers()))
    doc = write(tmp_path, "b.msg", build_cfb({"WordDocument": b"\0" * 100}))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        summary = store.ingest([(MessageFileReader(), good), (MessageFileReader(), doc)],
                               root=tmp_path)
        assert summary.balanced and (summary.loaded, summary.rejected) == (1, 1)
        fmt = store.con.execute("SELECT format FROM raw_messages").fetchall()
    assert fmt == [("msg",)]


# --------------------------------------------------------------------------- real mail
@pytest.mark.realmail
def test_every_real_message_loads_or_is_set_aside(real_eml_dir: Path, tmp_path: Path) -> None:
    files = sorted(p for p in real_eml_dir.rglob("*") if p.suffix.lower() in (".eml", ".msg"))
    if not files:
        pytest.skip(f"no .eml/.msg files under {real_eml_dir}")
    loaded, set_aside = [], {}
    for path in files:
        try:
            loaded.append(parse_message_file(path))
        except MessageFileError as exc:
            set_aside[path.name] = str(exc)
    assert len(loaded) + len(set_aside) == len(files)
    for reason in set_aside.values():
        assert "\n" not in reason and not reason.startswith("cannot parse"), reason
    for m in loaded:
        json.dumps(m.model_dump(mode="json"))
    exo = [m for m in loaded if m.evidence.received_by_exo]
    assert exo, "expected Exchange Online stamps in the real corpus"

    # Through the store, as a bundle: every file accounted for.
    bundle = tmp_path / "bundle"
    links = []
    for i, path in enumerate(files):
        link = bundle / "messages" / f"{i:04d}-{path.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        links.append(link)
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        summary = store.ingest([(MessageFileReader(), p) for p in links], root=bundle)
        assert summary.balanced
        read = sum(f.read for f in summary.files)
        skipped = sum(f.skipped for f in summary.files)
        assert read + skipped == len(files)
        assert summary.rejected == len(set_aside)
        assert summary.loaded + summary.duplicates == len(loaded) - skipped
        assert store.count(RawMessage) == summary.loaded
    print(f"\nreal mail: {len(files)} files, {len(loaded)} loaded, {len(set_aside)} set aside "
          f"{set_aside}, {len(exo)} with trusted Exchange Online stamps")


@pytest.mark.realmail
def test_real_messages_agree_with_the_manifest(real_eml_dir: Path) -> None:
    """The corpus manifest lists the topmost Microsoft Authentication-Results verdicts,
    computed independently; the trusted results must match them."""
    manifests = list(real_eml_dir.rglob("MANIFEST.tsv"))
    if not manifests:
        pytest.skip("no MANIFEST.tsv beside the real messages")
    checked = 0
    for manifest in manifests:
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = manifest.parent / row["file"]
                if not path.is_file() or row.get("spf") is None:
                    continue
                try:
                    m = parse_message_file(path)
                except MessageFileError:
                    continue
                a = m.evidence.auth
                got = (a.spf, a.dkim, a.dmarc,
                       f"{a.compauth}/{a.compauth_reason}" if a.compauth else None) if a else (
                    None, None, None, None)
                want = tuple(None if row[k] in ("", "-") else row[k]
                             for k in ("spf", "dkim", "dmarc", "compauth"))
                assert got == want, row["file"]
                checked += 1
    assert checked


_SIMPLE_FROM = re.compile(r'^[^<>"(),]*<([^<>\s"]+@[^<>\s"]+)>\s*$')


@pytest.mark.realmail
def test_real_from_addresses_follow_the_angle_brackets(real_eml_dir: Path) -> None:
    """Where From is ``name <addr>`` with nothing to confuse a parser, that addr is taken,
    including display names holding '@' or raw UTF-8 (the stdlib disagrees on some)."""
    checked = 0
    for path in sorted(real_eml_dir.rglob("*.eml")):
        try:
            m = parse_message_file(path)
        except MessageFileError:
            continue
        froms = [v for n, v in m.headers if n.lower() == "from"]
        if len(froms) != 1 or not (hit := _SIMPLE_FROM.match(" ".join(froms[0].split()))):
            continue
        assert m.from_address == hit.group(1).lower(), path.name
        checked += 1
    assert checked
