"""The signal catalogue as data: ids, fields, compilation; and the features it reads on a
hand-built store, where every expected value is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dsguard.evidence import parts
from dsguard.evidence.store import EvidenceStore
from dsguard.scoring.alerts import build_alerts, campaign_rows, score_messages
from dsguard.scoring.score import severity_of
from dsguard.severity import Severity
from dsguard.signals.engine import build_features, feature_columns
from dsguard.signals.rules import RuleError, catalogue, to_sql
from dsguard.tenant import ExceptionRule, Tenant

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DOM = "contoso.example"


@pytest.fixture(scope="module")
def columns(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    with EvidenceStore(tmp_path_factory.mktemp("cols") / "e.duckdb") as store:
        build_features(store.con, Tenant(accepted_domains=[DOM], domains_inferred=False))
        return feature_columns(store.con)


def test_catalogue_ids_are_unique_stable_and_complete(columns: set[str]) -> None:
    rules = catalogue()
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    for r in rules:
        assert r.title and r.description and r.evidence
        assert r.fields() <= columns, (r.id, r.fields() - columns)
        to_sql(r.when, columns)  # compiles against the real feature table


def test_condition_language() -> None:
    cols = {"a", "b", "c"}
    assert to_sql({"a": "x"}, cols) == "coalesce((\"a\" = 'x'), false)"
    assert "IN ('x', 'y')" in to_sql({"a": ["x", "y"]}, cols)
    assert "IS NULL" in to_sql({"a": None}, cols)
    assert "O''Brien" in to_sql({"a": "O'Brien"}, cols)  # quoting
    sql = to_sql({"any": [{"b": {"ge": 3}}, {"not": {"c": True}}]}, cols)
    assert '"b" >= 3' in sql and "NOT" in sql
    with pytest.raises(RuleError):
        to_sql({"zzz": 1}, cols)
    with pytest.raises(RuleError):
        to_sql({"a": {"between": 1}}, cols)


def _msg(i: int, **kw: Any) -> dict[str, Any]:
    base = {
        "network_message_id": f"m{i}",
        "recipient": f"user{i % 5}@{DOM}",
        "ts": T0,
        "source": "email_events",
        "sender_mail_from": f"scan@{DOM}",
        "sender_mail_from_domain": DOM,
        "sender_from": f"scan@{DOM}",
        "sender_from_domain": DOM,
        "sender_ipv4": "203.0.113.10",
        "subject": "Scanned document",
        "direction": "Inbound",
        "auth_spf": "pass",
        "auth_dkim": "none",
        "auth_dmarc": "pass",
        "auth_compauth": "pass",
        "source_file": "t",
        "source_row": i,
    }
    base.update(kw)
    return base


def _load(store: EvidenceStore, rows: list[dict[str, Any]]) -> None:
    table = parts.newest(store.con, "messages")  # ``messages`` is a view over its parts
    for r in rows:
        cols = list(r)
        store.con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [r[c] for c in cols],
        )


def _features(
    tmp_path: Path, rows: list[dict[str, Any]], tenant: Tenant
) -> dict[str, dict[str, Any]]:
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        _load(store, rows)
        build_features(store.con, tenant)
        cur = store.con.execute("SELECT * FROM features")
        names = [d[0] for d in cur.description]
        out = {}
        for r in cur.fetchall():
            d = dict(zip(names, r, strict=True))
            out[d["network_message_id"]] = d
        return out


def test_causal_novelty_and_identity(tmp_path: Path) -> None:
    days = [T0 + timedelta(days=d) for d in range(6)]
    rows = [_msg(d, ts=days[d]) for d in range(6)]  # the printer, every day, one address
    rows.append(
        _msg(
            10,
            ts=days[5] + timedelta(hours=1),
            sender_ipv4="192.0.2.9",
            auth_spf="fail",
            auth_dmarc="fail",
            auth_compauth="fail",
        )
    )
    rows.append(
        _msg(
            11,
            ts=days[5],
            direction="Intra-org",
            sender_from=f"ann@{DOM}",
            sender_mail_from=f"ann@{DOM}",
            sender_ipv4=None,
        )
    )
    rows.append(
        _msg(
            12,
            ts=days[5] + timedelta(hours=2),
            sender_from=f"ann@{DOM}",
            sender_mail_from=f"ann@{DOM}",
            recipient=f"ann@{DOM}",
            sender_ipv4="192.0.2.50",
            auth_dmarc="fail",
        )
    )
    rows.append(
        _msg(
            13,
            ts=days[5],
            sender_from=f"ghost@{DOM}",
            sender_mail_from=f"ghost@{DOM}",
            sender_ipv4="192.0.2.77",
            auth_dmarc="fail",
        )
    )
    rows.append(
        _msg(
            14,
            ts=days[5],
            sender_from="ceo@" + DOM,
            sender_mail_from="x@evil.test",
            sender_mail_from_domain="evil.test",
            sender_ipv4="192.0.2.88",
        )
    )
    ex = ExceptionRule("EX-1", ["203.0.113.10/32"], [f"scan@{DOM}"], ["internal"], None, "me")
    f = _features(tmp_path, rows, Tenant([DOM], False, exceptions=[ex]))
    assert f["m0"]["path"] == "direct_send" and f["m0"]["covered_in_date"]
    assert f["m5"]["sender_ip_prior_days"] == 5 and f["m5"]["baseline_mature"]
    assert not f["m0"]["baseline_mature"]  # first day: novelty means nothing yet
    assert f["m10"]["sender_ip_prior_days"] == 0 and not f["m10"]["covered"]
    assert f["m10"]["registered_sender"] and f["m10"]["identity_class"] == "service"
    assert f["m11"]["path"] == "authenticated"
    assert f["m12"]["identity_class"] == "person" and f["m12"]["self_send"]
    assert f["m13"]["identity_class"] == "nobody"
    assert f["m14"]["p1_p2_mismatch"] and not f["m14"]["p1_internal"] and f["m14"]["p2_internal"]


def test_scores_and_campaigns_explain_themselves(tmp_path: Path) -> None:
    days = [T0 + timedelta(days=d) for d in range(5)]
    rows = [
        _msg(
            d,
            ts=days[d],
            direction="Intra-org",
            sender_from=f"u{d}@{DOM}",
            sender_mail_from=f"u{d}@{DOM}",
            recipient=f"u{d}@{DOM}",
        )
        for d in range(5)
    ]
    # A lure burst "from" each user to themselves, from one foreign address, on day 5.
    burst = [
        _msg(
            100 + d,
            ts=days[4] + timedelta(minutes=d),
            sender_from=f"u{d}@{DOM}",
            sender_mail_from=f"u{d}@{DOM}",
            recipient=f"u{d}@{DOM}",
            sender_ipv4="192.0.2.66",
            subject=f"New Missed Fax-msg {d}",
            auth_spf="softfail",
            auth_dmarc="fail",
            auth_compauth="fail",
        )
        for d in range(5)
    ]
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        _load(store, rows + burst)
        build_features(store.con, Tenant([DOM], False))
        score_messages(store.con, feature_columns(store.con))
        alerts = build_alerts(campaign_rows(store.con))
    (a,) = alerts
    assert set(a.network_message_ids) == {f"m{100 + d}" for d in range(5)}
    assert Severity.parse(a.severity) >= Severity.HIGH
    ids = {r.signal_id for r in a.reasons}
    assert {"DSG-SELF-001", "DSG-IDEN-002", "DSG-AUTH-001", "DSG-CONT-001"} <= ids
    assert a.source_ips == ["192.0.2.66"] and a.path == "direct_send"


def test_severity_thresholds_are_monotonic() -> None:
    last = Severity.INFORMATIONAL
    for score in range(0, 200, 5):
        sev = severity_of(score)
        assert sev >= last
        last = sev


def test_a_source_without_ipv4_is_its_own_source(tmp_path: Path) -> None:
    """Exchange Online reports a sender reached over IPv6 in ``SenderIPv6`` only: two such
    sources must not pool into one for bursts, fan-out, novelty and the sources count."""
    rows = []
    for n, (ip, recipients) in enumerate([("2001:db8::a", 3), ("2001:db8::b", 2)]):
        for k in range(recipients):
            rows.append(
                _msg(
                    10 * n + k,
                    ts=T0 + timedelta(minutes=10 * n + k),
                    recipient=f"user{10 * n + k}@{DOM}",
                    sender_ipv4=None,
                    sender_ipv6=ip,
                    auth_dmarc="fail",
                )
            )
    f = _features(tmp_path, rows, Tenant([DOM], False))
    assert f["m0"]["sender_ipv6"] == "2001:db8::a" and f["m0"]["sender_ipv4"] is None
    assert [f[f"m{i}"]["source_burst"] for i in (0, 1, 2, 10, 11)] == [1, 2, 3, 1, 2]
    assert [f[f"m{i}"]["source_fanout"] for i in (0, 1, 2, 10, 11)] == [1, 2, 3, 1, 2]
    assert [f[f"m{i}"]["sender_sources_so_far"] for i in (0, 2, 10, 11)] == [1, 1, 2, 2]
    assert f["m10"]["sender_ip_prior_days"] == 0 and f["m10"]["tenant_ip_prior_days"] == 0


def test_campaigns_from_sources_without_ipv4_stay_apart(tmp_path: Path) -> None:
    rows = [
        _msg(
            10 * n + k,
            ts=T0 + timedelta(minutes=k, seconds=30 * n),
            recipient=f"user{10 * n + k}@{DOM}",
            sender_ipv4=None,
            sender_ipv6=ip,
            subject="New Missed Fax-msg",
            auth_spf="softfail",
            auth_dmarc="fail",
            auth_compauth="fail",
        )
        for n, ip in enumerate(("2001:db8::a", "2001:db8::b"))
        for k in range(3)
    ]
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        _load(store, rows)
        build_features(store.con, Tenant([DOM], False))
        score_messages(store.con, feature_columns(store.con))
        alerts = build_alerts(campaign_rows(store.con))
    assert sorted(a.source_ips for a in alerts) == [["2001:db8::a"], ["2001:db8::b"]]
    # Each reason that names the source names the IPv6 address, not an empty IPv4 one.
    for a in alerts:
        named = [r.evidence["source_ip"] for r in a.reasons if "source_ip" in r.evidence]
        assert named and set(named) == set(a.source_ips)
        assert not any("sender_ipv4" in r.evidence for r in a.reasons)


def test_ipv6_sources_meet_ipv6_ranges(tmp_path: Path) -> None:
    """Exceptions, SPF ``ip6:`` terms, connectors and office exits hold IPv6 ranges too; a
    source known only by IPv6 is matched against them (and an IPv4 range never matches it)."""
    rows = [
        _msg(n, sender_ipv4=None, sender_ipv6=ip, auth_dmarc="fail", recipient=f"u{n}@{DOM}")
        for n, ip in enumerate(
            [
                "2001:db8:a::10",
                "2001:db8:b::1",
                "2001:db8:c::5",
                "2001:db8:d::1",
                "::ffff:203.0.113.10",
            ]
        )
    ]
    tenant = Tenant(
        [DOM],
        False,
        exceptions=[
            ExceptionRule("EX-6", ["2001:DB8:A::/64"], [f"scan@{DOM}"], ["internal"], None, "me"),
            ExceptionRule("EX-4", ["203.0.113.0/24"], [f"scan@{DOM}"], ["internal"], None, "me"),
        ],
        spf={DOM: ["2001:db8:b::/48", "203.0.113.0/24"]},  # ip6: and ip4: values
        office_egress=["2001:db8:c::5", "203.0.113.10"],
    )
    f = _features(tmp_path, rows, tenant)
    assert f["m0"]["exception_source_ids"] == ["EX-6"] and f["m0"]["covered_in_date"]
    assert f["m1"]["spf_domains"] == [DOM] and not f["m1"]["covered"]
    assert f["m2"]["ip_office"] and not f["m1"]["ip_office"]
    nothing = f["m3"]
    assert not nothing["covered"] and not nothing["ip_office"] and not nothing["spf_domains"]
    # An IPv4-mapped IPv6 source is not the IPv4 address: the IPv4 ranges do not cover it.
    assert not f["m4"]["covered"] and not f["m4"]["spf_domains"] and not f["m4"]["ip_office"]


def test_bursts_and_fan_out_reach_back_across_midnight(tmp_path: Path) -> None:
    """Windows are cut into day chunks (``day_chunks``); the rows of the day before still
    count for a message just after midnight, up to each window's length and no further."""
    midnight = datetime(2026, 11, 3, tzinfo=UTC)
    offsets = [-70, -50, -9, -5, 1, 4]  # minutes from midnight
    rows = [
        _msg(k, ts=midnight + timedelta(minutes=m), recipient=f"user{k}@{DOM}",
             sender_from=f"hr{k}@{DOM}", sender_mail_from=f"hr{k}@{DOM}", auth_dmarc="fail")
        for k, m in enumerate(offsets)
    ]
    # Another sender from another source, one for the sender fan-out.
    rows += [
        _msg(10 + k, ts=midnight + timedelta(minutes=m), recipient=f"boss{k}@{DOM}",
             sender_from=f"ceo@{DOM}", sender_mail_from=f"ceo@{DOM}",
             sender_ipv4=f"198.51.100.{k + 1}", auth_dmarc="fail")
        for k, m in enumerate([-61, -59, -30, 2])
    ]
    f = _features(tmp_path, rows, Tenant([DOM], False))
    # 10 minutes back for bursts, 60 for fan-out, over the source's rows on both days.
    assert [f[f"m{k}"]["source_burst"] for k in range(6)] == [1, 1, 1, 2, 3, 3]
    assert [f[f"m{k}"]["source_fanout"] for k in range(6)] == [1, 2, 2, 3, 4, 5]
    assert [f[f"m{k}"]["sender_fanout"] for k in (10, 11, 12, 13)] == [1, 2, 3, 2]


