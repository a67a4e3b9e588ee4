"""The collector end to end against a fake tenant on 127.0.0.1 and a local DNS server."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from collect.fake_tenant import (
    APP_GONE,
    APP_MAILER,
    APP_READER,
    APP_SMTP,
    END,
    INITIAL,
    LONG_TXT,
    PRIMARY,
    START,
    TENANT_ID,
    FakeTenant,
    Fault,
    _parse,
    parse_query_slice,
    path_is,
)
from dsguard.collect import STATE_FILE, collect
from dsguard.collect.state import State
from dsguard.posture.apps import mail_grants
from dsguard.posture.kinds import KINDS
from dsguard.sources.exchange_config import parse_powershell_json

HUNTING = "security/runHuntingQuery"
INVOKE = "/InvokeCommand"
SIGNINS = "auditLogs/signIns"


# ----------------------------------------------------------------------------- helpers
def bundle_events(bundle: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(bundle.glob("email_events_*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def keys(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((r["NetworkMessageId"], r["RecipientEmailAddress"]) for r in rows)


def expected_events(tenant: FakeTenant) -> Counter[tuple[str, str]]:
    return keys([r for r in tenant.events if START <= _parse(r["Timestamp"]) < END])


def bundle_signins(bundle: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(bundle.glob("signins_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            out += obj.get("value", [obj])
    return out


def config_objects(bundle: Path, kind: str) -> list[Any]:
    return parse_powershell_json((bundle / KINDS[kind].bundle_path).read_text("utf-8"))


def assert_clean(bundle: Path) -> None:
    assert not list(bundle.rglob("*.part")), "a temporary file was left behind"


# ----------------------------------------------------------------------------- the happy path
def test_collects_a_complete_bundle(tenant: FakeTenant, make_config: Any, credential: Any) -> None:
    config = make_config()
    seen: list[tuple[str, int, int, str]] = []
    result = collect(config, credential, progress=lambda *a: seen.append(a))
    bundle = config.out

    assert result.complete, result.errors
    assert {k: v.status for k, v in result.sources.items()} == {
        "exchange": "collected", "apps": "collected", "dns": "collected",
        "mail": "collected", "signins": "collected",
    }  # fmt: skip
    assert result.mail_source == "hunting"
    assert_clean(bundle)

    # Mail: every row of the period exactly once, none from outside it.
    rows = bundle_events(bundle)
    assert keys(rows) == expected_events(tenant)
    assert max(keys(rows).values()) == 1
    # The burst filled the 50-row cap: that slice was split and asked again, smaller.
    slices = [parse_query_slice(e) for e in tenant.requests(HUNTING)]
    full = [(s, e) for (s, e, cap), r in zip(slices, tenant.requests(HUNTING), strict=True)
            if r.status == 200 and cap == 50
            and sum(1 for x in tenant.events if s <= _parse(x["Timestamp"]) < e) >= 50]  # fmt: skip
    assert full, "no slice came back full"
    widths = {e - s for s, e, _ in slices}
    assert max(widths).days == 1 and min(widths).total_seconds() < 3 * 3600
    # The written slices tile the period: no gap, no overlap.
    state = State.open(bundle, tenant=TENANT_ID, days=3, end=END)[0]
    done = state.slices("hunting")
    assert done[0][0] == START and done[-1][1] == END
    assert all(a[1] == b[0] for a, b in itertools.pairwise(done))
    assert sum(n for _, _, n in done) == len(rows)

    # Exchange: every cmdlet, paged past 1,000 rows, in ConvertTo-Json's array shape.
    cas = config_objects(bundle, "cas_mailbox")
    assert len(cas) == 2500 and len({c["Name"] for c in cas}) == 2500
    assert json.loads((bundle / "exchange/cas_mailbox.json").read_text())[0]["Name"] == "user0000"
    invokes = tenant.requests(INVOKE)
    cas_calls = [r for r in invokes if r.body["CmdletInput"]["CmdletName"] == "Get-CASMailbox"]
    assert len(cas_calls) == 3  # 1000 + 1000 + 500, the same body POSTed to each next link
    assert all(r.body == cas_calls[0].body for r in cas_calls)
    assert cas_calls[0].body["CmdletInput"]["Parameters"] == {
        "ResultSize": "Unlimited", "Filter": "SmtpClientAuthenticationDisabled -eq $false"}
    assert cas_calls[0].headers["Prefer"] == "odata.maxpagesize=1000"
    assert cas_calls[0].headers["Authorization"] == "Bearer tok:https://outlook.office365.com/.default"
    assert "InvokeCommand" in invokes[0].path and TENANT_ID in invokes[0].path
    for kind, info in KINDS.items():
        if kind in ("protection_alerts",):
            continue
        assert (bundle / info.bundle_path).is_file(), info.bundle_path
    assert (bundle / "exchange/exchange_service_principals.json").is_file()
    assert config_objects(bundle, "accepted_domains")[1]["DomainName"] == INITIAL

    # Apps: the mail-role grants and the apps they name; nothing else, deleted apps noted.
    sps = config_objects(bundle, "service_principals")
    grants = {g.principal_id: g.roles for g in mail_grants(sps)}
    assert grants == {APP_MAILER.lower(): {"Mail.Send"}, APP_SMTP.lower(): {"SMTP.SendAsApp"},
                      APP_GONE.lower(): {"Mail.Send"}}  # fmt: skip
    fetched = {r.path.rsplit("/", 1)[-1] for r in tenant.requests("/servicePrincipals/")
               if "appRoleAssignedTo" not in r.path}  # fmt: skip
    assert APP_READER not in fetched
    assert any(APP_GONE in w for w in result.warnings)
    graph_calls = [r for r in tenant.log if INVOKE not in r.path]
    assert {r.headers["Authorization"] for r in graph_calls} == {
        "Bearer tok:https://graph.microsoft.com/.default"}

    # DNS: the typed shape, TXT strings joined, SPF includes followed.
    dns = json.loads((bundle / "dns.json").read_text())
    assert dns[PRIMARY]["MX"] == ["0 contoso-com.mail.protection.outlook.com"]
    assert LONG_TXT in dns[PRIMARY]["TXT"]
    assert dns[f"_dmarc.{PRIMARY}"]["TXT"] == ["v=DMARC1; p=quarantine; rua=mailto:d@contoso.com"]
    assert dns[f"selector1._domainkey.{PRIMARY}"]["CNAME"] == [
        "selector1-contoso-com._domainkey.contoso.onmicrosoft.com"]
    assert "spfd.protection.outlook.com" in dns
    assert INITIAL in dns and "onmicrosoft.com" not in dns

    # Sign-ins: only the internal-looking senders of inbound mail, only in the period.
    signins = bundle_signins(bundle)
    assert {s["userPrincipalName"] for s in signins} == {f"ceo@{PRIMARY}"}
    assert len(signins) == 3
    assert all(START <= _parse(s["createdDateTime"]) < END for s in signins)
    chunks = State.open(bundle, tenant=TENANT_ID, days=3, end=END)[0].get("signin_chunks")
    assert chunks == [[f"ceo@{PRIMARY}"], ["scan@contoso.com"]]
    assert len(list(bundle.glob("signins_*.jsonl"))) == 2
    assert len(tenant.requests(SIGNINS)) == 2  # ceo's 3 sign-ins come in one page of 3

    # A progress bar per source.
    assert {s for s, *_ in seen} == {"exchange", "apps", "dns", "mail", "signins"}


def test_rerun_of_a_complete_bundle_asks_for_nothing_new(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    config = make_config()
    assert collect(config, credential).complete
    before = len(tenant.log)
    again = collect(config, credential)
    assert again.complete and again.resumed
    assert {v.status for v in again.sources.values()} == {"done"}
    assert len(tenant.log) == before
    assert keys(bundle_events(config.out)) == expected_events(tenant)


# ----------------------------------------------------------------------------- resilience
def test_429_and_5xx_are_retried_honouring_retry_after(
    tenant: FakeTenant, make_config: Any, credential: Any, sleeps: list[float]
) -> None:
    tenant.faults += [
        Fault(path_is(HUNTING), "429", retry_after="7"),
        Fault(path_is(HUNTING), "503", after=1),
        Fault(path_is(INVOKE), "502", retry_after="2"),
        Fault(path_is(SIGNINS), "500"),
        Fault(path_is("appRoleAssignedTo"), "504", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
    ]
    config = make_config()
    result = collect(config, credential)
    assert result.complete, result.errors
    assert all(f.fired == 1 for f in tenant.faults)
    assert 7.0 in sleeps and 2.0 in sleeps
    assert 0.0 in sleeps  # an HTTP date in the past means "now"
    assert 1.0 in sleeps  # no Retry-After: exponential back-off from 1 s
    assert keys(bundle_events(config.out)) == expected_events(tenant)


def test_malformed_json_is_retried(tenant: FakeTenant, make_config: Any, credential: Any) -> None:
    tenant.faults += [Fault(path_is(HUNTING), "malformed", times=2),
                      Fault(path_is(INVOKE), "malformed")]  # fmt: skip
    config = make_config()
    result = collect(config, credential)
    assert result.complete, result.errors
    assert keys(bundle_events(config.out)) == expected_events(tenant)


def test_malformed_json_that_persists_is_one_clear_error(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(SIGNINS), "malformed", times=None))
    result = collect(make_config(), credential)
    assert not result.complete
    assert result.sources["signins"].status == "failed"
    (error,) = result.errors
    assert "malformed JSON" in error and "auditLogs/signIns" in error and "rerun" in error
    assert "\n" not in error


def test_connection_dropped_midway_then_rerun_resumes_without_duplicates_or_gaps(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    # After 4 good answers, every hunting response is cut off mid-body.
    drop = Fault(path_is(HUNTING), "drop", times=None, after=4)
    tenant.faults.append(drop)
    config = make_config()
    first = collect(config, credential)
    assert not first.complete
    assert first.sources["mail"].status == "failed"
    assert "still failing" in first.errors[0] and "RemoteProtocolError" in first.errors[0]
    assert first.sources["signins"].status == "skipped"
    assert first.sources["exchange"].status == "collected"  # other sources were not held up
    partial = bundle_events(config.out)
    assert 0 < len(partial) < sum(expected_events(tenant).values())
    assert_clean(config.out)
    done_before = State.open(config.out, tenant=TENANT_ID, days=3, end=END)[0].slices("hunting")

    tenant.faults.clear()
    asked_before = len(tenant.requests(HUNTING))
    second = collect(config, credential)
    assert second.complete, second.errors
    assert second.resumed
    rows = bundle_events(config.out)
    assert keys(rows) == expected_events(tenant)  # no gap
    assert max(keys(rows).values()) == 1  # no duplicate
    # The rerun never asked again for a slice the first run had written.
    for entry in tenant.requests(HUNTING)[asked_before:]:
        s, e, _ = parse_query_slice(entry)
        assert not any(ds < e and s < de for ds, de, _ in done_before)
    assert second.sources["exchange"].status == "done"
    assert second.sources["signins"].status == "collected"


def test_stopped_between_file_and_checkpoint_adopts_the_file(
    tenant: FakeTenant, make_config: Any, credential: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after a slice file was renamed into place but before the checkpoint
    recorded it must not collect that slice again under other bounds."""
    real = State.add_slice
    calls = {"n": 0}

    def add_slice(self: State, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(self, *args)

    monkeypatch.setattr(State, "add_slice", add_slice)
    config = make_config()
    with pytest.raises(KeyboardInterrupt):
        collect(config, credential)
    monkeypatch.setattr(State, "add_slice", real)
    # The rerun slices differently (a smaller first slice), which would overlap the orphan.
    result = collect(make_config(slices=config.slices.__class__(row_cap=50,
                                                                 initial=config.slices.initial / 4)),
                     credential)  # fmt: skip
    assert result.complete, result.errors
    rows = bundle_events(config.out)
    assert keys(rows) == expected_events(tenant)
    assert max(keys(rows).values()) == 1


def test_query_over_the_service_limits_is_split(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(HUNTING), "400", times=2,
                               message="Query execution has exceeded the allowed limits"))  # fmt: skip
    config = make_config()
    result = collect(config, credential)
    assert result.complete, result.errors
    first, second, third = (parse_query_slice(e) for e in tenant.requests(HUNTING)[:3])
    assert second[0] == first[0] and (second[1] - second[0]) == (first[1] - first[0]) / 2
    assert (third[1] - third[0]) == (first[1] - first[0]) / 4
    assert keys(bundle_events(config.out)) == expected_events(tenant)


