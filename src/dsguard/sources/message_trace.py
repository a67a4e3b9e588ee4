"""``message_trace*.csv``: Exchange Online message trace, in both column families.

* EAC downloadable reports / ``Start-HistoricalSearch`` (enhanced summary and extended):
  ``origin_timestamp`` (extended: ``date_time_utc``), ``sender_address``,
  ``Recipient_status`` (``user@x.com##Receive, Deliver``, several recipients joined by ``;``),
  ``message_subject``, ``network_message_id``, ``original_client_ip``, ``directionality``,
  ``connector_id``, and extended columns such as ``recipient_address``, ``client_ip``,
  ``return_path``. The extended report has one row per event (RECEIVE, AGENTINFO,
  DELIVER...); the first row for a message and recipient is kept (RECEIVE, which carries the
  sending IP) and the later ones count as duplicates.
* ``Get-MessageTraceV2 | Export-Csv``: ``Received``, ``SenderAddress``, ``RecipientAddress``,
  ``Subject``, ``Status``, ``FromIP``, ``ToIP``, ``Size``, ``MessageId``, ``MessageTraceId``;
  Windows PowerShell may write a ``#TYPE ...`` line first.

Files may be UTF-8 (with or without BOM) or UTF-16 LE/BE (Excel, Windows PowerShell), and gzip.
A row naming several recipients becomes one row per recipient, so ``read`` counts recipients.
Message trace knows less than EmailEvents (no authentication verdicts, often no connector),
so an EmailEvents row for the same message and recipient replaces it (``supersedes``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dsguard.sources._tabular import RawLayout, TabularReader, case_map, render

# UNVERIFIED: Get-MessageTraceV2 output has no network_message_id column. Its MessageTraceId
# is believed to equal the Network Message ID (X-MS-Exchange-Organization-Network-Message-Id);
# confirm in a lab tenant before trusting joins of V2 rows with EmailEvents.
V2_NETWORK_MESSAGE_ID = "MessageTraceId"

EAC_COLUMNS: tuple[str, ...] = (
    "origin_timestamp", "date_time_utc", "sender_address", "Recipient_status",
    "message_subject", "total_bytes", "message_id", "network_message_id",
    "original_client_ip", "original_server_ip", "directionality", "connector_id",
    "delivery_priority", "client_ip", "client_hostname", "server_ip", "server_hostname",
    "source_context", "source", "event_id", "internal_message_id", "recipient_address",
    "recipient_count", "related_recipient_address", "reference", "return_path",
    "message_info", "tenant_id", "custom_data", "transport_traffic_type", "log_id",
    "schema_version",
)  # fmt: skip
V2_COLUMNS: tuple[str, ...] = (
    "Received", "SenderAddress", "RecipientAddress", "Subject", "Status", "FromIP", "ToIP",
    "Size", "MessageId", "MessageTraceId", "Organization", "StartDate", "EndDate", "Index",
    # added by Export-Csv from a remote PowerShell session
    "PSComputerName", "RunspaceId", "PSShowComputerName",
)  # fmt: skip
COLUMNS: tuple[str, ...] = EAC_COLUMNS + V2_COLUMNS

# Each required column, by the alternatives the families use (in the order they are used).
REQUIRED: dict[str, tuple[str, ...]] = {
    "origin_timestamp (or date_time_utc, Received)": (
        "origin_timestamp", "date_time_utc", "Received"),
    "network_message_id (or MessageTraceId)": ("network_message_id", V2_NETWORK_MESSAGE_ID),
    "Recipient_status (or recipient_address, RecipientAddress)": (
        "recipient_address", "RecipientAddress", "Recipient_status"),
}  # fmt: skip

# ``directionality`` onto the model's vocabulary. The EAC writes Incoming/Originating (the
# documentation also shows 1/2). "Originating" means sent from inside the organisation, which
# covers intra-org mail too; without the accepted domains here it is recorded as Outbound.
DIRECTIONALITY: dict[str, str | None] = {
    "incoming": "Inbound",
    "inbound": "Inbound",
    "1": "Inbound",
    "originating": "Outbound",
    "outbound": "Outbound",
    "2": "Outbound",
    "intra-org": "Intra-org",
    "intraorg": "Intra-org",
}

# Get-MessageTraceV2 ``Status`` onto EmailEvents' ``DeliveryAction`` words where the meaning
# matches; other statuses (Failed, Expanded, Pending) keep Microsoft's word.
V2_STATUS_ACTION: dict[str, str | None] = {
    "delivered": "Delivered",
    "filteredasspam": "Junked",
    "quarantined": "Blocked",
    "gettingstatus": "Pending",
    "none": None,
}
V2_STATUS_LOCATION: dict[str, str | None] = {
    "filteredasspam": "Junk folder",
    "quarantined": "Quarantine",
}

# EAC ``Recipient_status`` lists the message's events for that recipient ("Receive, Deliver");
# the last one says where it ended. Extended reports have one row per event (``event_id``).
# A bare RECEIVE says nothing about the outcome.
EAC_LAST_EVENT_ACTION: dict[str, str | None] = {
    "deliver": "Delivered",
    "send": "Delivered",
    "fail": "Failed",
    "expand": "Expanded",
    "defer": "Pending",
    "receive": None,
    "quarantine": "Blocked",
    "drop": "Blocked",
}

_NORMALISE = """
INSERT INTO {stage} BY NAME
WITH r AS (
    SELECT *,
        coalesce(dsg_text("network_message_id"), dsg_text("{v2_id}")) AS v_id,
        coalesce(dsg_text("origin_timestamp"), dsg_text("date_time_utc"),
                 dsg_text("Received")) AS v_time,
        -- recipient_address first: in extended reports recipient_status holds SMTP replies
        coalesce(dsg_text("recipient_address"), dsg_text("RecipientAddress"),
                 dsg_text("Recipient_status")) AS v_rcpts,
        coalesce(dsg_text("original_client_ip"), dsg_text("client_ip"),
                 dsg_text("FromIP")) AS v_ip,
        CASE WHEN dsg_text("original_client_ip") IS NOT NULL THEN 'original_client_ip'
             WHEN dsg_text("client_ip") IS NOT NULL THEN 'client_ip'
             ELSE 'FromIP' END AS v_ip_column,
        dsg_addr("return_path") AS v_p1,
        dsg_addr(coalesce(dsg_text("sender_address"), dsg_text("SenderAddress"))) AS v_p2
    FROM {raw}),
