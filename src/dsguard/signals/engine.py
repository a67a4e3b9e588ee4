"""Build the ``features`` table: path classification plus every fact the rules read.

Reads only the evidence store (and the tenant context derived from it); writes derived
tables that the scoring stage, governance and reports read in turn.
"""

from __future__ import annotations

import duckdb

from dsguard.signals.features import (
    UNUSUAL_HOUR_MIN_HISTORY,
    UNUSUAL_HOUR_SHARE,
    coverage_sql,
    feature_sql,
)
from dsguard.tenant import Tenant, register

# Header facts read from raw messages (``raw_messages.evidence``), keyed by the Network
# Message ID. Absent raw messages leave these NULL, and header rules simply do not fire.
HEADER_FEATURES_SQL = """
SELECT network_message_id,
    bool_or(coalesce(TRY_CAST(json_extract(evidence, '$.received.loopback_seen') AS BOOLEAN),
                     false)) AS hdr_loopback,
    any_value(coalesce(json_extract_string(evidence, '$.received.source_helo'),
                       json_extract_string(evidence, '$.received.source_rdns')))
        AS hdr_received_from,
    any_value(upper(json_extract_string(evidence, '$.antispam.cat'))) AS hdr_cat,
    any_value(json_extract_string(evidence, '$.antispam.helo')) AS hdr_helo,
    any_value(json_extract_string(evidence, '$.mailer')) AS hdr_mailer
FROM raw_messages WHERE network_message_id IS NOT NULL
GROUP BY network_message_id
"""
# A HELO that is not a fully qualified host name: a bare word, an address literal, localhost.
ODD_HELO = r"^(\[?[0-9.:a-f]+\]?|localhost(\.localdomain)?|[^.]+)$"
SCRIPT_MAILER = (
    r"(powershell|python|phpmailer|swiftmailer|sendemail|smtplib|curl|go-mail|nodemailer|\.net)"
)


def build_features(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    """Create ``features`` (one row per internal-looking message and recipient)."""
    register(con, tenant)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _features AS {feature_sql()}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _coverage AS {coverage_sql('_features')}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _headers AS {HEADER_FEATURES_SQL}")
    con.execute(
        f"""CREATE OR REPLACE TABLE features AS
        SELECT f.*,
            c.covering_ids IS NOT NULL AS covered,
            coalesce(c.covered_in_date, false) AS covered_in_date,
            coalesce(len(c.covering_expired_ids) > 0, false) AS covered_expired,
            coalesce(c.covering_ids, []) AS covering_ids,
            coalesce(c.covering_expired_ids, []) AS covering_expired_ids,
            (f.sender_prior_msgs >= {UNUSUAL_HOUR_MIN_HISTORY}
             AND f.sender_prior_in_hour < {UNUSUAL_HOUR_SHARE} * f.sender_prior_msgs)
                AS unusual_hour,
            h.hdr_loopback, h.hdr_received_from, h.hdr_cat, h.hdr_mailer, h.hdr_helo,
            regexp_matches(lower(h.hdr_helo), '{ODD_HELO}') AS hdr_odd_helo,
            regexp_matches(lower(coalesce(h.hdr_mailer, '')), '{SCRIPT_MAILER}')
                AS hdr_script_mailer
        FROM _features f
        LEFT JOIN _coverage c
            ON c.network_message_id = f.network_message_id AND c.recipient = f.recipient
        LEFT JOIN _headers h ON h.network_message_id = f.network_message_id"""
    )
    for t in ("_features", "_coverage", "_headers"):
        con.execute(f"DROP TABLE {t}")


def feature_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("DESCRIBE features").fetchall()}
