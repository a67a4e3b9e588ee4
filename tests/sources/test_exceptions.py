"""The exception registry: its published JSON Schema, good entries, and bad ones."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from dsguard.evidence.model import FileReport
from dsguard.evidence.store import EvidenceStore
from dsguard.sources.exceptions import ExceptionsReader, exceptions_schema

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "exceptions"
DOCS = Path(__file__).resolve().parents[2].parent / "shared" / "docs" / "bundle.md"
SCHEMA_FILE = (
    Path(__file__).resolve().parents[2] / "src" / "dsguard" / "schemas" / "exceptions.schema.json"
)


def _place(tmp_path: Path, fixture: str | None = None, text: str | bytes | None = None) -> Path:
    dst = tmp_path / "bundle" / "exceptions.yaml"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if fixture:
        shutil.copy(FIX / fixture, dst)
    elif isinstance(text, bytes):
        dst.write_bytes(text)
    else:
        dst.write_text(text or "")
    return dst


def _ingest(tmp_path: Path, path: Path) -> tuple[EvidenceStore, FileReport]:
    store = EvidenceStore(tmp_path / "e.duckdb")
    [rep] = store.ingest([(ExceptionsReader(), path)], root=tmp_path / "bundle").files
    assert rep.read == rep.loaded + rep.duplicates + rep.rejected, rep
    return store, rep


def _entries(store: EvidenceStore) -> dict[str, dict[str, Any]]:
    cur = store.con.execute("SELECT * FROM exceptions")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


# ---------------------------------------------------------------------------- the schema
def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = exceptions_schema()  # read through importlib.resources, as installed
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("exceptions.schema.json")
    assert schema == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_schema_documents_every_field() -> None:
    entry = exceptions_schema()["$defs"]["exception"]
    assert entry["required"] == ["id"]
    for name, prop in entry["properties"].items():
        assert prop.get("title") and prop.get("description"), name
    for name in ("owner", "expires"):
        assert "required by policy" in entry["properties"][name]["title"].lower()
    # the model's fields and the schema's agree
    from dsguard.evidence.model import ExceptionEntry

    model = set(ExceptionEntry.model_fields) - {"source_file", "source_row"}
    assert set(entry["properties"]) == model


def test_documented_example_validates() -> None:
    if not DOCS.is_file():
        pytest.skip("shared docs not available")
    block = re.search(r"## exceptions\.yaml\n```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    doc = yaml.safe_load(block.group(1))
    doc["exceptions"] = [
        {k: v.isoformat() if isinstance(v, date) else v for k, v in e.items()}
        for e in doc["exceptions"]
    ]
    assert list(Draft202012Validator(exceptions_schema()).iter_errors(doc)) == []


def test_schema_requires_a_source_or_a_sender() -> None:
    validator = Draft202012Validator(exceptions_schema())
    assert not validator.is_valid({"exceptions": [{"id": "EX-1"}]})
    assert not validator.is_valid({"exceptions": [{"id": "EX-1", "sources": []}]})
    assert validator.is_valid({"exceptions": [{"id": "EX-1", "senders": ["a@b.com"]}]})
    assert validator.is_valid({"exceptions": [{"id": "EX-1", "sources": "192.0.2.1"}]})
    assert validator.is_valid({"exceptions": None})


# ---------------------------------------------------------------------------- good entries
def test_registry_loads(tmp_path: Path) -> None:
    store, rep = _ingest(tmp_path, _place(tmp_path, "exceptions.yaml"))
    assert (rep.read, rep.loaded, rep.rejected, rep.error) == (4, 4, 0, None)
    entries = _entries(store)
    ex1 = entries["EX-001"]
    assert ex1 | {"justification": None} == {
        "id": "EX-001", "name": "Office multifunction printers",
        "owner": "facilities@contoso.com", "justification": None,
        "sources": ["203.0.113.10/32"], "senders": ["scan@contoso.com"],
        "recipients": ["internal"], "expires": date(2027, 3, 31),
        "review_by": date(2026, 12, 31), "ticket": "CHG-1234",
        "source_file": "exceptions.yaml", "source_row": 1,
    }
    ex2 = entries["EX-002"]
    assert ex2["sources"] == ["198.51.100.0/28", "2001:db8:10::/48"]
    assert ex2["senders"] == ["*@notify.contoso.com", "alerts@contoso.com"]
    assert ex2["recipients"] == ["any"]
    assert ex2["expires"] == date(2026, 12, 31)  # quoted: a string, still a date
    assert ex2["ticket"] == "5521"
    ex3 = entries["EX-003"]
    assert ex3["sources"] == ["192.0.2.16/28"]
    assert ex3["owner"] is None and ex3["senders"] == []
    assert ex3["recipients"] == ["oncall@contoso.com", "facilities@contoso.com"]
    ex4 = entries["EX-004"]
    assert ex4["sources"] == ["203.0.113.45/32"]  # a single string, a single IP
    assert ex4["expires"] is None
    assert rep.warnings == [
        "exceptions.yaml: entry 3 (EX-003): field 'sources[0]': '192.0.2.17/28' has host bits "
        "set; read as 192.0.2.16/28",
        "exceptions.yaml: entry 3 (EX-003): no 'owner' (required by policy; reported as a "
        "governance finding)",
        "exceptions.yaml: entry 4 (EX-004): unknown field 'notes' ignored",
        "exceptions.yaml: entry 4 (EX-004): no 'expires' (required by policy; an exception "
        "without an end is a governance finding)",
    ]


def test_a_new_registry_replaces_the_old(tmp_path: Path) -> None:
    store, _ = _ingest(tmp_path, _place(tmp_path, "exceptions.yaml"))
    store.close()
    text = "exceptions:\n  - id: EX-100\n    senders: [a@contoso.com]\n    expires: 2027-01-01\n"
    store, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    assert rep.loaded == 1
    assert list(_entries(store)) == ["EX-100"]


@pytest.mark.parametrize("text", ["exceptions: []\n", "exceptions:\n", "# none\nexceptions: []"])
def test_empty_registry(tmp_path: Path, text: str) -> None:
    store, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    assert (rep.read, rep.error) == (0, None)
    assert _entries(store) == {}


def test_utf16_registry(tmp_path: Path) -> None:
    text = (FIX / "exceptions.yaml").read_text(encoding="utf-8")
    _, rep = _ingest(tmp_path, _place(tmp_path, text=text.encode("utf-16")))
    assert (rep.read, rep.loaded) == (4, 4)


def test_datetime_expiry_is_read_as_its_date(tmp_path: Path) -> None:
    text = "exceptions:\n  - id: EX-1\n    owner: a@contoso.com\n    sources: [192.0.2.1]\n" \
           "    expires: 2027-03-31 18:00:00\n"
    store, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    assert rep.loaded == 1
    assert _entries(store)["EX-1"]["expires"] == date(2027, 3, 31)


# ---------------------------------------------------------------------------- bad entries
def test_bad_entries_are_rejected_one_by_one(tmp_path: Path) -> None:
    store, rep = _ingest(tmp_path, _place(tmp_path, "exceptions_damaged.yaml"))
    assert (rep.read, rep.loaded, rep.duplicates, rep.rejected) == (10, 2, 0, 8)
    assert rep.error is None
    assert set(_entries(store)) == {"EX-001", "EX-010"}
    reasons = {q["row"]: q["reason"] for q in store.quarantine_rows()}
    assert reasons == {
        2: "exceptions.yaml: entry 2 (EX-002): field 'senders[0]': 'scanner' is not an address "
           "or a *@domain wildcard",
        3: "exceptions.yaml: entry 3 (EX-003): field 'sources[1]': '10.0.0.300/32' is not an "
           "IP address or CIDR",
        4: "exceptions.yaml: entry 4 (EX-004): field 'expires': '31/03/2027' is not a date "
           "(YYYY-MM-DD)",
        5: "exceptions.yaml: entry 5 (no id): field 'id': required",
        6: "exceptions.yaml: entry 6 (EX-006): needs at least one of 'sources' or 'senders' "
           "(non-empty)",
        7: "exceptions.yaml: entry 7 (EX-001): duplicate id 'EX-001' (first used by entry 1)",
        8: "exceptions.yaml: entry 8 (EX-008): field 'recipients': must be 'internal', 'any' or "
           "a list of addresses",
        9: "exceptions.yaml: entry 9 (no id): not a mapping but a string",
    }
    raw = {q["row"]: json.loads(q["raw"]) for q in store.quarantine_rows()}
    assert raw[3]["sources"] == ["10.0.0.10/32", "10.0.0.300/32"]  # kept as written


def test_several_problems_in_one_entry_are_one_line(tmp_path: Path) -> None:
    text = ("exceptions:\n  - id: EX-1\n    sources: [nope, 192.0.2.1]\n    senders: [x@]\n"
            "    recipients: [bob]\n    expires: '2027-02-30'\n    ticket: [1, 2]\n")
    store, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    [q] = list(store.quarantine_rows())
    assert (rep.read, rep.rejected) == (1, 1)
    assert "\n" not in q["reason"]
    for part in ("field 'sources[0]': 'nope' is not an IP address or CIDR",
                 "field 'senders[0]': 'x@' is not an address",
                 "field 'recipients[0]': 'bob' is not an address",
                 "field 'expires': '2027-02-30' is not a date",
                 "field 'ticket': [1, 2] is not of type"):
        assert part in q["reason"]


# ---------------------------------------------------------------------------- bad files
def test_not_yaml_is_a_one_line_file_error(tmp_path: Path) -> None:
    store, rep = _ingest(tmp_path, _place(tmp_path, "not_yaml.yaml"))
    assert (rep.read, rep.loaded) == (0, 0)
    assert rep.error is not None
    assert rep.error.startswith("exceptions.yaml: not valid YAML: ")
    assert "(line 5, column 12; while parsing a flow sequence from line 4)" in rep.error
    assert "\n" not in rep.error
    assert _entries(store) == {}


@pytest.mark.parametrize(
    ("fixture", "text", "found"),
    [("wrong_top.yaml", None, "found a list"),
     (None, "", "found an empty file"),
     (None, "registry:\n  - id: EX-1\n", "found a mapping without an 'exceptions' key"),
     (None, "just some words", "found a string")],
)
def test_wrong_top_level_is_a_file_error(
    tmp_path: Path, fixture: str | None, text: str | None, found: str
) -> None:
    _, rep = _ingest(tmp_path, _place(tmp_path, fixture, text))
    assert rep.read == 0
    assert rep.error is not None and "\n" not in rep.error
    assert rep.error.startswith("exceptions.yaml: expected a mapping with an 'exceptions' list")
    assert found in rep.error


def test_exceptions_not_a_list(tmp_path: Path) -> None:
    _, rep = _ingest(tmp_path, _place(tmp_path, text="exceptions:\n  id: EX-1\n"))
    assert rep.error == "exceptions.yaml: 'exceptions' must be a list of entries, not a mapping"


def test_impossible_date_is_a_file_error_with_its_line(tmp_path: Path) -> None:
    text = "exceptions:\n  - id: EX-1\n    sources: [192.0.2.1]\n    expires: 2027-02-30\n"
    _, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    assert rep.error == (
        "exceptions.yaml: not valid YAML: '2027-02-30' is not a real date (line 4, column 14)")


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    text = "exceptions: !!python/object/apply:os.system ['echo pwned']\n"
    _, rep = _ingest(tmp_path, _place(tmp_path, text=text))
    assert rep.error is not None and rep.error.startswith("exceptions.yaml: not valid YAML")