def test_novelty_counts_each_key_own_earlier_days(tmp_path: Path) -> None:
    """Earlier days are counted per sender and source, per source (any sender) and per
    sender (any source), whichever of those earlier rows were scored: a sender new to a
    source that others have used for days is new as a pair, not to the tenant, and keeps the
    days it sent from elsewhere."""
    days = [T0 + timedelta(days=d) for d in range(5)]
    s, t = "192.0.2.10", "192.0.2.20"
    # Earlier days, all from authenticated mailboxes: baselines, never scored themselves.
    rows = [_msg(d, ts=days[d], sender_from=f"a@{DOM}", sender_mail_from=f"a@{DOM}",
                 sender_ipv4=s, direction="Intra-org") for d in (0, 1, 2)]
    rows += [_msg(10 + d, ts=days[d], sender_from=f"b@{DOM}", sender_mail_from=f"b@{DOM}",
                  sender_ipv4=t, direction="Intra-org") for d in (1, 3)]
    rows += [
        _msg(20, ts=days[4], sender_from=f"b@{DOM}", sender_mail_from=f"b@{DOM}",
             sender_ipv4=s, auth_dmarc="fail"),
        # Another sender and source on the same day, which neither count may include.
        _msg(21, ts=days[4], sender_from=f"c@{DOM}", sender_mail_from=f"c@{DOM}",
             sender_ipv4="192.0.2.30", auth_dmarc="fail"),
    ]
    f = _features(tmp_path, rows, Tenant([DOM], False))

    def prior(m: str) -> tuple[int, int, int]:
        r = f[m]
        return r["sender_ip_prior_days"], r["tenant_ip_prior_days"], r["sender_prior_days"]

    assert prior("m20") == (0, 3, 2)  # b from s: a's three days of s, b's two days of t
    assert prior("m21") == (0, 0, 0)
    assert f["m0"]["path"] == "authenticated" and f["m0"]["sender_ip_prior_days"] is None
