"""Per-message features: the facts every signal rule reads, computed in one SQL query.

The SQL stays inside a portable subset of DuckDB (interval RANGE frames with one unit,
``dense_rank``/``row_number``, ``date_trunc``; no ``epoch``, ``dayofweek``, ``EXCLUDE``,
``FILTER`` in windows) so the Spark engine can run the same text through sqlglot.

Baselines are learned from the bundle's own history and are *causal*: a message is compared
only with what came before it, so analysing a month and then one more day gives the same
answers as analysing the whole period at once.
"""

from __future__ import annotations

from dsguard.engines.iprange import ipv4_int_sql

# Days of tenant history needed before novelty ("new source", "new recipient") means anything.
WARMUP_DAYS = 3
# A source seen on this many earlier days for a sender is its established source.
ESTABLISHED_DAYS = 3
# Windows for cadence.
BURST_MINUTES = 10
FANOUT_MINUTES = 60
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

MESSAGE_COLUMNS = (
    "network_message_id, recipient, ts, source, sender_mail_from, sender_mail_from_domain, "
    "sender_from, sender_from_domain, sender_display_name, sender_ipv4, sender_ipv6, subject, "
    "direction, delivery_action, connectors, auth_spf, auth_dkim, auth_dmarc, auth_compauth, "
    "detection_flags, recipient_object_id"
)


