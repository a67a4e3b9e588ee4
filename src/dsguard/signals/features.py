"""Per-message features: the facts every signal rule reads, as a plan of named SQL steps.

The SQL stays inside a portable subset of DuckDB (interval RANGE frames with one unit,
``row_number``, ``date_trunc``, joins instead of ``IN``/``EXISTS`` in select lists; no
``epoch``, ``dayofweek``, ``EXCLUDE``, ``FILTER`` in windows, ordered aggregates), so the Spark
engine runs the same text through sqlglot (``dsguard.engines.spark``).

Baselines are *causal*: a message is compared only with what came before it. They are kept as
compact state rather than recomputed with windows over the whole history:

* novelty counts distinct earlier **days** per sender/source (``bl_days``: one row per sender,
  source and day);
* "how many earlier messages" is a total from earlier runs (``bl_sender_hours``, ``bl_pairs``)
  plus a rank inside the new batch;
* bursts and fan-out look back at most ``FANOUT_MINUTES``, so only the last hour of earlier
  mail (``f_tail``) is read again.

Windows run only where a scored message needs them: per-row history facts are computed for the
*scored population* (internal-looking mail that did not come from an authenticated mailbox),
while every internal-looking message feeds the baselines. Authenticated rows therefore carry
NULL history and identity facts; no rule reads them there.

Inputs every engine provides: ``f_batch`` (the new message rows, or all of them), ``f_tail``
(earlier internal-looking rows of the last ``FANOUT_MINUTES``), ``f_headers`` (header facts per
message id), the state tables ``bl_*`` (empty on a first run), ``bl_first_day``, ``signins``, and
the tenant tables of ``dsguard.tenant.register``.
"""

from __future__ import annotations

from dsguard.engines.iprange import ip_keys_sql
from dsguard.engines.plan import Step

# Days of tenant history needed before novelty ("new source", "new recipient") means anything.
WARMUP_DAYS = 3
# A source seen on this many earlier days for a sender is its established source.
ESTABLISHED_DAYS = 3
# Windows for cadence.
BURST_MINUTES = 10
FANOUT_MINUTES = 60  # the longest look-back of any window (``day_chunks``)
assert BURST_MINUTES <= FANOUT_MINUTES
# The sender's share of messages in this hour of day below which the hour is unusual,
# once the sender has at least UNUSUAL_HOUR_MIN_HISTORY earlier messages.
UNUSUAL_HOUR_SHARE = 0.02
UNUSUAL_HOUR_MIN_HISTORY = 30
# Lure vocabulary from published Direct Send campaigns (detection-signals.md §3): weak signal.
LURE_SUBJECT = (
    r"(fax|voice ?mail|\bvm\b|missed call|caller left|voice message|payroll|salary|"
    r"direct deposit|w-?9|invoice|remittance|payment|wire|bank|password|expir|verify|"
    r"document (shared|received)|shared (a )?(file|document)|docusign|e-?sign|"
    r"action required|urgent|benefits|bonus|tax|hr policy|handbook|quarantine|mailbox)"
)

# The purported sender: the From header, else the envelope.
SENDER = "lower(coalesce({m}.sender_from, {m}.sender_mail_from))"
# The source a message came from: its IPv4 address, else its IPv6 address (Exchange Online
# reports a sender reached over IPv6 in ``SenderIPv6`` only).
SOURCE_IP = "coalesce({m}sender_ipv4, {m}sender_ipv6)"
# Submitted by an authenticated mailbox (the ``authenticated`` path).
AUTHENTICATED = "coalesce({m}.direction IN ('Intra-org', 'Outbound'), false)"
# The order of rows inside a sender or source: time, then the key.
ROW_ORDER = "ts, network_message_id, recipient"

# State tables: name -> columns (DuckDB types). Empty on a first run.
STATE_TABLES: dict[str, str] = {
    "bl_days": "sk VARCHAR, ik VARCHAR, day DATE",
    "bl_sender_hours": "sk VARCHAR, hour_of_day BIGINT, n BIGINT",
    "bl_pairs": "sk VARCHAR, recipient VARCHAR, n BIGINT",
    "bl_sources": "sk VARCHAR, ik VARCHAR",
    "bl_identity": "sender VARCHAR, auth_sent BIGINT, total_sent BIGINT",
    "bl_receivers": "address VARCHAR",
    "bl_first_day": "d0 DATE",
}
TAIL_COLUMNS = "network_message_id VARCHAR, recipient VARCHAR, ts TIMESTAMPTZ, sk VARCHAR, " \
    "ik VARCHAR, auth BOOLEAN"
