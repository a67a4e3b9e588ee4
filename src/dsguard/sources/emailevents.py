"""``email_events*``: Defender XDR ``EmailEvents`` in every shape it leaves a tenant.

CSV (``.csv``, ``.csv.gz``):
  * the Defender portal export (``Timestamp``);
  * Sentinel / Log Analytics (``TimeGenerated``, or ``TimeGenerated [UTC]`` from the portal,
    plus ``TenantId``, ``SourceSystem``, ``Type``); semicolon, tab or pipe separated files
    are read too, with a warning.

JSON (``.json``, ``.jsonl``, each also ``.gz``), told apart by content, not by name:
  * Graph ``runHuntingQuery`` ``{"schema": [...], "results": [...]}`` and the legacy
    ``{"Stats": ..., "Schema": ..., "Results": ...}`` (key casing varies);
  * a plain array of rows, or one row per line;
  * the Defender streaming API envelope, one per line (CRLF), ``{"time", "tenantId",
    "category": "AdvancedHunting-EmailEvents", "properties": {...}}``, or an Event Hub
    ``{"records": [...]}`` batch.

All shapes are staged into the same raw relation and go through one normalisation statement
(``_NORMALISE``), so a value means the same whichever export carried it. JSON lines of plain
rows (what ``dsguard collect`` writes) are read by DuckDB as they stream (``_json_lines``);
every other JSON shape, and any such file DuckDB would read differently, is parsed here.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from dsguard.sources._json_lines import stage_json_lines, survey_ahead
from dsguard.sources._tabular import (
    RawLayout,
    RawRow,
    TabularReader,
    TextFile,
    case_map,
    read_in_place,
    render,
    stage_raw_rows,
)
from dsguard.sources.base import SourceError, to_json_text

# Every column Microsoft documents for EmailEvents (Defender page), the newer streaming-API
# columns, and what Sentinel / Log Analytics adds. Anything else is warned about.
COLUMNS: tuple[str, ...] = (
    "Timestamp", "TimeGenerated", "NetworkMessageId", "InternetMessageId",
    "SenderMailFromAddress", "SenderFromAddress", "SenderDisplayName", "SenderObjectId",
    "SenderMailFromDomain", "SenderFromDomain", "SenderIPv4", "SenderIPv6",
    "RecipientEmailAddress", "RecipientObjectId", "Subject", "EmailClusterId",
    "EmailDirection", "DeliveryAction", "DeliveryLocation", "LatestDeliveryAction",
    "LatestDeliveryLocation", "ThreatTypes", "ThreatNames", "ThreatClassification",
    "DetectionMethods", "ConfidenceLevel", "BulkComplaintLevel", "EmailAction",
    "EmailActionPolicy", "EmailActionPolicyGuid", "AuthenticationDetails", "AttachmentCount",
    "UrlCount", "EmailLanguage", "Connectors", "OrgLevelAction", "OrgLevelPolicy",
    "UserLevelAction", "UserLevelPolicy", "ReportId", "AdditionalFields",
    # streaming API
    "ExchangeTransportRule", "DistributionList", "ForwardingInformation", "Context", "To", "Cc",
    "RecipientDomain", "EmailSize", "IsFirstContact",
    # Sentinel / Log Analytics
    "TenantId", "SourceSystem", "Type",
)  # fmt: skip

REQUIRED: dict[str, tuple[str, ...]] = {
    "Timestamp (or TimeGenerated)": ("Timestamp", "TimeGenerated"),
    "NetworkMessageId": ("NetworkMessageId",),
    "RecipientEmailAddress": ("RecipientEmailAddress",),
    "SenderFromAddress": ("SenderFromAddress",),
}

# ``EmailDirection`` onto the model's vocabulary; unknown values pass through trimmed.
DIRECTIONS: dict[str, str | None] = {
    "inbound": "Inbound",
    "outbound": "Outbound",
    "intra-org": "Intra-org",
    "intraorg": "Intra-org",
    "unknown": None,
}

# One statement maps every shape's raw relation onto MessageEvent. ``{raw_json}`` rebuilds a
# rejected row for the quarantine; values only ever arrive as columns or parameters.
_NORMALISE = """
INSERT INTO {stage} BY NAME
WITH r AS (
    SELECT *,
        dsg_text("NetworkMessageId") AS v_id,
        dsg_addr("RecipientEmailAddress") AS v_rcpt,
        coalesce(dsg_text("Timestamp"), dsg_text("TimeGenerated")) AS v_time,
        dsg_text("SenderIPv4") AS v_ip4,
        lower(dsg_text("SenderIPv6")) AS v_ip6,
        dsg_addr("SenderMailFromAddress") AS v_p1,
        dsg_addr("SenderFromAddress") AS v_p2,
        dsg_text("AuthenticationDetails") AS v_auth,
        dsg_text("DetectionMethods") AS v_dm
    FROM {raw}),
