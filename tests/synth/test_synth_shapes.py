"""Each ``--shape`` writes its format, and the alternative tenant is really different."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from dsguard.synth import SynthSummary
from dsguard.synth.model import EE_COLUMNS

Bundles = dict[str, tuple[Path, SynthSummary]]


def test_sentinel_daily_files(bundles: Bundles) -> None:
    path, summary = bundles["sentinel"]
    files = sorted(path.glob("email_events_*.csv"))
    assert len(files) == 7
    assert files[0].name == "email_events_2026-11-01.csv"
    total = 0
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        total += len(rows)
        assert rows
        assert "TimeGenerated" in rows[0] and "Timestamp" not in rows[0]
        day = f.stem.rsplit("_", 1)[1]
        assert all(r["TimeGenerated"].startswith(day) for r in rows)
        assert {r["Type"] for r in rows} == {"EmailEvents"}
    assert total == summary.email_events_rows


def test_sentinel_tenant_is_different(bundles: Bundles) -> None:
    a = json.loads((bundles["default"][0] / "truth.json").read_text())
    b = json.loads((bundles["sentinel"][0] / "truth.json").read_text())
    assert a["tenant"]["primary_domain"] != b["tenant"]["primary_domain"]
    assert a["tenant"]["hybrid"] and not b["tenant"]["hybrid"]
    assert "onprem_hybrid" not in {f["id"] for f in b["flows"]}
    share = {t["tenant"]["name"]: {c["kind"]: c["messages"] for c in t["campaigns"]}
             for t in (a, b)}
    sa, sb = share.values()
    assert sb["self_send_lure"] > sa["self_send_lure"]
    org = json.loads((bundles["sentinel"][0] / "exchange/organization_config.json").read_text())
    assert org["RejectDirectSend"] is None
    rules = json.loads((bundles["sentinel"][0] / "exchange/transport_rules.json").read_text())
    assert isinstance(rules, dict)  # one rule: ConvertTo-Json prints a bare object
    dkim = json.loads((bundles["sentinel"][0] / "exchange/dkim_signing_config.json").read_text())
    assert isinstance(dkim["value"], list)  # AdminApi InvokeCommand shape


def test_allow_listed_relay_skips_filtering(bundles: Bundles) -> None:
    """Fabrikam's connection filter allows the relay appliance: the burst is delivered."""
    path = bundles["sentinel"][0]
    truth = json.loads((path / "truth.json").read_text())
    burst = next(c for c in truth["campaigns"] if c["kind"] == "third_party_relay_burst")
    policy = json.loads((path / "exchange/hosted_connection_filter_policy.json").read_text())
    assert set(burst["source_ips"]) <= set(policy["IPAllowList"])
    nmids = set(burst["network_message_ids"])
    rows = [r for f in sorted(path.glob("email_events_*.csv"))
            for r in csv.DictReader(io.StringIO(f.read_text(encoding="utf-8"), newline=""))
            if r["NetworkMessageId"] in nmids]
    assert rows and {r["OrgLevelPolicy"] for r in rows} == {"Connection policy"}
    assert {r["DeliveryAction"] for r in rows} == {"Delivered"}


def test_eac_message_trace_is_utf16(bundles: Bundles) -> None:
    raw = (bundles["sentinel"][0] / "message_trace.csv").read_bytes()
    assert raw.startswith(b"\xff\xfe")
    text = raw[2:].decode("utf-16-le")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and "network_message_id" in rows[0] and "##Receive" in rows[0][
        "Recipient_status"]
    assert {r["directionality"] for r in rows} <= {"Incoming", "Originating"}


def test_jsonl_streaming_envelope(bundles: Bundles) -> None:
    path, summary = bundles["jsonl"]
    raw = (path / "email_events.jsonl").read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == summary.email_events_rows
    nulls = 0
    for line in lines:
        doc: dict[str, Any] = json.loads(line)
        assert doc["category"] == "AdvancedHunting-EmailEvents"
        props = doc["properties"]
        assert set(EE_COLUMNS) <= set(props)
        assert isinstance(props["To"], list) and props["RecipientEmailAddress"] in props["To"]
        assert isinstance(props["EmailSize"], int)
        nulls += props["Connectors"] is None
        json.loads(props["AuthenticationDetails"])
    assert nulls > len(lines) / 2
    assert b"\\u001b[31m" in raw  # the ANSI payload, escaped


def test_hunting_json(bundles: Bundles) -> None:
    path, summary = bundles["hunting"]
    doc = json.loads((path / "email_events.json").read_text(encoding="utf-8"))
    names = [c["name"] for c in doc["schema"]]
    assert names == list(EE_COLUMNS)
    assert len(doc["results"]) == summary.email_events_rows
    row = doc["results"][0]
    assert isinstance(row["BulkComplaintLevel"], int)
    assert isinstance(json.loads(row["AuthenticationDetails"]), dict)