HEADER_INPUT_COLUMNS = (
    "network_message_id VARCHAR, hdr_loopback BOOLEAN, hdr_received_from VARCHAR, "
    "hdr_cat VARCHAR, hdr_helo VARCHAR, hdr_mailer VARCHAR"
)

# Per-row history facts of the scored population, in the order of the features table.
HISTORY_COLUMNS = (
    "sender_ip_prior_days",
    "tenant_ip_prior_days",
    "pair_prior_msgs",
    "sender_prior_msgs",
    "sender_prior_days",
    "sender_sources_so_far",
    "sender_prior_in_hour",
    "source_burst",
    "source_fanout",
    "sender_fanout",
)


def _s(m: str) -> str:
    return SENDER.format(m=m)


def _auth(m: str) -> str:
    return AUTHENTICATED.format(m=m)


def source_ip(m: str = "") -> str:
    """The message's source address (NULL when none is known), of relation ``m``."""
    return SOURCE_IP.format(m=f"{m}." if m else "")


def source_key(m: str) -> str:
    """``source_ip`` as a grouping key: '' when no address is known."""
    return f"coalesce({source_ip(m)}, '')"


def day_chunks(rows: str, key: str) -> str:
    """``rows`` (``network_message_id, recipient, ts, {key}, scored``) cut into day chunks
    (``chunk``) for windows partitioned by ``key`` that look back at most FANOUT_MINUTES.

    Partitioned by the key alone, one busy source's rows are one partition, which DuckDB
    windows on one thread: one source sends 1.2M of the 10M benchmark rows. Partitioned by
    key and day instead, each day's chunk also holds the last FANOUT_MINUTES of the day
    before as context rows, never scored, so every scored row's frame lies inside its chunk
    and the counts are the same (``f_source_windows`` at 10M: 2.8 -> 1.9 s,
    benchmarks/HISTORY.md). Days are UTC days, as everywhere in the plan: both engines run in
    UTC, so a day's start plus one day is the next day's start.
    """
    cols = f"network_message_id, recipient, ts, {key}"
    return f"""
    SELECT {cols}, scored, date_trunc('day', ts) AS chunk FROM {rows}
    UNION ALL
    SELECT {cols}, false AS scored, date_trunc('day', ts) + INTERVAL 1 DAY AS chunk
    FROM {rows}
    WHERE ts >= date_trunc('day', ts) + INTERVAL 1 DAY - INTERVAL {FANOUT_MINUTES} MINUTE"""


def identity_sql(rows: str) -> str:
    """Who each distinct sender of ``rows`` (a relation with ``sk``) is, from all history.

    Reads the state ``bl_identity``/``bl_receivers`` plus this batch's ``f_ident_batch`` and
    ``f_rcpt_batch``; sign-ins and registrations are read whole (they are small).
    """
    return f"""
WITH who AS (SELECT DISTINCT sk AS sender FROM {rows} WHERE sk <> ''),
sent AS (
    SELECT x.sender, sum(x.auth_sent) AS auth_sent
    FROM (SELECT sender, auth_sent FROM bl_identity
          UNION ALL SELECT sender, auth_sent FROM f_ident_batch) x
    JOIN who w ON w.sender = x.sender
    GROUP BY x.sender),
signers AS (
    SELECT s.user_principal_name AS upn, count(*) AS signins
    FROM signins s JOIN who w ON w.sender = s.user_principal_name
    WHERE coalesce(s.error_code, 0) = 0
    GROUP BY s.user_principal_name),
rcv AS (
    SELECT DISTINCT x.address
    FROM (SELECT address FROM bl_receivers UNION ALL SELECT address FROM f_rcpt_batch) x
    JOIN who w ON w.sender = x.address),
reg AS (SELECT DISTINCT sender FROM t_exceptions)
SELECT w.sender,
    CAST(coalesce(s.auth_sent, 0) AS BIGINT) AS auth_sent,
    CAST(coalesce(g.signins, 0) AS BIGINT) AS signins_total,
    r.address IS NOT NULL AS receives_mail,
    e.sender IS NOT NULL AS registered_sender
FROM who w
LEFT JOIN sent s ON s.sender = w.sender
LEFT JOIN signers g ON g.upn = w.sender
LEFT JOIN rcv r ON r.address = w.sender
LEFT JOIN reg e ON e.sender = w.sender
"""