z AS (
    SELECT *, dsg_zulu(v_time) AS v_zulu,
        dsg_json_object(dsg_json(v_auth)) AS v_auth_object,
        dsg_json_object(dsg_json(v_dm)) AS v_dm_object
    FROM r),
p AS (
    SELECT *, dsg_ts(v_time, v_zulu) AS v_ts,
        -- keys and values lower-cased together: keys match in any case, values come out
        -- lower. Only an object is read (other rows are rejected), and lower-casing valid
        -- JSON keeps it valid; try() still turns a surprise into NULL, not a failed ingest.
        CASE WHEN v_auth_object THEN try(json_extract_string(lower(v_auth),
            ['$.spf', '$.dkim', '$.dmarc', '$.compauth'])) END AS v_verdicts
    FROM z),
n AS (
    SELECT *, CASE
        WHEN _error IS NOT NULL THEN _error
        WHEN v_id IS NULL THEN 'missing NetworkMessageId'
        WHEN v_rcpt IS NULL THEN 'missing RecipientEmailAddress'
        WHEN v_time IS NULL THEN 'missing ' || $time_column
        WHEN v_ts IS NULL THEN 'unparseable ' || $time_column || ' ' || dsg_show(v_time)
        WHEN v_ip4 IS NOT NULL AND NOT dsg_ipv4(v_ip4)
            THEN 'invalid SenderIPv4 ' || dsg_show(v_ip4)
        WHEN v_ip6 IS NOT NULL AND NOT dsg_ipv6(v_ip6)
            THEN 'invalid SenderIPv6 ' || dsg_show(v_ip6)
        WHEN v_auth IS NOT NULL AND NOT v_auth_object
            THEN 'AuthenticationDetails is not a JSON object: ' || dsg_show(v_auth)
        WHEN v_dm IS NOT NULL AND NOT v_dm_object
            THEN 'DetectionMethods is not a JSON object: ' || dsg_show(v_dm)
    END AS v_reject
    FROM p)
SELECT
    v_id AS network_message_id,
    v_rcpt AS recipient,
    v_ts AS ts,
    'email_events' AS source,
    dsg_text("InternetMessageId") AS internet_message_id,
    v_p1 AS sender_mail_from,
    coalesce(dsg_addr("SenderMailFromDomain"), dsg_domain(v_p1)) AS sender_mail_from_domain,
    v_p2 AS sender_from,
    coalesce(dsg_addr("SenderFromDomain"), dsg_domain(v_p2)) AS sender_from_domain,
    nullif("SenderDisplayName", '') AS sender_display_name,
    dsg_text("SenderObjectId") AS sender_object_id,
    v_ip4 AS sender_ipv4,
    v_ip6 AS sender_ipv6,
    dsg_text("RecipientObjectId") AS recipient_object_id,
    nullif("Subject", '') AS subject,
    {direction} AS direction,
    dsg_text("DeliveryAction") AS delivery_action,
    dsg_text("DeliveryLocation") AS delivery_location,
    dsg_text("ThreatTypes") AS threat_types,
    v_dm AS detection_methods,
    -- every verdict of every family: {{"Phish":["Spoof intra-org"]}} -> ['Spoof intra-org']
    CASE WHEN v_dm_object THEN list_filter(flatten(list_transform(
        json_extract(v_dm, '$.*'),
        lambda v: CASE WHEN json_type(v) = 'ARRAY' THEN json_extract_string(v, '$[*]')
                       ELSE [json_extract_string(v, '$')] END)),
        lambda f: f IS NOT NULL) END AS detection_flags,
    v_verdicts[1] AS auth_spf,
    v_verdicts[2] AS auth_dkim,
    v_verdicts[3] AS auth_dmarc,
    v_verdicts[4] AS auth_compauth,
    dsg_text("Connectors") AS connectors,
    dsg_text("EmailAction") AS email_action,
    dsg_text("EmailActionPolicy") AS email_action_policy,
    dsg_text("OrgLevelAction") AS org_level_action,
    dsg_text("OrgLevelPolicy") AS org_level_policy,
    dsg_text("ConfidenceLevel") AS confidence_level,
    TRY_CAST(dsg_text("BulkComplaintLevel") AS BIGINT) AS bulk_complaint_level,
    TRY_CAST(dsg_text("AttachmentCount") AS BIGINT) AS attachment_count,
    TRY_CAST(dsg_text("UrlCount") AS BIGINT) AS url_count,
    dsg_text("EmailClusterId") AS email_cluster_id,
    dsg_text("ReportId") AS report_id,
    $file AS source_file,
    _row AS source_row,
    _row,
    CASE WHEN v_reject IS NOT NULL THEN coalesce(_raw, {raw_json}) END AS _raw,
    v_reject AS _reject,
    dsg_zoneless_note(v_time, v_ts, v_zulu) AS _note