# ----------------------------------------------------------------------------- 401 / 403
def test_403_names_the_missing_permission_and_other_sources_still_run(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(SIGNINS), "403", times=None,
                               message="Insufficient privileges to complete the operation."))  # fmt: skip
    result = collect(make_config(), credential)
    assert [k for k, v in result.sources.items() if v.status == "failed"] == ["signins"]
    (error,) = result.errors
    assert "HTTP 403" in error and "AuditLog.Read.All" in error and "Directory.Read.All" in error
    assert "Authorization_RequestDenied" in error and "\n" not in error


def test_401_on_exchange_names_exchange_manage_as_app(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(INVOKE), "401", times=None))
    result = collect(make_config(), credential)
    assert result.sources["exchange"].status == "failed"
    (error,) = result.errors
    assert "HTTP 401" in error and "Exchange.ManageAsApp" in error
    assert len(tenant.requests(INVOKE)) == 2  # one retry with a fresh token, then stop
    assert result.sources["mail"].status == "collected"
    # DNS fell back to the verified domains Graph knows.
    assert result.sources["dns"].status == "collected"


def test_403_on_hunting_without_a_licence_message_is_a_permission_error(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(HUNTING), "403", times=None,
                               message="Missing application roles."))  # fmt: skip
    result = collect(make_config(), credential)
    assert result.sources["mail"].status == "failed"
    assert "ThreatHunting.Read.All" in result.errors[0]
    assert not tenant.requests("messageTraces")