def address_keys_sql(addresses: str) -> str:
    """``ip`` and ``ipk`` for each ``ip`` of ``addresses``: one key per address whatever its
    spelling, because the mail and sign-in logs are written by different services and readers
    keep each as written. ``2001:DB8::1`` and ``2001:0db8:0:0::1`` are one address, and an IPv4
    address is its IPv4-mapped IPv6 address (``192.0.2.1`` is ``::ffff:192.0.2.1``), as KQL's
    ``ipv6_is_match`` compares them in the hunting queries."""
    return f"""SELECT ip, CASE WHEN ip_int IS NOT NULL
        THEN concat('00000000000000000000ffff', lpad(lower(hex(ip_int)), 8, '0'))
        ELSE ip6 END AS ipk
FROM ({ip_keys_sql(addresses)}) keyed"""


def signin_sql(rows: str) -> str:
    """Sign-in facts of the purported sender around each row of ``rows`` (``sk``, ``ik``,
    ``ts``): any successful sign-in within two hours, one from the message's own source
    address within twelve, and the countries of the sign-ins in the week before."""
    mail_ips = address_keys_sql(f"(SELECT DISTINCT ik AS ip FROM {rows} WHERE ik <> '') a")
    signin_ips = address_keys_sql(
        "(SELECT DISTINCT ip_address AS ip FROM signins WHERE ip_address IS NOT NULL) a"
    )
    return f"""
SELECT h.network_message_id, h.recipient,
    max(CASE WHEN s.ts BETWEEN h.ts - INTERVAL 2 HOUR AND h.ts + INTERVAL 2 HOUR
             THEN 1 ELSE 0 END) = 1 AS signin_near,
    max(CASE WHEN hk.ipk = sk.ipk
                  AND s.ts BETWEEN h.ts - INTERVAL 12 HOUR AND h.ts + INTERVAL 12 HOUR
             THEN 1 ELSE 0 END) = 1 AS signin_same_ip,
    CASE WHEN count(s.country) > 0 THEN
        list_sort(list(DISTINCT s.country) FILTER (WHERE s.country IS NOT NULL)) END
        AS signin_countries
FROM {rows} h JOIN signins s
    ON s.user_principal_name = h.sk AND h.sk <> '' AND coalesce(s.error_code, 0) = 0
    AND s.ts BETWEEN h.ts - INTERVAL 7 DAY AND h.ts + INTERVAL 1 DAY
LEFT JOIN ({mail_ips}) hk ON hk.ip = h.ik
LEFT JOIN ({signin_ips}) sk ON sk.ip = s.ip_address
GROUP BY h.network_message_id, h.recipient
"""


def identity_columns(
    scored: str, p1_internal: str, p2_internal: str, from_domain: str, i: str
) -> dict[str, str]:
    """The identity facts of a row from its identity row ``i`` (``identity_sql``); NULL
    outside the scored population. Shared by the plan and the refresh of earlier rows."""
    return {
        "identity_class": f"""CASE
        WHEN NOT ({scored}) THEN NULL
        WHEN NOT ({p2_internal} OR ({from_domain} IS NULL AND {p1_internal})) THEN 'external'
        WHEN {i}.signins_total > 0 OR {i}.auth_sent > 0 THEN 'person'
        WHEN {i}.registered_sender OR {i}.receives_mail THEN 'service'
        ELSE 'nobody'
    END""",
        "sender_auth_sent": f"CASE WHEN {scored} THEN coalesce({i}.auth_sent, 0) END",
        "sender_signins": f"CASE WHEN {scored} THEN coalesce({i}.signins_total, 0) END",
        "sender_receives_mail": f"CASE WHEN {scored} THEN coalesce({i}.receives_mail, false) END",
        "registered_sender": f"CASE WHEN {scored} THEN coalesce({i}.registered_sender, false) END",
    }