FROM n
"""


class EmailEventsReader(TabularReader):
    """Defender ``EmailEvents`` from CSV or JSON exports (see the module docstring)."""

    source: ClassVar[str] = "email_events"
    patterns: ClassVar[tuple[str, ...]] = tuple(
        f"email_events*.{ext}{gz}" for ext in ("csv", "json", "jsonl") for gz in ("", ".gz")
    )
    # An EmailEvents row is richer than a message-trace row for the same message and recipient.
    supersedes: ClassVar[str] = "source = 'message_trace'"
    label: ClassVar[str] = "an EmailEvents"
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    required: ClassVar[dict[str, tuple[str, ...]]] = REQUIRED
    time_columns: ClassVar[tuple[str, ...]] = ("Timestamp", "TimeGenerated")
    one_row_per_record: ClassVar[bool] = True
    generic_columns: ClassVar[frozenset[str]] = frozenset(
        {"TenantId", "SourceSystem", "Type", "Subject"}
    )
    other_source: ClassVar[tuple[frozenset[str], str] | None] = (
        frozenset({"origin_timestamp", "recipient_status", "messagetraceid", "fromip"}),
        "it looks like a message trace export (name it message_trace*.csv)",
    )
    normalise_sql: ClassVar[str] = render(
        _NORMALISE, {"direction": case_map('dsg_text("EmailDirection")', DIRECTIONS)}
    )

    def look_ahead(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Survey a JSON-lines file ahead (``survey_ahead``): a small one's survey costs as
        much as staging it."""
        if _is_json(path.name) and _plain_json_lines(path):
            survey_ahead(con, path)

    def stage_raw(
        self,
        con: duckdb.DuckDBPyConnection,
        text: TextFile,
        file: str,
        raw: str,
        warnings: list[str],
    ) -> RawLayout | None:
        """CSV as every tabular source; JSON lines of plain rows through DuckDB when it reads
        them as Python would; other JSON shapes are parsed here into the same raw rows."""
        if not _is_json(file):
            return super().stage_raw(con, text, file, raw, warnings)
        first = _first_line(text)
        if first is not None and _is_object(first):
            fast = stage_json_lines(con, text.path, COLUMNS, raw)
            if fast is not None:
                names = [shown for _, shown in fast.columns]
                self.check_columns(file, names, fast.present & set(COLUMNS))
                return fast
        layout = RawLayout(COLUMNS)
        schema: list[str] = []
        rows = _json_rows(text, file, schema)
        if rows is None:
            warnings.append("empty file; no rows")
            return None
        count = stage_raw_rows(con, raw, layout, rows)
        declared = {c for c in map(layout.canonical, schema) if c}
        if layout.columns or declared:
            # Judge the columns only when something parsed: a file of broken lines is
            # quarantined line by line instead.
            names = [shown for _, shown in layout.columns] or schema
            self.check_columns(file, names, (layout.present | declared) & set(COLUMNS))
        if count == 0:
            warnings.append("no rows")
        return layout


def _plain_json_lines(path: Path) -> bool:
    """Whether DuckDB would read the file in place as JSON lines: not gzip or UTF-16 (those
    are decoded into a copy first), and its first line an object."""
    if not read_in_place(path):
        return False
    first = _first_line(TextFile(path))
    return first is not None and _is_object(first)


def _is_json(file: str) -> bool:
    return file.lower().removesuffix(".gz").endswith((".json", ".jsonl"))