-- one row per recipient: "a@x##Receive, Deliver;b@x##Receive, Fail"
x AS (
    SELECT *, unnest(CASE WHEN len(v_list) = 0 THEN [NULL] ELSE v_list END) AS v_entry
    FROM (SELECT *, list_filter(string_split(coalesce(v_rcpts, ''), ';'),
                                lambda e: trim(e) <> '') AS v_list,
                 dsg_zulu(v_time) AS v_zulu
          FROM r)),
p AS (
    SELECT *,
        dsg_addr(split_part(v_entry, '##', 1)) AS v_rcpt,
        coalesce(trim(string_split(nullif(trim(split_part(v_entry, '##', 2)), ''), ',')[-1]),
                 dsg_text("event_id")) AS v_last,
        dsg_ts(v_time, v_zulu) AS v_ts,
        CASE WHEN contains(v_ip, ':') THEN lower(v_ip) END AS v_ip6,
        CASE WHEN NOT contains(v_ip, ':') THEN v_ip END AS v_ip4
    FROM x),
n AS (
    SELECT *, CASE
        WHEN _error IS NOT NULL THEN _error
        WHEN v_id IS NULL THEN 'missing ' || $id_column
        WHEN v_rcpt IS NULL THEN 'missing recipient (' || $recipient_column || ')'
        WHEN v_time IS NULL THEN 'missing ' || $time_column
        WHEN v_ts IS NULL THEN 'unparseable ' || $time_column || ' ' || dsg_show(v_time)
        WHEN v_ip4 IS NOT NULL AND NOT dsg_ipv4(v_ip4)
            THEN 'invalid ' || v_ip_column || ' ' || dsg_show(v_ip4)
        WHEN v_ip6 IS NOT NULL AND NOT dsg_ipv6(v_ip6)
            THEN 'invalid ' || v_ip_column || ' ' || dsg_show(v_ip6)
    END AS v_reject
    FROM p)
SELECT
    v_id AS network_message_id,
    v_rcpt AS recipient,
    v_ts AS ts,
    'message_trace' AS source,
    coalesce(dsg_text("message_id"), dsg_text("MessageId")) AS internet_message_id,
    v_p1 AS sender_mail_from,
    dsg_domain(v_p1) AS sender_mail_from_domain,
    v_p2 AS sender_from,
    dsg_domain(v_p2) AS sender_from_domain,
    v_ip4 AS sender_ipv4,
    v_ip6 AS sender_ipv6,
    nullif(coalesce("message_subject", "Subject"), '') AS subject,
    {direction} AS direction,
    coalesce({last_event_action}, {status_action}) AS delivery_action,
    {status_location} AS delivery_location,
    dsg_text("connector_id") AS connectors,
    $file AS source_file,
    _row AS source_row,
    _row,
    CASE WHEN v_reject IS NOT NULL THEN coalesce(_raw, {raw_json}) END AS _raw,
    v_reject AS _reject,
    dsg_zoneless_note(v_time, v_ts, v_zulu) AS _note
FROM n
"""

_STATUS = 'dsg_text("Status")'


class MessageTraceReader(TabularReader):
    """Exchange message trace CSV exports (see the module docstring).

    P1 (envelope sender) is ``return_path`` when the report has it, else unknown; P2 is the
    report's sender address.
    """

    source: ClassVar[str] = "message_trace"
    patterns: ClassVar[tuple[str, ...]] = ("message_trace*.csv", "message_trace*.csv.gz")
    label: ClassVar[str] = "a message trace"
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    required: ClassVar[dict[str, tuple[str, ...]]] = REQUIRED
    other_source: ClassVar[tuple[frozenset[str], str] | None] = (
        frozenset({"networkmessageid", "recipientemailaddress"}),
        "it looks like an EmailEvents export (name it email_events*.csv)",
    )
    time_columns: ClassVar[tuple[str, ...]] = ("origin_timestamp", "date_time_utc", "Received")
    normalise_sql: ClassVar[str] = render(
        _NORMALISE,
        {
            "v2_id": V2_NETWORK_MESSAGE_ID,
            "direction": case_map('dsg_text("directionality")', DIRECTIONALITY),
            "last_event_action": case_map("v_last", EAC_LAST_EVENT_ACTION),
            "status_action": case_map(_STATUS, V2_STATUS_ACTION),
            "status_location": case_map(_STATUS, V2_STATUS_LOCATION, others="NULL"),
        },
    )

    def sql_params(self, layout: RawLayout) -> dict[str, Any]:
        """Name, in reject reasons, the column each required value came from."""
        present = layout.present
        keys = ("time_column", "id_column", "recipient_column")
        return {
            key: next((a for a in alts if a in present), alts[0])
            for key, alts in zip(keys, REQUIRED.values(), strict=True)
        }