def feature_plan(header_columns: str) -> list[Step]:
    """The steps from the inputs to ``f_features`` (one row per internal-looking message and
    recipient, in the column order of the ``features`` table).

    ``header_columns`` is the select list of header facts over ``hd`` (``f_headers``).
    """
    return [
        Step("f_domains", "SELECT DISTINCT domain FROM t_domains WHERE domain IS NOT NULL"),
        # The internal-looking rows of the batch, narrow: what every baseline is made of.
        Step(
            "f_il",
            f"""
SELECT m.network_message_id, m.recipient, m.ts,
    CAST(date_trunc('day', m.ts) AS DATE) AS day,
    CAST(hour(m.ts) AS BIGINT) AS hour_of_day,
    coalesce({_s("m")}, '') AS sk,
    {source_key("m")} AS ik,
    {_auth("m")} AS auth
FROM f_batch m
LEFT JOIN f_domains d1 ON d1.domain = m.sender_mail_from_domain
LEFT JOIN f_domains d2 ON d2.domain = m.sender_from_domain
WHERE d1.domain IS NOT NULL OR d2.domain IS NOT NULL""",
        ),
        # The scored population of the batch.
        Step("f_sc", "SELECT * FROM f_il WHERE NOT auth"),
        Step(
            "f_first_day",
            """
SELECT min(d0) AS d0 FROM (
    SELECT d0 FROM bl_first_day
    UNION ALL SELECT CAST(date_trunc('day', min(ts)) AS DATE) AS d0 FROM f_batch) x""",
        ),
        # Identity facts of this batch, over every message (not only internal-looking).
        Step(
            "f_ident_batch",
            f"""
SELECT {_s("m")} AS sender,
    CAST(sum(CASE WHEN m.direction IN ('Intra-org', 'Outbound') THEN 1 ELSE 0 END) AS BIGINT)
        AS auth_sent,
    count(*) AS total_sent
FROM f_batch m WHERE {_s("m")} IS NOT NULL
GROUP BY {_s("m")}""",
        ),
        Step(
            "f_rcpt_batch",
            """
SELECT DISTINCT recipient AS address FROM f_batch
WHERE direction IN ('Inbound', 'Intra-org') AND coalesce(delivery_action, '') <> 'Blocked'""",
        ),
        # Novelty: distinct earlier days per sender and source, per source, per sender. A
        # day's rank counts only its own sender's or source's days, so only the days of the
        # scored rows' senders and sources are ranked: ``bl_days`` holds every day of the
        # history, and ranking all of it made this step grow with the history (HISTORY.md).
        Step("f_days_new", "SELECT DISTINCT sk, ik, day FROM f_il"),
        Step(
            "f_prior_days",
            """
WITH k AS (SELECT DISTINCT sk, ik, day FROM f_sc),
d AS (SELECT sk, ik, day FROM bl_days UNION SELECT sk, ik, day FROM f_days_new),
ks AS (SELECT DISTINCT sk FROM k),
ki AS (SELECT DISTINCT ik FROM k),
kp AS (SELECT DISTINCT sk, ik FROM k),
sip AS (
    SELECT d.sk, d.ik, d.day, row_number() OVER (PARTITION BY d.sk, d.ik ORDER BY d.day) - 1 AS n
    FROM d JOIN kp ON kp.sk = d.sk AND kp.ik = d.ik),
ipd AS (
    SELECT ik, day, row_number() OVER (PARTITION BY ik ORDER BY day) - 1 AS n
    FROM (SELECT DISTINCT d.ik, d.day FROM d JOIN ki ON ki.ik = d.ik) x),
sd AS (
    SELECT sk, day, row_number() OVER (PARTITION BY sk ORDER BY day) - 1 AS n
    FROM (SELECT DISTINCT d.sk, d.day FROM d JOIN ks ON ks.sk = d.sk) x)
SELECT k.sk, k.ik, k.day, sip.n AS sender_ip_prior_days, ipd.n AS tenant_ip_prior_days,
    sd.n AS sender_prior_days
FROM k
JOIN sip ON sip.sk = k.sk AND sip.ik = k.ik AND sip.day = k.day
JOIN ipd ON ipd.ik = k.ik AND ipd.day = k.day
JOIN sd ON sd.sk = k.sk AND sd.day = k.day""",
        ),
        # Earlier messages of the sender (and in this hour of day): totals of earlier runs,
        # per-day sums of this batch, and a rank inside the row's own day.
        Step(
            "f_counts",
            f"""
WITH keys AS (SELECT DISTINCT sk, day FROM f_sc),
sdh AS (
    SELECT i.sk, i.day, i.hour_of_day, count(*) AS n
    FROM f_il i JOIN (SELECT DISTINCT sk FROM keys) s ON s.sk = i.sk
    GROUP BY i.sk, i.day, i.hour_of_day),
sd AS (SELECT sk, day, sum(n) AS n FROM sdh GROUP BY sk, day),
cum_d AS (
    SELECT sk, day, sum(n) OVER (PARTITION BY sk ORDER BY day
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n AS before
    FROM sd),
cum_h AS (
    SELECT sk, hour_of_day, day,
        sum(n) OVER (PARTITION BY sk, hour_of_day ORDER BY day
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n AS before
    FROM sdh),
st AS (
    SELECT b.sk, b.hour_of_day, sum(b.n) AS n
    FROM bl_sender_hours b JOIN (SELECT DISTINCT sk FROM keys) s ON s.sk = b.sk
    GROUP BY b.sk, b.hour_of_day),
st_all AS (SELECT sk, sum(n) AS n FROM st GROUP BY sk),
ranked AS (
    SELECT i.network_message_id, i.recipient, i.auth, i.sk, i.day, i.hour_of_day,
        row_number() OVER (PARTITION BY i.sk, i.day ORDER BY {ROW_ORDER}) - 1 AS r_day,
        row_number() OVER (PARTITION BY i.sk, i.day, i.hour_of_day ORDER BY {ROW_ORDER}) - 1
            AS r_hour
    FROM f_il i JOIN keys k ON k.sk = i.sk AND k.day = i.day)
SELECT r.network_message_id, r.recipient,
    CAST(coalesce(a.n, 0) + d.before + r.r_day AS BIGINT) AS sender_prior_msgs,
    CAST(coalesce(h2.n, 0) + h.before + r.r_hour AS BIGINT) AS sender_prior_in_hour
FROM ranked r
JOIN cum_d d ON d.sk = r.sk AND d.day = r.day
JOIN cum_h h ON h.sk = r.sk AND h.hour_of_day = r.hour_of_day AND h.day = r.day
LEFT JOIN st_all a ON a.sk = r.sk
LEFT JOIN st h2 ON h2.sk = r.sk AND h2.hour_of_day = r.hour_of_day
WHERE NOT r.auth""",
        ),
        # Earlier messages from this sender to this recipient.
        Step(
            "f_pairs",
            """
WITH keys AS (SELECT DISTINCT sk, recipient FROM f_sc),
st AS (
    SELECT b.sk, b.recipient, sum(b.n) AS n
    FROM bl_pairs b JOIN keys k ON k.sk = b.sk AND k.recipient = b.recipient
    GROUP BY b.sk, b.recipient),
ranked AS (
    SELECT i.network_message_id, i.recipient, i.sk, i.auth,
        row_number() OVER (PARTITION BY i.sk, i.recipient ORDER BY i.ts, i.network_message_id)
            - 1 AS r
    FROM f_il i JOIN keys k ON k.sk = i.sk AND k.recipient = i.recipient)
SELECT r.network_message_id, r.recipient, CAST(coalesce(st.n, 0) + r.r AS BIGINT)
    AS pair_prior_msgs
FROM ranked r LEFT JOIN st ON st.sk = r.sk AND st.recipient = r.recipient
WHERE NOT r.auth""",
        ),
        # Distinct sources the sender arrived from anonymously so far (this row included).
        Step(
            "f_sources",
            f"""
WITH firsts AS (
    SELECT s.network_message_id, s.recipient, s.sk, s.ts,
        CASE WHEN s.ik <> '' AND b.sk IS NULL
                  AND row_number() OVER (PARTITION BY s.sk, s.ik ORDER BY {ROW_ORDER}) = 1
             THEN 1 ELSE 0 END AS fresh
    FROM f_sc s LEFT JOIN bl_sources b ON b.sk = s.sk AND b.ik = s.ik),
known AS (SELECT sk, count(*) AS n FROM bl_sources GROUP BY sk)
SELECT f.network_message_id, f.recipient,
    CAST(coalesce(k.n, 0) + sum(f.fresh) OVER (
        PARTITION BY f.sk ORDER BY {ROW_ORDER}
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS sender_sources_so_far
FROM firsts f LEFT JOIN known k ON k.sk = f.sk""",
        ),
        # Bursts and fan-out per source: only the hours a scored row looks back into.
        Step(
            "f_source_windows",
            f"""
WITH buckets AS (
    SELECT DISTINCT ik, date_trunc('hour', ts) AS hb FROM f_sc
    UNION
    SELECT DISTINCT ik, date_trunc('hour', ts) - INTERVAL 1 HOUR AS hb FROM f_sc),
rws AS (
    SELECT i.network_message_id, i.recipient, i.ts, i.ik, NOT i.auth AS scored
    FROM f_il i JOIN buckets b ON b.ik = i.ik AND b.hb = date_trunc('hour', i.ts)
    UNION ALL
    SELECT t.network_message_id, t.recipient, t.ts, t.ik, false AS scored
    FROM f_tail t JOIN buckets b ON b.ik = t.ik AND b.hb = date_trunc('hour', t.ts)),
chunks AS ({day_chunks("rws", "ik")}),
w AS (
    SELECT network_message_id, recipient, scored,
        count(*) OVER (PARTITION BY ik, chunk ORDER BY ts RANGE BETWEEN
            INTERVAL {BURST_MINUTES} MINUTE PRECEDING AND CURRENT ROW) AS source_burst,
        count(DISTINCT recipient) OVER (PARTITION BY ik, chunk ORDER BY ts RANGE BETWEEN
            INTERVAL {FANOUT_MINUTES} MINUTE PRECEDING AND CURRENT ROW) AS source_fanout
    FROM chunks)
SELECT network_message_id, recipient, source_burst, source_fanout FROM w WHERE scored""",
        ),
        # Fan-out per sender across its anonymous sources.
        Step(
            "f_sender_fanout",
            f"""
WITH rws AS (
    SELECT network_message_id, recipient, ts, sk, true AS scored FROM f_sc
    UNION ALL
    SELECT network_message_id, recipient, ts, sk, false AS scored FROM f_tail WHERE NOT auth),
chunks AS ({day_chunks("rws", "sk")}),
w AS (
    SELECT network_message_id, recipient, scored,
        count(DISTINCT recipient) OVER (PARTITION BY sk, chunk ORDER BY ts RANGE BETWEEN
            INTERVAL {FANOUT_MINUTES} MINUTE PRECEDING AND CURRENT ROW) AS sender_fanout
    FROM chunks)
SELECT network_message_id, recipient, sender_fanout FROM w WHERE scored""",
        ),
        Step(
            "f_history",
            """
SELECT s.network_message_id, s.recipient,
    CAST(d.sender_ip_prior_days AS BIGINT) AS sender_ip_prior_days,
    CAST(d.tenant_ip_prior_days AS BIGINT) AS tenant_ip_prior_days,
    CAST(p.pair_prior_msgs AS BIGINT) AS pair_prior_msgs,
    CAST(c.sender_prior_msgs AS BIGINT) AS sender_prior_msgs,
    CAST(d.sender_prior_days AS BIGINT) AS sender_prior_days,
    CAST(so.sender_sources_so_far AS BIGINT) AS sender_sources_so_far,
    CAST(c.sender_prior_in_hour AS BIGINT) AS sender_prior_in_hour,
    CAST(w.source_burst AS BIGINT) AS source_burst,
    CAST(w.source_fanout AS BIGINT) AS source_fanout,
    CAST(sf.sender_fanout AS BIGINT) AS sender_fanout
FROM f_sc s
JOIN f_prior_days d ON d.sk = s.sk AND d.ik = s.ik AND d.day = s.day
JOIN f_counts c ON c.network_message_id = s.network_message_id AND c.recipient = s.recipient
JOIN f_pairs p ON p.network_message_id = s.network_message_id AND p.recipient = s.recipient
JOIN f_sources so
    ON so.network_message_id = s.network_message_id AND so.recipient = s.recipient
JOIN f_source_windows w
    ON w.network_message_id = s.network_message_id AND w.recipient = s.recipient
JOIN f_sender_fanout sf
    ON sf.network_message_id = s.network_message_id AND sf.recipient = s.recipient""",
        ),
        Step("f_identity", identity_sql("f_sc")),
        Step("f_signin", signin_sql("f_sc")),
        # What the tenant says about each source address.
        Step(
            "f_ipfacts",
            f"""
WITH ips AS ({ip_keys_sql("(SELECT DISTINCT ik AS ip FROM f_il WHERE ik <> '') x")}),
hits AS (
    SELECT i.ip, r.kind, r.label
    FROM ips i JOIN t_ranges r ON i.ip_int BETWEEN r.start_ip AND r.end_ip
    UNION ALL
    SELECT i.ip, r.kind, r.label
    FROM ips i JOIN t_ranges r ON i.ip6 BETWEEN r.start_ip6 AND r.end_ip6)
SELECT i.ip,
    max(CASE WHEN r.kind = 'office' THEN 1 ELSE 0 END) = 1 AS ip_office,
    max(CASE WHEN r.kind = 'connector' THEN 1 ELSE 0 END) = 1 AS ip_connector_range,
    list_sort(list(DISTINCT r.label) FILTER (WHERE r.kind = 'spf')) AS spf_domains,
    list_sort(list(DISTINCT r.label) FILTER (WHERE r.kind = 'exception')) AS exception_ids
FROM ips i LEFT JOIN hits r ON r.ip = i.ip
GROUP BY i.ip""",
        ),
        # Which registered exceptions cover each sender, source and day. An exception's
        # sender pattern is an address, ``*@domain`` or ``*``; one without sources covers its
        # senders from anywhere.
        Step(
            "f_coverage",
            """
WITH k AS (
    SELECT d.sk, d.ik, d.day, CASE WHEN d.sk = '' THEN NULL ELSE d.sk END AS sender,
        coalesce(f.exception_ids, []) AS exception_source_ids
    FROM f_days_new d LEFT JOIN f_ipfacts f ON f.ip = d.ik)
SELECT k.sk, k.ik, k.day,
    list_sort(list(DISTINCT e.id)) AS covering_ids,
    max(CASE WHEN e.expires IS NULL OR e.expires >= k.day THEN 1 ELSE 0 END) = 1
        AS covered_in_date,
    list_sort(list(DISTINCT e.id) FILTER (WHERE e.expires < k.day)) AS covering_expired_ids
FROM k JOIN t_exceptions e
    ON (e.sender = k.sender OR e.sender = '*'
        OR (e.sender LIKE '*@%' AND split_part(k.sender, '@', 2) = substr(e.sender, 3)))
    AND (NOT e.has_sources OR list_contains(k.exception_source_ids, e.id))
GROUP BY k.sk, k.ik, k.day""",
        ),
        Step("f_features", _final_sql(header_columns), materialise=False),
    ]