# ----------------------------------------------------------------------------- JSON
def _json_rows(text: TextFile, file: str, schema: list[str]) -> Iterator[RawRow] | None:
    """Rows of whatever JSON shape the file holds; ``None`` when it holds nothing.

    A file whose first line is a whole JSON object is read as JSON lines, streaming, and a
    line that does not parse becomes a rejected row. Anything else must be one JSON document.
    Rows are numbered in file order (``_row``), whatever wrapper carried them; ``schema``
    collects the column names a runHuntingQuery response declares.
    """
    first = _first_line(text)
    if first is None:
        return None
    if _is_object(first):
        return _json_lines(text, schema)
    try:
        with text.open_bytes() as fh:
            doc = json.loads(fh.read().decode("utf-8-sig"))
    except ValueError as exc:
        raise SourceError(f"{file}: not valid JSON ({_why(exc)})") from exc
    if not isinstance(doc, dict | list):
        raise SourceError(f"{file}: JSON holds a {type(doc).__name__}, not rows")
    return _document_rows(doc, schema)


def _first_line(text: TextFile) -> bytes | None:
    """The first non-blank line, which tells JSON lines from one JSON document."""
    with text.open_bytes() as fh:
        for line in fh:
            line = line.removeprefix(codecs.BOM_UTF8)
            if line.strip():
                return line
    return None


def _is_object(line: bytes) -> bool:
    """Whether a line is a whole JSON object: the mark of a JSON-lines file."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _why(exc: ValueError) -> str:
    """A parse error in one short clause, for a reject reason or a file error."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _json_lines(text: TextFile, schema: list[str]) -> Iterator[RawRow]:
    """Rows of a JSON-lines file, streaming; a line that does not parse is a rejected row."""
    n = 0
    with text.open_bytes() as fh:
        for number, line in enumerate(fh, 1):
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                n += 1
                shown = line.decode("utf-8", errors="replace").rstrip("\r\n")
                yield RawRow(n, raw=shown, error=f"line {number} is not valid JSON ({_why(exc)})")
                continue
            for row in _expand(obj, schema):
                n += 1
                row.row = n
                yield row


def _document_rows(doc: dict[str, Any] | list[Any], schema: list[str]) -> Iterator[RawRow]:
    """Rows of one JSON document: an array of rows or wrappers, or a single wrapper."""
    n = 0
    for item in doc if isinstance(doc, list) else [doc]:
        for row in _expand(item, schema):
            n += 1
            row.row = n
            yield row


def _expand(obj: Any, schema: list[str]) -> Iterator[RawRow]:
    """The EmailEvents rows inside one JSON value, whatever wrapper carries them."""
    if not isinstance(obj, dict):
        yield RawRow(0, raw=to_json_text(obj), error="not a JSON object")
        return
    keys = {str(k).lower(): k for k in obj}
    results = _field(obj, keys, "results")
    if isinstance(results, list):  # runHuntingQuery, any key casing
        schema.extend(_schema_names(_field(obj, keys, "schema")))
        for item in results:
            yield from _expand(item, schema)
        return
    records = _field(obj, keys, "records")
    if isinstance(records, list):  # Event Hub batch of streaming envelopes
        for item in records:
            yield from _expand(item, schema)
        return
    properties = _field(obj, keys, "properties")
    if isinstance(properties, dict):  # streaming API envelope
        yield _envelope(obj, keys, properties)
        return
    yield RawRow(0, values=obj)


def _field(obj: dict[str, Any], keys: dict[str, Any], name: str) -> Any:
    """``obj``'s value for ``name`` in any key casing, or None."""
    key = keys.get(name)
    return None if key is None else obj[key]


def _envelope(obj: dict[str, Any], keys: dict[str, Any], properties: dict[str, Any]) -> RawRow:
    """The row inside a streaming-API envelope; rows of other tables are rejected.

    The envelope's ``time`` stands in for a missing ``Timestamp``.
    """
    values = dict(properties)
    if "timestamp" not in {str(k).lower() for k in values} and "time" in keys:
        values["Timestamp"] = obj[keys["time"]]
    category = _field(obj, keys, "category")
    error = None
    if isinstance(category, str) and not category.lower().endswith("emailevents"):
        error = f"streaming record of category {category[:60]!r}, not EmailEvents"
    return RawRow(0, values=values, error=error)


def _schema_names(schema: Any) -> list[str]:
    """Column names of a runHuntingQuery ``schema`` (``name`` or ``Name`` keys)."""
    names: list[str] = []
    for item in schema if isinstance(schema, list) else []:
        if isinstance(item, dict):
            for key, value in item.items():
                if str(key).lower() == "name" and isinstance(value, str):
                    names.append(value)
    return names
