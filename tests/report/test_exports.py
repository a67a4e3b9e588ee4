"""Exports: OCSF validates against the official schema, hostile text is inert in CSV and CEF,
Sentinel records match their declared streams, and the pipeline writes every file."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.outputs import dumps
from dsguard.report.exports import cef, ocsf, sentinel, write_exports
from dsguard.report.exports import csv as csv_export
from dsguard.report.exports._common import REPLACEMENT, finding_uid
from dsguard.results import Alert, Finding, Reason

GOLDEN = Path(__file__).resolve().parent / "golden"
OCSF_SCHEMAS = GOLDEN / "ocsf" / ocsf.OCSF_VERSION
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

FORMULA = '=HYPERLINK("http://x","y")'
ANSI = "\x1b[31mURGENT\x1b[0m"
HOSTILE_SUBJECTS = [
    FORMULA,
    "+SUM(1,2)",
    "-2+3",
    "@cmd",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\n=1+1",
    "\uff1dHYPERLINK(1)",
    f"{ANSI} voicemail",
    "<script>alert(1)</script>",
    "a|b\\c=d",
    "line1\nline2\r\nline3 cs1=forged",
]


def alert(**changes: Any) -> Alert:
    base: dict[str, Any] = {
        "id": "DSA-000000000001",
        "severity": "high",
        "title": "Direct Send self-addressed spoof: ceo@contoso.com",
        "score": 72.5,
        "network_message_ids": ["c6bb031c-9178-2b8b-a9b7-08df3e3a46bf"],
        "sender": "ceo@contoso.com",
        "source_ips": ["192.0.2.62", "2001:db8::1"],
        "path": "direct_send",
        "reasons": [
            Reason(
                signal_id="DSG-SELF-001",
                title="Sender and recipient are the same address",
                family="recipients",
                weight=20,
                evidence={"sender": "ceo@contoso.com", "recipient": "ceo@contoso.com"},
            )
        ],
        "first_seen": datetime(2026, 11, 9, 8, 20, 12, 585181, tzinfo=UTC),
        "last_seen": datetime(2026, 11, 9, 9, 0, tzinfo=UTC),
        "recipients": ["ceo@contoso.com", "cfo@contoso.com"],
        "subjects": list(HOSTILE_SUBJECTS),
        "message_count": 2,
    }
    base.update(changes)
    return Alert(**base)


def finding(**changes: Any) -> Finding:
    base: dict[str, Any] = {
        "check_id": "DS-ORG-001",
        "status": "FAIL",
        "severity": "high",
        "resource": "RejectDirectSend",
        "title": "Direct Send submissions are rejected",
        "evidence": {"RejectDirectSend": False, "note": FORMULA},
        "remediation": "Set-OrganizationConfig -RejectDirectSend $true\n# then watch NDRs",
        "frameworks": {"cis_m365": ["6.5.5"], "nist_csf_2.0": ["PR.PS-01"]},
        "status_extended": "RejectDirectSend is False",
    }
    base.update(changes)
    return Finding(**base)


# ------------------------------------------------------------------------------------ CSV

CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def read_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def test_planted_hyperlink_subject_is_inert_in_csv() -> None:
    rows = read_csv(csv_export.alerts_to_csv([alert(subjects=[FORMULA])]))
    assert rows[0]["subjects"] == "'" + FORMULA
    assert not rows[0]["subjects"].startswith("=")


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS)
def test_no_csv_cell_starts_like_a_formula(subject: str) -> None:
    text = csv_export.alerts_to_csv([alert(subjects=[subject], sender=subject, title=subject)])
    for row in read_csv(text):
        for column in ("subjects", "sender", "title"):
            cell = row[column]
            assert not cell.startswith(CSV_TRIGGERS), (column, cell)
            assert not cell.lstrip(" \n").startswith(CSV_TRIGGERS), (column, cell)
            assert "\x1b" not in cell


def test_csv_keeps_harmless_text_and_numbers() -> None:
    rows = read_csv(csv_export.alerts_to_csv([alert(subjects=["Quarterly report - draft"])]))
    assert rows[0]["subjects"] == "Quarterly report - draft"
    assert rows[0]["score"] == "72.5"  # written by us: stays a number
    assert rows[0]["recipients"] == "ceo@contoso.com\ncfo@contoso.com"
    assert rows[0]["first_seen"] == "2026-11-09T08:20:12.585181Z"


def test_csv_is_quoted_and_crlf() -> None:
    text = csv_export.alerts_to_csv([alert()])
    header = text[1:].split("\r\n", 1)[0]
    assert header == ",".join(f'"{c}"' for c in csv_export.ALERT_COLUMNS)


def test_findings_csv_neutralises_evidence_and_keeps_remediation() -> None:
    rows = read_csv(csv_export.findings_to_csv([finding(resource="=cmd|' /C calc'!A0")]))
    assert rows[0]["resource"].startswith("'=")
    assert rows[0]["remediation"].startswith("Set-OrganizationConfig")
    assert json.loads(rows[0]["evidence"])["note"] == FORMULA  # inside JSON, not at cell start
    assert rows[0]["finding_id"] == finding_uid(finding(resource="=cmd|' /C calc'!A0"))


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_neutralise_never_leaves_a_formula(text: str) -> None:
    cell = csv_export.neutralise(text)
    assert not cell.startswith(CSV_TRIGGERS)
    assert not cell.lstrip(" \n\u00a0\u3000").startswith(CSV_TRIGGERS) or cell.startswith("'")


# ------------------------------------------------------------------------------------ CEF


def split_header(line: str) -> tuple[list[str], str]:
    """A CEF line's 7 header fields (unescaped) and its extension, per the spec."""
    fields: list[str] = []
    buf, i = "", 0
    while len(fields) < 7:
        ch = line[i]
        if ch == "\\" and line[i + 1] in "\\|":
            buf += line[i + 1]
            i += 2
        elif ch == "|":
            fields.append(buf)
            buf = ""
            i += 1
        else:
            buf += ch
            i += 1
    return fields, line[i:]