def feature_sql() -> str:
    """One query: messages × tenant context → one feature row per message and recipient.

    Needs the temp tables of ``dsguard.tenant.register`` (``t_domains``, ``t_ranges``,
    ``t_exceptions``, ``t_connectors``) besides the evidence tables.
    """
    return f"""
WITH base AS (
    SELECT {MESSAGE_COLUMNS},
        lower(coalesce(sender_from, sender_mail_from)) AS sender,
        coalesce(sender_mail_from_domain IN (SELECT domain FROM t_domains), false)
            AS p1_internal,
        coalesce(sender_from_domain IN (SELECT domain FROM t_domains), false) AS p2_internal,
        CAST(date_trunc('day', ts) AS DATE) AS day,
        hour(ts) AS hour_of_day
    FROM messages
),
pathed AS (
    SELECT b.*,
        (p1_internal OR p2_internal) AS internal_looking,
        CASE
            WHEN direction IN ('Intra-org', 'Outbound') THEN 'authenticated'
            WHEN direction = 'Inbound' AND connectors IS NOT NULL THEN
                CASE WHEN c.connector_type = 'OnPremises' THEN 'onprem_connector'
                     ELSE 'partner_connector' END
            WHEN direction = 'Inbound' AND (p1_internal OR p2_internal) THEN 'direct_send'
            WHEN direction = 'Inbound' THEN 'anonymous_external'
            ELSE 'unknown'
        END AS path,
        c.name AS connector_name
    FROM base b LEFT JOIN t_connectors c ON lower(b.connectors) = lower(c.name)
),
first_day AS (SELECT min(day) AS d0 FROM pathed),
ips AS (
    SELECT ip, {ipv4_int_sql("ip")} AS ip_int
    FROM (SELECT DISTINCT sender_ipv4 AS ip FROM pathed WHERE sender_ipv4 IS NOT NULL)
),
ip_facts AS (
    SELECT i.ip,
        max(CASE WHEN r.kind = 'office' THEN 1 ELSE 0 END) = 1 AS ip_office,
        max(CASE WHEN r.kind = 'connector' THEN 1 ELSE 0 END) = 1 AS ip_connector_range,
        list(DISTINCT r.label) FILTER (WHERE r.kind = 'spf') AS spf_domains,
        list(DISTINCT r.label) FILTER (WHERE r.kind = 'exception') AS exception_ids
    FROM ips i LEFT JOIN t_ranges r ON i.ip_int BETWEEN r.start_ip AND r.end_ip
    GROUP BY i.ip
),
senders AS (
    SELECT sender,
        sum(CASE WHEN path = 'authenticated' THEN 1 ELSE 0 END) AS auth_sent,
        count(*) AS total_sent
    FROM pathed WHERE sender IS NOT NULL GROUP BY sender
),
recipients AS (
    SELECT DISTINCT recipient AS address FROM pathed
    WHERE direction IN ('Inbound', 'Intra-org') AND delivery_action IS DISTINCT FROM 'Blocked'
),
signers AS (
    SELECT user_principal_name AS upn, count(*) AS signins FROM signins
    WHERE coalesce(error_code, 0) = 0 AND user_principal_name IS NOT NULL
    GROUP BY user_principal_name
),
identity AS (
    SELECT s.sender, s.auth_sent, s.total_sent,
        coalesce(g.signins, 0) AS signins_total,
        r.address IS NOT NULL AS receives_mail,
        EXISTS (SELECT 1 FROM t_exceptions e WHERE e.sender = s.sender) AS registered_sender
    FROM senders s
    LEFT JOIN signers g ON g.upn = s.sender
    LEFT JOIN recipients r ON r.address = s.sender
),
history AS (
    SELECT p.*,
        dense_rank() OVER (PARTITION BY sender, sender_ipv4 ORDER BY day) - 1
            AS sender_ip_prior_days,
        dense_rank() OVER (PARTITION BY sender_ipv4 ORDER BY day) - 1 AS tenant_ip_prior_days,
        dense_rank() OVER (PARTITION BY sender ORDER BY day) - 1 AS sender_prior_days,
        count(DISTINCT sender_ipv4) OVER (
            PARTITION BY sender, path = 'authenticated' ORDER BY ts
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sender_sources_so_far,
        row_number() OVER (PARTITION BY sender, recipient ORDER BY ts, network_message_id) - 1
            AS pair_prior_msgs,
        row_number() OVER (PARTITION BY sender ORDER BY ts, network_message_id, recipient) - 1
            AS sender_prior_msgs,
        row_number() OVER (
            PARTITION BY sender, hour_of_day ORDER BY ts, network_message_id, recipient) - 1
            AS sender_prior_in_hour,
        count(*) OVER (
            PARTITION BY sender_ipv4 ORDER BY ts
            RANGE BETWEEN INTERVAL {BURST_MINUTES} MINUTE PRECEDING AND CURRENT ROW)
            AS source_burst,
        count(DISTINCT recipient) OVER (
            PARTITION BY sender_ipv4 ORDER BY ts
            RANGE BETWEEN INTERVAL {FANOUT_MINUTES} MINUTE PRECEDING AND CURRENT ROW)
            AS source_fanout,
        count(DISTINCT recipient) OVER (
            PARTITION BY sender, path = 'authenticated' ORDER BY ts
            RANGE BETWEEN INTERVAL {FANOUT_MINUTES} MINUTE PRECEDING AND CURRENT ROW)
            AS sender_fanout
    FROM pathed p
    WHERE internal_looking
),
signin_near AS (
    SELECT h.network_message_id, h.recipient,
        max(CASE WHEN s.ts BETWEEN h.ts - INTERVAL 2 HOUR AND h.ts + INTERVAL 2 HOUR
                 THEN 1 ELSE 0 END) = 1 AS signin_near,
        max(CASE WHEN s.ip_address = h.sender_ipv4
                      AND s.ts BETWEEN h.ts - INTERVAL 12 HOUR AND h.ts + INTERVAL 12 HOUR
                 THEN 1 ELSE 0 END) = 1 AS signin_same_ip,
        list(DISTINCT s.country) FILTER (WHERE s.country IS NOT NULL) AS signin_countries
    FROM history h JOIN signins s
        ON s.user_principal_name = h.sender AND coalesce(s.error_code, 0) = 0
        AND s.ts BETWEEN h.ts - INTERVAL 7 DAY AND h.ts + INTERVAL 1 DAY
    WHERE h.path <> 'authenticated'
    GROUP BY h.network_message_id, h.recipient
)
SELECT h.network_message_id, h.recipient, h.ts, h.day, h.source, h.sender,
    h.sender_mail_from, h.sender_mail_from_domain, h.sender_from, h.sender_from_domain,
    h.sender_display_name, h.sender_ipv4, h.subject, h.direction, h.delivery_action,
    h.connectors, h.connector_name, h.path, h.internal_looking, h.p1_internal, h.p2_internal,
    h.auth_spf, h.auth_dkim, h.auth_dmarc, h.auth_compauth, h.detection_flags,
    (h.recipient = lower(h.sender_from) OR h.recipient = lower(h.sender_mail_from))
        AS self_send,
    (h.sender_mail_from_domain IS NOT NULL AND h.sender_from_domain IS NOT NULL
        AND h.sender_mail_from_domain <> h.sender_from_domain) AS p1_p2_mismatch,
    CASE
        WHEN NOT (h.p2_internal OR (h.sender_from_domain IS NULL AND h.p1_internal))
            THEN 'external'
        WHEN i.signins_total > 0 OR i.auth_sent > 0 THEN 'person'
        WHEN i.registered_sender OR i.receives_mail THEN 'service'
        ELSE 'nobody'
    END AS identity_class,
    coalesce(i.auth_sent, 0) AS sender_auth_sent,
    coalesce(i.signins_total, 0) AS sender_signins,
    coalesce(i.receives_mail, false) AS sender_receives_mail,
    coalesce(i.registered_sender, false) AS registered_sender,
    coalesce(sn.signin_near, false) AS signin_near,
    coalesce(sn.signin_same_ip, false) AS signin_same_ip,
    sn.signin_countries,
    coalesce(f.ip_office, false) AS ip_office,
    coalesce(f.ip_connector_range, false) AS ip_connector_range,
    coalesce(f.spf_domains, []) AS spf_domains,
    list_contains(coalesce(f.spf_domains, []), h.sender_mail_from_domain) AS ip_in_p1_spf,
    coalesce(f.exception_ids, []) AS exception_source_ids,
    coalesce(len(f.exception_ids), 0) > 0 AS on_exception_source,
    h.sender_ip_prior_days, h.tenant_ip_prior_days, h.pair_prior_msgs, h.sender_prior_msgs,
    h.sender_prior_days, h.sender_sources_so_far,
    h.sender_prior_in_hour, h.source_burst, h.source_fanout, h.sender_fanout,
    datediff('day', fd.d0, h.day) >= {WARMUP_DAYS} AS baseline_mature,
    regexp_matches(lower(coalesce(h.subject, '')), '{LURE_SUBJECT}') AS lure_subject,
    list_contains(coalesce(h.detection_flags, []), 'Spoof intra-org') AS ms_spoof_intra_org
FROM history h
CROSS JOIN first_day fd
LEFT JOIN identity i ON i.sender = h.sender
LEFT JOIN ip_facts f ON f.ip = h.sender_ipv4
LEFT JOIN signin_near sn
    ON sn.network_message_id = h.network_message_id AND sn.recipient = h.recipient
"""


def coverage_sql(features: str = "features") -> str:
    """Which registered exception covers each feature row (sender and source both match).

    Needs table ``features``. An exception's sender pattern is an address, ``*@domain`` or
    ``*``; an exception without sources covers its senders from anywhere.
    """
    return f"""
SELECT f.network_message_id, f.recipient,
    list(DISTINCT e.id) AS covering_ids,
    max(CASE WHEN e.expires IS NULL OR e.expires >= f.day THEN 1 ELSE 0 END) = 1
        AS covered_in_date,
    list(DISTINCT e.id) FILTER (WHERE e.expires < f.day) AS covering_expired_ids
FROM {features} f JOIN t_exceptions e
    ON (e.sender = f.sender OR e.sender = '*'
        OR (e.sender LIKE '*@%' AND split_part(f.sender, '@', 2) = substr(e.sender, 3)))
    AND (NOT e.has_sources OR list_contains(f.exception_source_ids, e.id))
GROUP BY f.network_message_id, f.recipient
"""
