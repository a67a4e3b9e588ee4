"""The inventory of mail paths that carried internal-looking mail (``paths.json``): which
senders use which path from where, how much, since when, how authenticated, under which
exception."""

from __future__ import annotations

import duckdb

from dsguard.results import PathRecord


def inventory(con: duckdb.DuckDBPyConnection) -> list[PathRecord]:
    """One record per (path, source): the connector for connector paths, else the IP."""
    cur = con.execute(
        """SELECT path,
                  coalesce(connector_name, connectors, sender_ipv4, 'unknown') AS via,
                  list(DISTINCT sender ORDER BY sender) FILTER (WHERE sender IS NOT NULL)
                      AS senders,
                  list(DISTINCT sender_ipv4 ORDER BY sender_ipv4)
                      FILTER (WHERE sender_ipv4 IS NOT NULL) AS sources,
                  count(DISTINCT network_message_id) AS messages,
                  min(ts) AS first_seen, max(ts) AS last_seen,
                  count(DISTINCT network_message_id) FILTER (WHERE auth_dmarc = 'pass')
                      AS dmarc_pass,
                  count(DISTINCT network_message_id) FILTER (WHERE auth_dmarc = 'fail')
                      AS dmarc_fail,
                  count(DISTINCT network_message_id) FILTER (WHERE auth_spf = 'pass')
                      AS spf_pass,
                  count(DISTINCT network_message_id) FILTER (WHERE auth_dkim = 'pass')
                      AS dkim_pass,
                  any_value(covering_ids[1]) FILTER (WHERE covered) AS covering,
                  any_value(connector_name) AS connector
           FROM features
           GROUP BY path, via
           ORDER BY messages DESC, path, via"""
    )
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
    return out