# ----------------------------------------------------------------------------- fallback
@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("403", "The tenant is not licensed for Microsoft Defender for Office 365 Plan 2."),
        ("400", "Failed to resolve table or column expression named 'EmailEvents'"),
    ],
)
def test_falls_back_to_message_trace_and_says_what_is_lost(
    tenant: FakeTenant, make_config: Any, credential: Any, status: str, message: str
) -> None:
    tenant.faults.append(Fault(path_is(HUNTING), status, times=None, message=message))
    config = make_config()
    result = collect(config, credential)
    assert result.complete, result.errors
    assert result.mail_source == "trace"
    assert not list(config.out.glob("email_events*"))
    files = sorted(config.out.glob("message_trace_*.csv"))
    assert len(files) == 3  # one a day
    import csv

    rows = [r for f in files for r in csv.DictReader(f.open(encoding="utf-8", newline=""))]
    assert list(rows[0]) == ["Received", "SenderAddress", "RecipientAddress", "Subject",
                             "Status", "FromIP", "ToIP", "Size", "MessageId", "MessageTraceId"]  # fmt: skip
    got = Counter((r["MessageTraceId"], r["RecipientAddress"]) for r in rows)
    assert got == expected_events(tenant)
    assert len(tenant.requests("messageTraces")) > 3  # paged
    assert any("message trace" in w and "no SPF/DKIM/DMARC" in w for w in result.warnings)
    # The choice sticks: a rerun keeps message trace and says so again.
    again = collect(config, credential)
    assert again.mail_source == "trace" and again.complete
    assert any("no SPF/DKIM/DMARC" in w for w in again.warnings)