def parse_extension(ext: str) -> dict[str, str]:
    """key=value pairs: a key starts where an unescaped ``=`` follows ``key`` after a space."""
    starts = [
        m for m in re.finditer(r"(?:^| )([A-Za-z0-9_]+)=", ext) if not _escaped_at(ext, m.end() - 1)
    ]
    out: dict[str, str] = {}
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(ext)
        raw = ext[m.end() : end]
        out[m.group(1)] = re.sub(r"\\(.)", lambda e: {"n": "\n", "r": "\r"}.get(e[1], e[1]), raw)
    return out


def _escaped_at(text: str, pos: int) -> bool:
    n = 0
    while pos - 1 - n >= 0 and text[pos - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def test_cef_header_and_extension_escaping() -> None:
    a = alert(title="Spoof | of a\\b = c\nnext", subjects=["x cs1=forged", "a|b", "c\\d"])
    line = cef.alert_line(a)
    assert "\n" not in line and "\r" not in line
    fields, ext = split_header(line)
    assert fields[:4] == ["CEF:0", "dsguard project", "dsguard", fields[3]]
    assert fields[4] == "alert:direct_send"
    assert fields[5] == "Spoof | of a\\b = c next"  # header: | and \ escaped, = literal
    assert fields[6] == "8"
    assert "\\=" not in line[: len(line) - len(ext)]  # = needs no escape in the header
    values = parse_extension(ext)
    assert values["cs1Label"] == "subject"
    assert values["cs1"] == "x cs1=forged\na|b\nc\\d"  # one field, not a forged cs1
    assert list(values).count("cs1") == 1
    assert values["src"] == "192.0.2.62"
    assert values["c6a2"] == "2001:db8::1"
    assert values["cnt"] == "2"


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS)
def test_cef_hostile_subjects_round_trip_as_one_field(subject: str) -> None:
    line = cef.alert_line(alert(subjects=[subject]))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    _, ext = split_header(line)
    values = parse_extension(ext)
    expected = subject.replace("\x1b", REPLACEMENT).replace("\t", " ")
    assert values["cs1"] == expected.replace("\r\n", "\n")


