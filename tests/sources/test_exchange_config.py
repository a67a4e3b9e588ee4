"""Exchange Online / Graph configuration snapshots and the PowerShell JSON quirks."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dsguard.evidence.model import FileReport
from dsguard.evidence.store import EvidenceStore
from dsguard.sources.exchange_config import (
    ExchangeConfigReader,
    decode_text,
    normalise_powershell,
    parse_powershell_json,
    split_objects,
    truncated_properties,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "exchange"


def _place(bundle: Path, fixture: str, target: str | None = None) -> Path:
    dst = bundle / (target or f"exchange/{fixture}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIX / fixture, dst)
    return dst


def _write(bundle: Path, target: str, data: bytes | str) -> Path:
    dst = bundle / target
    dst.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    dst.write_bytes(data)
    return dst


def _ingest(store: EvidenceStore, bundle: Path, *paths: Path) -> list[FileReport]:
    summary = store.ingest([(ExchangeConfigReader(), p) for p in paths], root=bundle)
    for f in summary.files:
        assert f.read == f.loaded + f.duplicates + f.rejected, f
    return summary.files


def _objects(store: EvidenceStore, kind: str) -> list[dict[str, Any]]:
    cur = store.con.execute(
        "SELECT * FROM config_objects WHERE kind = ? ORDER BY ordinal", [kind]
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["data"], row["raw"] = json.loads(row["data"]), json.loads(row["raw"])
    return rows


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return tmp_path / "bundle"


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "e.duckdb")


# ---------------------------------------------------------------------------- real shapes
def test_organization_config_utf16_single_object(store: EvidenceStore, bundle: Path) -> None:
    """Windows PowerShell ``Out-File``: UTF-16 LE with a BOM, CRLF, one object (no list)."""
    assert (FIX / "organization_config.json").read_bytes()[:2] == b"\xff\xfe"
    [rep] = _ingest(store, bundle, _place(bundle, "organization_config.json"))
    assert (rep.read, rep.loaded, rep.rejected, rep.error, rep.warnings) == (1, 1, 0, None, [])
    [org] = _objects(store, "organization_config")
    assert org["name"] == "contoso.onmicrosoft.com"
    assert org["source_file"] == "exchange/organization_config.json"
    assert org["data"]["RejectDirectSend"] is False
    assert org["data"]["EwsEnabled"] is None  # null ("never set") stays null
    assert org["data"]["WhenChanged"] == "2026-03-03T01:15:12Z"
    assert org["raw"]["WhenChanged"] == "/Date(1772500512000)/"


def test_inbound_connectors(store: EvidenceStore, bundle: Path) -> None:
    [rep] = _ingest(store, bundle, _place(bundle, "inbound_connectors.json"))
    assert (rep.read, rep.loaded, rep.rejected, rep.warnings) == (3, 3, 0, [])
    mimecast, hybrid, payroll = _objects(store, "inbound_connectors")
    assert [c["ordinal"] for c in (mimecast, hybrid, payroll)] == [0, 1, 2]
    assert mimecast["name"] == "Inbound from Mimecast"
    assert mimecast["data"]["SenderDomains"] == ["*"]
    assert mimecast["raw"]["SenderDomains"] == ["smtp:*;1"]
    assert mimecast["data"]["SenderIPAddresses"] == ["205.139.110.0/24", "216.205.24.0/24"]
    assert mimecast["data"]["RestrictDomainsToIPAddresses"] is True
    assert mimecast["data"]["TlsSenderCertificateName"] is None
    assert hybrid["data"]["ConnectorType"] == "OnPremises"
    assert hybrid["data"]["TlsSenderCertificateName"] == "*.contoso.com"
    assert hybrid["data"]["SenderIPAddresses"] == []  # [] stays [], distinct from null
    # "/Date(ms+0100)/": the number is UTC already, the offset is only where it was written
    assert hybrid["data"]["WhenChanged"] == "2026-01-01T10:00:00Z"
    assert hybrid["data"]["WhenChanged"] == hybrid["data"]["WhenChangedUTC"]
    assert payroll["data"]["SenderDomains"] == ["contoso.com", "payroll-partner.example"]
    assert payroll["data"]["RestrictDomainsToIPAddresses"] is False


def test_single_transport_rule_is_one_object(store: EvidenceStore, bundle: Path) -> None:
    [rep] = _ingest(store, bundle, _place(bundle, "transport_rules.json"))
    assert (rep.read, rep.loaded, rep.warnings) == (1, 1, [])
    [rule] = _objects(store, "transport_rules")
    data = rule["data"]
    assert rule["name"] == "Internal mail bypasses spam filtering"
    assert (data["SetSCL"], data["SenderDomainIs"], data["State"]) == (-1, ["contoso.com"],
                                                                       "Enabled")
    assert data["WhenChanged"] == "2019-07-08T10:00:00Z"
    # EXO's REST cmdlets give Conditions as type names at any depth: not a cut-off
    assert data["Conditions"] == [
        "Microsoft.Exchange.MessagingPolicies.Rules.Tasks.SenderDomainIsPredicate"
    ]


def test_adminapi_pages_back_to_back(store: EvidenceStore, bundle: Path) -> None:
    [rep] = _ingest(store, bundle, _place(bundle, "accepted_domains.json"))
    assert (rep.read, rep.loaded, rep.rejected) == (4, 4, 0)
    domains = _objects(store, "accepted_domains")
    assert [d["name"] for d in domains] == [
        "contoso.com", "contoso.onmicrosoft.com", "contoso.mail.onmicrosoft.com",
        "fabrikam-relay.com",
    ]
    assert all("@odata.context" not in d["data"] for d in domains)
    assert domains[3]["data"]["DomainType"] == "InternalRelay"
    assert domains[0]["data"]["WhenChanged"] == "2026-01-14T07:12:03Z"  # +01:00 → UTC
    assert domains[0]["data"]["WhenChangedUTC"] == "2026-01-14T07:12:03Z"


def test_graph_service_principals_keep_nested_assignments(
    store: EvidenceStore, bundle: Path
) -> None:
    path = _place(bundle, "graph/service_principals.json", "graph/service_principals.json")
    [rep] = _ingest(store, bundle, path)
    assert (rep.read, rep.loaded) == (3, 3)
    crm, graph, ews = _objects(store, "service_principals")
    assert crm["source_file"] == "graph/service_principals.json"
    assert crm["name"] == "Contoso CRM notifications"
    [grant] = crm["data"]["appRoleAssignments"]
    assert grant["appRoleId"] == "b633e1c5-b582-4048-a93e-9f11b44c7e96"  # Mail.Send
    assert grant["createdDateTime"] == "2025-11-03T10:14:52.3361042Z"  # Z strings untouched
    assert graph["data"]["appRoleAssignments"] == []
    assert ews["data"]["appRoleAssignments"][0]["appRoleId"] == (
        "dc890d15-9560-4a4c-9b7f-a736ec74ec40")


def test_truncation_strings_are_kept_and_warned(store: EvidenceStore, bundle: Path) -> None:
    [rep] = _ingest(store, bundle, _place(bundle, "transport_rules_shallow.json"))
    assert (rep.read, rep.loaded, rep.error) == (2, 2, None)
    joined = "\n".join(rep.warnings)
    assert len(rep.warnings) == 3
    assert "property 'SenderDomainIs' of 'Internal mail bypasses spam filtering'" in joined
    assert "property 'HeaderContainsWords' of 'Phish simulation skip'" in joined
    assert "property 'ExtendedProperties.Tags'" in joined and "-Depth" in joined
    first = _objects(store, "transport_rules_shallow")[0]
    assert first["data"]["SenderDomainIs"].startswith("Microsoft.Exchange.Data.MultiValued")


# ---------------------------------------------------------------------------- zero objects
@pytest.mark.parametrize(
    "content",
    [b"", b"\r\n", b"null", b"[]", b"\xff\xfe", b'{"@odata.context":"x","value":[]}',
     "null\r\n".encode("utf-16")],
    ids=["empty", "blank", "null", "empty-list", "utf16-bom-only", "empty-page", "utf16-null"],
)
def test_collected_but_none(store: EvidenceStore, bundle: Path, content: bytes) -> None:
    """All of these are "collected, none": the file is recorded with 0 rows and no error."""
    path = _write(bundle, "exchange/hosted_connection_filter_policy.json", content)
    [rep] = _ingest(store, bundle, path)
    assert (rep.read, rep.loaded, rep.error) == (0, 0, None)
    history = {h["file"]: h for h in store.ingest_history()}
    assert history["exchange/hosted_connection_filter_policy.json"]["error"] is None
    assert "exchange/arc_config.json" not in history  # not collected at all: no record


def test_new_file_replaces_only_its_kind(store: EvidenceStore, bundle: Path) -> None:
    _ingest(store, bundle, _place(bundle, "inbound_connectors.json"),
            _place(bundle, "transport_rules.json"))
    assert len(_objects(store, "inbound_connectors")) == 3
    one = json.loads((FIX / "inbound_connectors.json").read_text())[2]
    [rep] = _ingest(store, bundle, _write(bundle, "exchange/inbound_connectors.json",
                                          json.dumps(one)))
    assert (rep.read, rep.loaded) == (1, 1)
    assert [c["name"] for c in _objects(store, "inbound_connectors")] == ["Payroll partner"]
    assert len(_objects(store, "transport_rules")) == 1
    [rep] = _ingest(store, bundle, _write(bundle, "exchange/inbound_connectors.json", "[]"))
    assert _objects(store, "inbound_connectors") == []
    assert len(_objects(store, "transport_rules")) == 1


# ---------------------------------------------------------------------------- damage
def test_truncated_file_loads_nothing(store: EvidenceStore, bundle: Path) -> None:
    _ingest(store, bundle, _place(bundle, "inbound_connectors.json"))
    text = (FIX / "inbound_connectors.json").read_text()
    cut = _write(bundle, "exchange/inbound_connectors.json", text[: len(text) // 2])
    [rep] = _ingest(store, bundle, cut)
    # one document (the array) that never ends: one rejected row, and the stale snapshot
    # of the kind is gone rather than silently kept
    assert (rep.read, rep.loaded, rep.rejected) == (1, 0, 1)
    assert rep.error is not None
    assert rep.error.startswith("exchange/inbound_connectors.json: truncated JSON at line")
    assert "\n" not in rep.error
    assert _objects(store, "inbound_connectors") == []
    [q] = list(store.quarantine_rows())
    assert q["raw"].startswith("[") and "Inbound from Mimecast" in q["raw"]


def test_truncated_second_page_rejects_the_whole_snapshot(
    store: EvidenceStore, bundle: Path
) -> None:
    text = (FIX / "accepted_domains.json").read_text()
    cut = _write(bundle, "exchange/accepted_domains.json", text[: len(text) - 200])
    [rep] = _ingest(store, bundle, cut)
    # page 1's two domains parsed, the cut page is one more row: all three are rejected,
    # because half a domain list would make "our" domains look like someone else's
    assert (rep.read, rep.loaded, rep.rejected) == (3, 0, 3)
    assert rep.error is not None and "nothing from this file was loaded" in rep.error
    reasons = [q["reason"] for q in store.quarantine_rows()]
    assert reasons[0] == rep.error and reasons[2].startswith("truncated JSON")


def test_not_json_at_all(store: EvidenceStore, bundle: Path) -> None:
    msg = "Get-InboundConnector : The term 'Get-InboundConnector' is not recognized\r\n"
    [rep] = _ingest(store, bundle, _write(bundle, "exchange/inbound_connectors.json", msg))
    assert (rep.read, rep.rejected) == (1, 1)
    assert rep.error is not None and "not valid JSON" in rep.error


def test_non_object_items_are_rejected(store: EvidenceStore, bundle: Path) -> None:
    one = json.loads((FIX / "inbound_connectors.json").read_text())[0]
    path = _write(bundle, "exchange/inbound_connectors.json", json.dumps([one, 42, None]))
    [rep] = _ingest(store, bundle, path)
    assert (rep.read, rep.loaded, rep.rejected) == (3, 1, 2)
    assert [q["reason"] for q in store.quarantine_rows()] == [
        "object 1 is a JSON number, not an object", "object 2 is a JSON null, not an object"]


def test_ansi_file_is_read_with_a_warning(store: EvidenceStore, bundle: Path) -> None:
    text = '{"Name": "Règle éditée", "State": "Enabled"}'
    path = _write(bundle, "exchange/transport_rules.json", text.encode("cp1252"))
    [rep] = _ingest(store, bundle, path)
    assert rep.loaded == 1 and "Windows-1252" in rep.warnings[0]
    assert _objects(store, "transport_rules")[0]["name"] == "Règle éditée"


def test_utf8_bom(store: EvidenceStore, bundle: Path) -> None:
    text = (FIX / "inbound_connectors.json").read_text()
    path = _write(bundle, "exchange/inbound_connectors.json", b"\xef\xbb\xbf" + text.encode())
    [rep] = _ingest(store, bundle, path)
    assert (rep.loaded, rep.warnings) == (3, [])


# ---------------------------------------------------------------------------- the normaliser
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Date(1772500512000)/", "2026-03-03T01:15:12Z"),
        ("/Date(1772500512000+0100)/", "2026-03-03T01:15:12Z"),
        ("/Date(1772500512345-0500)/", "2026-03-03T01:15:12.345Z"),
        ("/Date(-62135596800000)/", "0001-01-01T00:00:00Z"),  # DateTime.MinValue
        ("2026-03-03T02:15:12.1234567+01:00", "2026-03-03T01:15:12.123456Z"),
        ("2026-03-03T01:15:12Z", "2026-03-03T01:15:12Z"),
        ("2026-03-03T01:15:12", "2026-03-03T01:15:12"),  # no zone: left as written
        ("smtp:contoso.com;1", "contoso.com"),
        ("SMTP:Sub.Contoso.com;10", "sub.contoso.com"),
        ("smtp:*;1", "*"),
        ("smtp:adele@contoso.com", "smtp:adele@contoso.com"),  # a proxy address, not a domain
        ("Date(1)", "Date(1)"),
        (None, None),
        ([], []),
        ({"value": "/Date(0)/", "DisplayHint": 2, "DateTime": "Thursday, 1 January 1970"},
         "1970-01-01T00:00:00Z"),
    ],
)
def test_normalise_powershell(value: Any, expected: Any) -> None:
    assert normalise_powershell(value) == expected


def test_normalise_powershell_is_pure() -> None:
    obj = {"SenderDomains": ["smtp:contoso.com;1"], "WhenChanged": "/Date(0)/",
           "Nested": {"List": [{"When": "/Date(0)/"}]}}
    before = copy.deepcopy(obj)
    out = normalise_powershell(obj)
    assert obj == before
    assert out["Nested"]["List"][0]["When"] == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("doc", "count"),
    [(None, 0), ([], 0), ({}, 1), ({"Name": "x"}, 1), ([{"Name": "x"}, {"Name": "y"}], 2),
     ({"@odata.context": "c", "value": [{"a": 1}]}, 1), ({"value": None, "@odata.x": 1}, 0),
     ([{"value": [{"a": 1}], "@odata.nextLink": "n"}, {"value": [{"b": 1}]}], 2),
     ({"value": [1], "Name": "not a page"}, 1)],
)
def test_split_objects(doc: Any, count: int) -> None:
    assert len(split_objects(doc)) == count


def test_parse_powershell_json_concatenated_and_empty() -> None:
    assert parse_powershell_json("") == []
    assert parse_powershell_json(" \r\n") == []
    assert parse_powershell_json('{"value":[{"a":1}]}\n{"value":[{"a":2}]}') == [{"a": 1},
                                                                                 {"a": 2}]


@pytest.mark.parametrize(
    ("data", "text"),
    [(b'{"a":1}', '{"a":1}'), (b'\xef\xbb\xbf{"a":1}', '{"a":1}'),
     ('{"a":1}'.encode("utf-16"), '{"a":1}'), ('{"a":1}'.encode("utf-16-le"), '{"a":1}'),
     ('{"a":1}'.encode("utf-16-be"), '{"a":1}')],
)
def test_decode_text(data: bytes, text: str) -> None:
    assert decode_text(data) == (text, None)


def test_truncated_properties_paths() -> None:
    obj = {"A": "System.Collections.Hashtable", "B": [{"C": "System.Object[]"}],
           "D": "@{Name=x; Value=1}", "E": "Microsoft.com", "F": "plain"}
    assert truncated_properties(obj) == [
        ("A", "System.Collections.Hashtable"), ("B[0].C", "System.Object[]"),
        ("D", "@{Name=x; Value=1}")]


def test_replace_scope_is_the_kind() -> None:
    assert ExchangeConfigReader().replace_scope(Path("exchange/transport_rules.json")) == (
        '"kind" = ?', ["transport_rules"])
