"""The inventory of mail paths that carried internal-looking mail (``paths.json``): which
senders use which path from where, how much, since when, how authenticated, under which
exception."""

from __future__ import annotations

import duckdb

from dsguard.results import PathRecord
from dsguard.signals.features import source_ip

# One message has one row per recipient, so "how many messages" is a distinct count. Seven
# DISTINCT aggregates over every row cost ~4 s at 10M rows; instead the rows are grouped once
# per (path, via, message), the authentication results folded into bit flags (a message
# counts if any of its rows passed, as before), and the distinct sender and source lists come
# from their own small DISTINCT steps. The grouping by message is its own statement
# (``COUNTS_SQL``): in one query with the others, its table and theirs had to fit in memory
# at once, and at 30M rows they did not.
_ROWS = f"""f AS NOT MATERIALIZED (
    SELECT path, coalesce(connector_name, connectors, {source_ip()}, 'unknown') AS via,
           network_message_id, sender, {source_ip()} AS sender_ip, ts, auth_dmarc, auth_spf,
           auth_dkim, covered, covering_ids, connector_name
    FROM features)"""
COUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE path_counts AS
WITH {_ROWS},
per_message AS (
    SELECT path, via, network_message_id,
           bit_or(CASE auth_dmarc WHEN 'pass' THEN 1 WHEN 'fail' THEN 2 ELSE 0 END
                  | CASE WHEN auth_spf = 'pass' THEN 4 ELSE 0 END
                  | CASE WHEN auth_dkim = 'pass' THEN 8 ELSE 0 END) AS auth
    FROM f GROUP BY path, via, network_message_id)
SELECT path, via, count(network_message_id) AS messages,
       count(network_message_id) FILTER (WHERE auth & 1 = 1) AS dmarc_pass,
       count(network_message_id) FILTER (WHERE auth & 2 = 2) AS dmarc_fail,
       count(network_message_id) FILTER (WHERE auth & 4 = 4) AS spf_pass,
       count(network_message_id) FILTER (WHERE auth & 8 = 8) AS dkim_pass
FROM per_message GROUP BY path, via
"""
INVENTORY_SQL = f"""
WITH {_ROWS},
facts AS (
    SELECT path, via, min(ts) AS first_seen, max(ts) AS last_seen,
           any_value(covering_ids[1]) FILTER (WHERE covered) AS covering,
           any_value(connector_name) AS connector
    FROM f GROUP BY path, via),
senders AS (
    SELECT path, via, list(sender ORDER BY sender) AS senders
    FROM (SELECT DISTINCT path, via, sender FROM f WHERE sender IS NOT NULL)
    GROUP BY path, via),
sources AS (
    SELECT path, via, list(sender_ip ORDER BY sender_ip) AS sources
    FROM (SELECT DISTINCT path, via, sender_ip FROM f WHERE sender_ip IS NOT NULL)
    GROUP BY path, via)
SELECT x.path, x.via, s.senders, i.sources, c.messages, x.first_seen, x.last_seen,
       c.dmarc_pass, c.dmarc_fail, c.spf_pass, c.dkim_pass, x.covering, x.connector
FROM facts x
JOIN path_counts c ON c.path IS NOT DISTINCT FROM x.path AND c.via = x.via
LEFT JOIN senders s ON s.path IS NOT DISTINCT FROM x.path AND s.via = x.via
LEFT JOIN sources i ON i.path IS NOT DISTINCT FROM x.path AND i.via = x.via
ORDER BY c.messages DESC, x.path, x.via
"""


def inventory(con: duckdb.DuckDBPyConnection) -> list[PathRecord]:
    """One record per (path, source): the connector for connector paths, else the IP."""
    con.execute(COUNTS_SQL)
    cur = con.execute(INVENTORY_SQL)
    out: list[PathRecord] = []
    for r in cur.fetchall():
        out.append(
            PathRecord(
                path=r[0],
                senders=list(r[2] or [])[:200],
                sources=list(r[3] or [])[:200],
                messages=int(r[4]),
                first_seen=r[5],
                last_seen=r[6],
                authentication={
                    "dmarc_pass": int(r[7]),
                    "dmarc_fail": int(r[8]),
                    "spf_pass": int(r[9]),
                    "dkim_pass": int(r[10]),
                },
                covering_exception=r[11],
                connector=r[12],
            )
        )
    con.execute("DROP TABLE path_counts")
    return out