@given(st.text(max_size=80), st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_cef_any_text_stays_one_event(title: str, subject: str) -> None:
    line = cef.alert_line(alert(title=title, subjects=[subject]))
    assert "\n" not in line and "\r" not in line
    fields, ext = split_header(line)
    assert len(fields) == 7 and fields[6] == "8"
    values = parse_extension(ext)
    assert values["externalId"] == "DSA-000000000001"
    assert values["cs2"] == "direct_send"  # nothing the sender wrote displaced a field


def test_cef_findings_quiet_when_passed_and_truncated() -> None:
    passed = cef.finding_line(finding(status="PASS"), AT)
    failed = cef.finding_line(finding(status_extended="x" * 5000), AT)
    assert split_header(passed)[0][6] == "0"
    assert split_header(failed)[0][6] == "8"
    values = parse_extension(split_header(failed)[1])
    assert len(values["msg"]) == cef.LIMITS["msg"] and values["msg"].endswith("…")
    assert values["outcome"] == "FAIL"
    assert values["cs3"] == "Set-OrganizationConfig -RejectDirectSend $true\n# then watch NDRs"
    assert values["rt"] == str(int(AT.timestamp() * 1000))


# ----------------------------------------------------------------------------------- OCSF


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((OCSF_SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def as_json(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(dumps(event))


def assert_valid(v: jsonschema.protocols.Validator, event: dict[str, Any]) -> None:
    errors = sorted(v.iter_errors(as_json(event)), key=lambda e: e.json_path)
    assert not errors, [f"{e.json_path}: {e.message[:200]}" for e in errors[:5]]


HOSTILE_ALERTS = [
    alert(),
    alert(sender='"Payroll" <payroll@contoso.com>', recipients=["not an address", "a@b.co"]),
    alert(sender=None, source_ips=["999.1.1.1", " 10.0.0.1 ", "::ffff:192.0.2.1"]),
    alert(severity="informational", reasons=[], subjects=[], recipients=[], source_ips=[]),
    alert(path="partner_connector", sender="ANSI\x1b[31m@contoso.com"),
]


@pytest.mark.parametrize("a", HOSTILE_ALERTS)
def test_alerts_validate_as_ocsf_detection_findings(a: Alert) -> None:
    event = ocsf.detection_finding(a, AT)
    assert_valid(validator("detection_finding"), event)
    assert event["class_uid"] == 2004 and event["category_uid"] == 2
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    assert event["metadata"]["version"] == ocsf.OCSF_VERSION
    assert event["finding_info"]["uid"] == a.id


@pytest.mark.parametrize(
    "f",
    [
        finding(),
        finding(status="PASS", remediation="", evidence={}, frameworks={}),
        finding(status="MANUAL", resource=""),
        finding(status="ERROR", severity="critical"),
        finding(status="NOT_APPLICABLE", frameworks={"unknown_framework": ["X-1"]}),
    ],
)
def test_findings_validate_as_ocsf_compliance_findings(f: Finding) -> None:
    event = ocsf.compliance_finding(f, AT)
    assert_valid(validator("compliance_finding"), event)
    assert event["class_uid"] == 2003 and event["type_uid"] == 200301
    assert event["compliance"]["control"] == f.check_id
    assert event["time"] == int(AT.timestamp() * 1000)


def test_ocsf_maps_severity_status_and_requirements() -> None:
    a = ocsf.detection_finding(alert(severity="critical"), AT)
    assert (a["severity_id"], a["severity"]) == (5, "Critical")
    assert [o["type_id"] for o in a["observables"]] == [2, 2, 5]
    assert a["evidences"][0] == {"src_endpoint": {"ip": "192.0.2.62"}}
    f = ocsf.compliance_finding(finding(), AT)
    assert f["compliance"]["status_id"] == 3 and f["compliance"]["status"] == "Fail"
    assert any(
        r.startswith("CIS Microsoft 365 Foundations Benchmark 6.5.5")
        for r in f["compliance"]["requirements"]
    )
    assert f["remediation"]["desc"].startswith("Set-OrganizationConfig")


def test_ocsf_typed_fields_take_only_valid_values() -> None:
    event = ocsf.detection_finding(HOSTILE_ALERTS[1], AT)
    email = next(e["email"] for e in event["evidences"] if "email" in e)
    assert "from" not in email and email["to"] == ["a@b.co"]
    assert event["unmapped"]["dsguard"]["sender"] == '"Payroll" <payroll@contoso.com>'
    event = ocsf.detection_finding(HOSTILE_ALERTS[2], AT)
    assert [e["src_endpoint"]["ip"] for e in event["evidences"] if "src_endpoint" in e] == [
        "10.0.0.1",
        "::ffff:c000:201",
    ]


def test_schema_validation_is_real() -> None:
    """The vendored schema rejects what OCSF rejects, so a green test means something."""
    v = validator("detection_finding")
    good = as_json(ocsf.detection_finding(alert(), AT))
    for broken in (
        {**good, "made_up_field": 1},
        {**good, "severity_id": 7},
        {k: val for k, val in good.items() if k != "finding_info"},
        {**good, "time": "yesterday"},
        {**good, "evidences": [{"email": {"from": "not an address"}}]},
    ):
        assert list(v.iter_errors(broken)), broken.keys()


def test_vendored_schemas_match_ocsf_json_schema() -> None:
    """The fixtures are what ocsf-json-schema generates from the official 1.5.0 export."""
    lib = pytest.importorskip("ocsf_json_schema")
    generator = lib.OcsfJsonSchemaEmbedded(lib.get_ocsf_schema(version=ocsf.OCSF_VERSION))
    for name in ("detection_finding", "compliance_finding"):
        vendored = json.loads((OCSF_SCHEMAS / f"{name}.schema.json").read_text())
        assert generator.get_class_schema(name, profiles=[]) == vendored


# ------------------------------------------------------------------------------- Sentinel

_TYPES = {
    "string": (str, type(None)),
    "int": (int,),
    "long": (int,),
    "real": (float, int),
    "boolean": (bool,),
    "dynamic": (list, dict, str, int, float, bool, type(None)),
}


def check_record(record: dict[str, Any], stream: str) -> None:
    declared = {n: t for n, t, _ in sentinel.STREAMS[stream]}
    assert list(record) == list(declared)
    for name, value in record.items():
        kind = declared[name]
        if kind == "datetime":
            assert datetime.fromisoformat(value).tzinfo is not None, name
        else:
            assert isinstance(value, _TYPES[kind]), (name, kind, value)


def test_sentinel_records_match_their_stream_declarations() -> None:
    for a in HOSTILE_ALERTS:
        check_record(as_json(sentinel.alert_record(a, AT)), sentinel.ALERTS_STREAM)
    for f in (finding(), finding(status="PASS", evidence={}, frameworks={})):
        check_record(as_json(sentinel.finding_record(f, AT)), sentinel.FINDINGS_STREAM)
    record = sentinel.alert_record(alert(), AT)
    assert record["Subjects"] == HOSTILE_SUBJECTS  # verbatim: JSON quoting makes it inert
    assert record["TimeGenerated"] == "2026-11-30T12:00:00Z"


def test_sentinel_dcr_declares_streams_tables_and_flows() -> None:
    doc = json.loads(dumps(sentinel.dcr_document()))
    dcr = doc["dataCollectionRule"]
    assert dcr["kind"] == "Direct"
    streams = dcr["properties"]["streamDeclarations"]
    assert set(streams) == set(sentinel.STREAMS) and all(s.startswith("Custom-") for s in streams)
    for stream, decl in streams.items():
        names = [c["name"] for c in decl["columns"]]
        assert names[0] == "TimeGenerated"
        for c in decl["columns"]:
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,44}", c["name"])
            assert c["name"] not in {"Type", "TenantId", "Title", "id", "_ResourceId"}
            assert c["type"] in {"string", "int", "long", "real", "boolean", "datetime", "dynamic"}
        table = sentinel.TABLES[stream]
        assert table.endswith("_CL")
        assert [c["name"] for c in doc["tables"][table]["properties"]["schema"]["columns"]] == names
    flows = {f["streams"][0]: f for f in dcr["properties"]["dataFlows"]}
    assert {s: f["outputStream"] for s, f in flows.items()} == {
        s: f"Custom-{t}" for s, t in sentinel.TABLES.items()
    }
    dest = dcr["properties"]["destinations"]["logAnalytics"][0]["name"]
    assert all(f["destinations"] == [dest] for f in flows.values())


# ------------------------------------------------------------------------------- pipeline


def test_write_exports_writes_every_file_even_when_empty(tmp_path: Path) -> None:
    files = write_exports(tmp_path, [], [], AT)
    assert sorted(files) == sorted(
        f"exports/{n}"
        for n in (
            "alerts.ocsf.json",
            "findings.ocsf.json",
            "alerts.cef",
            "findings.cef",
            "alerts.csv",
            "findings.csv",
            "sentinel_alerts.json",
            "sentinel_findings.json",
            "sentinel_dcr.json",
        )
    )
    assert json.loads((tmp_path / "alerts.ocsf.json").read_text()) == []
    assert (tmp_path / "alerts.cef").read_text() == ""
    assert read_csv((tmp_path / "alerts.csv").read_text(encoding="utf-8")) == []


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dsguard.pipeline import analyze
    from dsguard.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("exports")
    generate(root / "bundle", SynthConfig(users=30, days=14, seed=7))
    return analyze(root / "bundle", root / "out")


def test_pipeline_exports_are_registered_valid_and_inert(analysed: Any) -> None:
    ctx = analysed
    names = [k for k in ctx.outputs if k.startswith("exports/")]
    assert len(names) == 9 and all(ctx.outputs[k].is_file() for k in names)
    assert ctx.outputs["exports/alerts.csv"] == ctx.out / "exports" / "alerts.csv"

    # Done criterion: the planted =HYPERLINK subject is inert in the CSV.
    rows = read_csv(ctx.outputs["exports/alerts.csv"].read_text(encoding="utf-8"))
    planted = [r for r in rows if "HYPERLINK" in r["subjects"]]
    assert planted, "the synthetic tenant plants a =HYPERLINK subject"
    for row in rows:
        for value in row.values():
            assert not value.startswith(CSV_TRIGGERS), value
            assert "\x1b" not in value

    # Done criterion: OCSF output validates against the schema.
    det, com = validator("detection_finding"), validator("compliance_finding")
    alerts = json.loads(ctx.outputs["exports/alerts.ocsf.json"].read_text(encoding="utf-8"))
    findings = json.loads(ctx.outputs["exports/findings.ocsf.json"].read_text(encoding="utf-8"))
    assert len(alerts) == len(ctx.alerts) and len(findings) == len(ctx.findings)
    for event in alerts:
        assert_valid(det, event)
    for event in findings:
        assert_valid(com, event)

    lines = ctx.outputs["exports/alerts.cef"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(ctx.alerts)
    assert all(len(split_header(line)[0]) == 7 and "\x1b" not in line for line in lines)
    for record in json.loads(ctx.outputs["exports/sentinel_alerts.json"].read_text()):
        check_record(record, sentinel.ALERTS_STREAM)
    for record in json.loads(ctx.outputs["exports/sentinel_findings.json"].read_text()):
        check_record(record, sentinel.FINDINGS_STREAM)