# Steps that hold facts of scored (anonymous) rows only: an authenticated row never matches
# them, so the DuckDB engine writes the authenticated rows of ``f_features`` from the same SQL
# with these read as empty, sparing five million hash probes that always miss.
SCORED_ONLY_STEPS: tuple[str, ...] = ("f_history", "f_identity", "f_signin")
FEATURE_PARTS: tuple[str, ...] = ("scored", "authenticated")


def final_sql(header_columns: str, part: str | None = None) -> str:
    """``f_features``, or the ``part`` of its rows that is scored or authenticated (the two
    parts are disjoint and together are every row)."""
    if part is None:
        return _final_sql(header_columns)
    authenticated = f"coalesce({_auth('m')}, false)"
    if part == "scored":
        return _final_sql(header_columns, f"NOT {authenticated}")
    if part == "authenticated":
        empty = {name: f"(SELECT * FROM {name} WHERE false)" for name in SCORED_ONLY_STEPS}
        return _final_sql(header_columns, authenticated, empty)
    raise ValueError(f"unknown part {part!r}; expected one of {FEATURE_PARTS}")


def _final_sql(
    header_columns: str, where: str = "true", relations: dict[str, str] | None = None
) -> str:
    rel = {name: name for name in SCORED_ONLY_STEPS} | (relations or {})
    sender = _s("m")
    scored = f"NOT {_auth('m')}"
    history = ",\n    ".join(f"h.{c}" for c in HISTORY_COLUMNS)
    identity = ",\n    ".join(
        f"{sql} AS {name}"
        for name, sql in identity_columns(
            scored, "d1.domain IS NOT NULL", "d2.domain IS NOT NULL", "m.sender_from_domain", "i"
        ).items()
    )
    return f"""
SELECT m.network_message_id, m.recipient, m.ts, CAST(date_trunc('day', m.ts) AS DATE) AS day,
    m.source, {sender} AS sender,
    m.sender_mail_from, m.sender_mail_from_domain, m.sender_from, m.sender_from_domain,
    m.sender_display_name, m.sender_ipv4, m.sender_ipv6, {source_ip("m")} AS source_ip,
    m.subject, m.direction,
    m.delivery_action,
    m.connectors, c.name AS connector_name,
    CASE
        WHEN m.direction IN ('Intra-org', 'Outbound') THEN 'authenticated'
        WHEN m.direction = 'Inbound' AND m.connectors IS NOT NULL THEN
            CASE WHEN c.connector_type = 'OnPremises' THEN 'onprem_connector'
                 ELSE 'partner_connector' END
        WHEN m.direction = 'Inbound' THEN 'direct_send'
        ELSE 'unknown'
    END AS path,
    true AS internal_looking,
    d1.domain IS NOT NULL AS p1_internal,
    d2.domain IS NOT NULL AS p2_internal,
    m.auth_spf, m.auth_dkim, m.auth_dmarc, m.auth_compauth, m.detection_flags,
    (m.recipient = lower(m.sender_from) OR m.recipient = lower(m.sender_mail_from))
        AS self_send,
    (m.sender_mail_from_domain IS NOT NULL AND m.sender_from_domain IS NOT NULL
        AND m.sender_mail_from_domain <> m.sender_from_domain) AS p1_p2_mismatch,
    {identity},
    coalesce(sn.signin_near, false) AS signin_near,
    coalesce(sn.signin_same_ip, false) AS signin_same_ip,
    sn.signin_countries,
    coalesce(f.ip_office, false) AS ip_office,
    coalesce(f.ip_connector_range, false) AS ip_connector_range,
    coalesce(f.spf_domains, []) AS spf_domains,
    list_contains(coalesce(f.spf_domains, []), m.sender_mail_from_domain) AS ip_in_p1_spf,
    coalesce(f.exception_ids, []) AS exception_source_ids,
    coalesce(array_length(f.exception_ids), 0) > 0 AS on_exception_source,
    {history},
    datediff('day', fd.d0, CAST(date_trunc('day', m.ts) AS DATE)) >= {WARMUP_DAYS}
        AS baseline_mature,
    regexp_matches(lower(coalesce(m.subject, '')), '{LURE_SUBJECT}') AS lure_subject,
    list_contains(coalesce(m.detection_flags, []), 'Spoof intra-org') AS ms_spoof_intra_org,
    cv.covering_ids IS NOT NULL AS covered,
    coalesce(cv.covered_in_date, false) AS covered_in_date,
    coalesce(array_length(cv.covering_expired_ids) > 0, false) AS covered_expired,
    coalesce(cv.covering_ids, []) AS covering_ids,
    coalesce(cv.covering_expired_ids, []) AS covering_expired_ids,
    (h.sender_prior_msgs >= {UNUSUAL_HOUR_MIN_HISTORY}
     AND h.sender_prior_in_hour < {UNUSUAL_HOUR_SHARE} * h.sender_prior_msgs) AS unusual_hour,
    {header_columns}
FROM f_batch m
LEFT JOIN f_domains d1 ON d1.domain = m.sender_mail_from_domain
LEFT JOIN f_domains d2 ON d2.domain = m.sender_from_domain
LEFT JOIN t_connectors c ON lower(m.connectors) = lower(c.name)
LEFT JOIN {rel["f_history"]} h
    ON h.network_message_id = m.network_message_id AND h.recipient = m.recipient
LEFT JOIN {rel["f_identity"]} i ON i.sender = {sender}
LEFT JOIN {rel["f_signin"]} sn
    ON sn.network_message_id = m.network_message_id AND sn.recipient = m.recipient
LEFT JOIN f_ipfacts f ON f.ip = {source_ip("m")}
LEFT JOIN f_coverage cv
    ON cv.sk = coalesce({sender}, '') AND cv.ik = {source_key("m")}
    AND cv.day = CAST(date_trunc('day', m.ts) AS DATE)
LEFT JOIN f_headers hd ON hd.network_message_id = m.network_message_id
CROSS JOIN f_first_day fd
WHERE (d1.domain IS NOT NULL OR d2.domain IS NOT NULL) AND ({where})"""