def test_mail_source_hunting_does_not_fall_back(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.faults.append(Fault(path_is(HUNTING), "403", times=None,
                               message="Tenant is not licensed for advanced hunting"))  # fmt: skip
    result = collect(make_config(mail_source="hunting"), credential)
    assert result.sources["mail"].status == "failed"
    assert "--mail-source trace" in result.errors[0]
    assert not tenant.requests("messageTraces")


# ----------------------------------------------------------------------------- the bundle
def test_collected_bundle_analyses_cleanly(
    tenant: FakeTenant, make_config: Any, credential: Any, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from dsguard.cli import app

    config = make_config()
    assert collect(config, credential).complete
    out = tmp_path / "analysis"
    run = CliRunner().invoke(app, ["analyze", str(config.out), "--out", str(out), "--json"])
    assert run.exit_code == 0, run.output
    ingest = json.loads((out / "ingest.json").read_text())
    files = ingest["files"] if isinstance(ingest, dict) else ingest
    assert files, ingest
    for f in files:
        assert f["error"] is None, f
        assert f["rejected"] == 0, f
        assert f["duplicates"] == 0, f
        assert not [w for w in f["warnings"] if "column" in w.lower()], f
    loaded = {f["source"]: 0 for f in files}
    for f in files:
        loaded[f["source"]] += f["loaded"]
    assert loaded["email_events"] == sum(expected_events(tenant).values())
    assert loaded["signins"] == 3
    assert not (out / "quarantine.jsonl").exists() or not (out / "quarantine.jsonl").read_text().strip()
    assert (bundle := config.out) and (bundle / STATE_FILE).is_file()


def test_a_cmdlet_the_tenant_lacks_is_reported_and_retried_next_run(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    arc = tenant.exchange.pop("Get-ArcConfig")
    config = make_config()
    result = collect(config, credential)
    assert result.complete  # the bundle is usable; the check reports MANUAL for it
    assert result.sources["exchange"].status == "partial"
    assert "arc_config" in result.sources["exchange"].note
    assert any("Get-ArcConfig was not collected" in w and "not recognized" in w
               for w in result.warnings)  # fmt: skip
    assert not (config.out / "exchange/arc_config.json").exists()
    tenant.exchange["Get-ArcConfig"] = arc
    before = len(tenant.requests(INVOKE))
    again = collect(config, credential)
    assert again.sources["exchange"].status == "collected"
    assert len(tenant.requests(INVOKE)) == before + 1  # only the missing cmdlet
    assert config_objects(config.out, "arc_config") == arc


def test_no_internal_inbound_senders_still_records_signins_as_collected(
    tenant: FakeTenant, make_config: Any, credential: Any
) -> None:
    tenant.events = [e for e in tenant.events if e["EmailDirection"] != "Inbound"
                     or not e["SenderFromAddress"].endswith(PRIMARY)]  # fmt: skip
    config = make_config()
    result = collect(config, credential)
    assert result.complete, result.errors
    assert not tenant.requests(SIGNINS)
    assert json.loads((config.out / "signins_none.json").read_text()) == {"value": []}
