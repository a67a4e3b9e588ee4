"""The path inventory's single-pass SQL gives exactly what the plain per-group DISTINCT
query (kept here as the specification) gives, including its NULL and multi-recipient cases."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from dsguard.paths.inventory import COUNTS_SQL, INVENTORY_SQL, inventory

# The original, obviously-correct formulation: seven DISTINCT aggregates per (path, via).
REFERENCE_SQL = """SELECT path,
          coalesce(connector_name, connectors, sender_ipv4, sender_ipv6, 'unknown') AS via,
          list(DISTINCT sender ORDER BY sender) FILTER (WHERE sender IS NOT NULL) AS senders,
          list(DISTINCT coalesce(sender_ipv4, sender_ipv6)
               ORDER BY coalesce(sender_ipv4, sender_ipv6))
              FILTER (WHERE coalesce(sender_ipv4, sender_ipv6) IS NOT NULL) AS sources,
          count(DISTINCT network_message_id) AS messages,
          min(ts) AS first_seen, max(ts) AS last_seen,
          count(DISTINCT network_message_id) FILTER (WHERE auth_dmarc = 'pass') AS dmarc_pass,
          count(DISTINCT network_message_id) FILTER (WHERE auth_dmarc = 'fail') AS dmarc_fail,
          count(DISTINCT network_message_id) FILTER (WHERE auth_spf = 'pass') AS spf_pass,
          count(DISTINCT network_message_id) FILTER (WHERE auth_dkim = 'pass') AS dkim_pass,
          any_value(covering_ids[1]) FILTER (WHERE covered) AS covering,
          any_value(connector_name) AS connector
   FROM features
   GROUP BY path, via
   ORDER BY messages DESC, path, via"""

COLUMNS = (
    "network_message_id VARCHAR, recipient VARCHAR, ts TIMESTAMPTZ, path VARCHAR, "
    "connector_name VARCHAR, connectors VARCHAR, sender VARCHAR, sender_ipv4 VARCHAR, "
    "auth_dmarc VARCHAR, auth_spf VARCHAR, auth_dkim VARCHAR, covered BOOLEAN, "
    "covering_ids VARCHAR[], sender_ipv6 VARCHAR"
)


def _t(hour: int) -> datetime:
    return datetime(2026, 3, 1, hour, tzinfo=UTC)


# (nmid, recipient, hour, path, connector_name, connectors, sender, ip, dmarc, spf, dkim,
#  covered, covering_ids)
ROWS: list[tuple[object, ...]] = [
    # One message, two recipients whose results differ: it counts once for each result seen.
    ("m1", "a@c.example", 1, "direct_send", None, None, "scan@c.example", "192.0.2.1",
     "pass", "pass", None, True, ["EX-1"]),
    ("m1", "b@c.example", 1, "direct_send", None, None, "scan@c.example", "192.0.2.1",
     "fail", "softfail", "pass", False, []),
    ("m2", "a@c.example", 2, "direct_send", None, None, None, "192.0.2.1",
     None, None, None, None, None),
    # No message id: a row, but not a message (count DISTINCT skips NULL).
    (None, "a@c.example", 0, "direct_send", None, None, "ghost@c.example", "192.0.2.1",
     "pass", "pass", "pass", False, None),
    # No path and no via at all.
    ("m3", "a@c.example", 3, None, None, None, "x@c.example", None,
     "none", None, None, None, None),
    # A connector path: via is the connector whatever the source address.
    ("m4", "a@c.example", 4, "partner_connector", "Partner A", "Partner A", "p@v.example",
     "198.51.100.7", "pass", "pass", "pass", False, []),
    ("m5", "a@c.example", 5, "partner_connector", "Partner A", None, "q@v.example",
     "198.51.100.8", "pass", "fail", None, False, []),
    # One message on two sources (two vias): it counts in both.
    ("m6", "a@c.example", 6, "direct_send", None, None, "scan@c.example", "192.0.2.9",
     "fail", None, None, False, []),
    ("m6", "b@c.example", 7, "direct_send", None, None, "scan@c.example", "192.0.2.1",
     "fail", None, None, False, []),
    # Only a connectors string (no connector name).
    ("m7", "a@c.example", 8, "authenticated", None, "Legacy", "u@c.example", "203.0.113.5",
     "pass", "pass", "pass", None, None),
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone='UTC'")
    c.execute(f"CREATE TABLE features ({COLUMNS})")
    c.executemany(
        "INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [(r[0], r[1], _t(int(str(r[2]))), *r[3:]) for r in ROWS],
    )
    # A source known only by its IPv6 address is a source of its own.
    c.execute(
        "INSERT INTO features (network_message_id, recipient, ts, path, sender, sender_ipv6, "
        "auth_dmarc) VALUES ('m9', 'a@c.example', ?, 'direct_send', 'scan@c.example', "
        "'2001:db8::5', 'fail')",
        [_t(9)],
    )
    return c


def test_inventory_sql_matches_the_distinct_aggregate_reference(
    con: duckdb.DuckDBPyConnection,
) -> None:
    expected = con.execute(REFERENCE_SQL).fetchall()
    con.execute(COUNTS_SQL)
    assert con.execute(INVENTORY_SQL).fetchall() == expected
    direct = next(r for r in expected if r[0] == "direct_send" and r[1] == "192.0.2.1")
    assert direct[4] == 3 and direct[7:11] == (1, 2, 1, 1)  # the case the rewrite must keep
    ipv6 = next(r for r in expected if r[1] == "2001:db8::5")
    assert ipv6[3] == ["2001:db8::5"] and ipv6[4] == 1


def test_inventory_records(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM features WHERE path IS NULL")  # PathRecord needs a path kind
    records = inventory(con)
    assert [(r.path, r.messages) for r in records][:2] == [
        ("direct_send", 3),
        ("partner_connector", 2),
    ]
    first = records[0]
    assert first.senders == ["ghost@c.example", "scan@c.example"]
    assert first.authentication == {"dmarc_pass": 1, "dmarc_fail": 2, "spf_pass": 1, "dkim_pass": 1}
    assert first.covering_exception == "EX-1"
    assert records[1].connector == "Partner A" and records[1].sources == [
        "198.51.100.7",
        "198.51.100.8",
    ]


def test_inventory_of_an_empty_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM features")
    assert inventory(con) == []
