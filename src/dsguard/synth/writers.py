"""Streaming writers for mail telemetry in the shapes Microsoft's tools export.

* ``PortalCsv``: the Defender portal's Advanced Hunting CSV (``Timestamp`` with 7 fractional
  digits, JSON columns as strings with RFC 4180 doubled quotes, ``""`` for empty).
* ``SentinelCsv``: a Log Analytics export of Sentinel's ``EmailEvents`` (``TimeGenerated``,
  ``TenantId``, ``Type``), one file per UTC day.
* ``StreamingJsonl``: the Defender streaming API envelope as written to a storage account
  (``{"time",...,"category":"AdvancedHunting-EmailEvents","properties":{...}}``, CRLF, ``null``
  for empty values, ``To``/``Cc`` arrays and the newer columns).
* ``HuntingJson``: Graph ``runHuntingQuery`` responses (``{"schema":[...],"results":[...]}``),
  split into files of at most 100,000 results as the API's row cap forces.

Message trace writers take the same chunks and keep the last days: ``TraceV2Csv`` is
``Get-MessageTraceV2 | Export-Csv -NoTypeInformation`` (every field quoted, CRLF, en-US dates);
``TraceEacCsv`` is the EAC enhanced summary report (one row per message, UTF-16 LE with BOM).

All writers take Arrow tables and build text with Arrow compute, so memory stays at one
chunk however many rows are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dsguard.synth.model import EE_COLUMNS, INT_COLUMNS
from dsguard.synth.vec import (
    TICKS_PER_SECOND,
    concat_bytes,
    const,
    int_str,
    iso_timestamps,
    join,
    json_escape,
    json_string_or_null,
    us_datetimes,
)

HUNTING_MAX_RESULTS = 100_000


class EventsWriter:
    """Base: accumulate rows per output file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[str, int] = {}

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the current file."""

    def _count(self, name: str, n: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + n


def _csv_table(table: pa.Table, columns: list[str], first: dict[str, pa.Array]) -> pa.Table:
    arrays = list(first.values()) + [table.column(c) for c in columns]
    return pa.Table.from_arrays(arrays, names=list(first) + columns)


class PortalCsv(EventsWriter):
    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.name = "email_events.csv"
        self._writer: pacsv.CSVWriter | None = None
        self._sink: BinaryIO | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        t = table.select(list(EE_COLUMNS))
        if self._writer is None:
            self._sink = (self.out / self.name).open("wb")
            self._writer = pacsv.CSVWriter(self._sink, t.schema,
                                           write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._writer.write_table(t)
        self._count(self.name, t.num_rows)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        if self._writer is None:
            # an empty export still has its header
            (self.out / self.name).write_text(",".join(f'"{c}"' for c in EE_COLUMNS) + "\n")
            self.rows[self.name] = 0


class SentinelCsv(EventsWriter):
    """One CSV per UTC day, as a daily scheduled export writes them."""

    def __init__(self, out: Path, tenant_id: str) -> None:
        super().__init__(out)
        self.tenant_id = tenant_id
        self._day: str | None = None
        self._writer: pacsv.CSVWriter | None = None
        self._sink: BinaryIO | None = None
        self.columns = [c for c in EE_COLUMNS if c != "Timestamp"]

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        ticks = table.column("_ticks").to_numpy()
        days = (ticks // (86400 * TICKS_PER_SECOND)).astype("datetime64[D]").astype(str)
        bounds = np.flatnonzero(days[1:] != days[:-1]) + 1
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(days)], strict=True):
            self._write_day(str(days[a]), table.slice(int(a), int(b - a)))

    def _write_day(self, day: str, table: pa.Table) -> None:
        if day != self._day:
            self.close()
            self._day = day
        n = table.num_rows
        first = {
            "TenantId": const(self.tenant_id, n),
            "TimeGenerated": iso_timestamps(table.column("_ticks").to_numpy(), 3),
        }
        t = _csv_table(table, self.columns, first)
        t = t.append_column("SourceSystem", const("", n)).append_column(
            "Type", const("EmailEvents", n))
        name = f"email_events_{day}.csv"
        if self._writer is None:
            self._sink = (self.out / name).open("wb")
            self._writer = pacsv.CSVWriter(self._sink, t.schema,
                                           write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._writer.write_table(t)
        self._count(name, n)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def _json_members(table: pa.Table, columns: list[str], empty_null: bool) -> list[pa.Array]:
    """``"Name":value`` pieces for each column (strings escaped, ints bare)."""
    parts: list[pa.Array] = []
    for c in columns:
        col = table.column(c)
        if c in INT_COLUMNS:
            value = pc.cast(col, pa.string())
        elif empty_null:
            value = json_string_or_null(col)
        else:
            value = join('"', json_escape(col), '"')
        parts.append(join(f'"{c}":', value))
    return parts


class StreamingJsonl(EventsWriter):
    def __init__(self, out: Path, tenant_id: str) -> None:
        super().__init__(out)
        self.tenant_id = tenant_id
        self.name = "email_events.jsonl"
        self._sink = (out / self.name).open("wb")
        self.rows[self.name] = 0

    def write(self, table: pa.Table) -> None:
        n = table.num_rows
        if n == 0:
            return
        ticks = table.column("_ticks").to_numpy()
        # the streaming API publishes a few minutes after the event
        delay = (ticks % 997) * 3_000_000 + 60 * TICKS_PER_SECOND
        time = iso_timestamps(ticks + delay, 7)
        received = iso_timestamps(ticks + delay - 4 * TICKS_PER_SECOND, 7)
        members = _json_members(table, list(EE_COLUMNS), empty_null=True)
        rdomain = pc.utf8_lower(pc.replace_substring_regex(
            table.column("RecipientEmailAddress"), r"^.*@", ""))
        extra = [
            join('"RecipientDomain":', json_string_or_null(rdomain)),
            join('"EmailSize":', int_str(table.column("_size").to_numpy())),
            join('"IsFirstContact":', pc.if_else(table.column("_first_contact"),
                                                 pa.scalar("true"), pa.scalar("false"))),
            join('"To":', table.column("_to")),
            const('"Cc":[]', n),
            const('"ExchangeTransportRule":null', n),
            const('"DistributionList":null', n),
            const('"ForwardingInformation":null', n),
            const('"Context":null', n),
            const('"ThreatClassification":null', n),
        ]
        props = pc.binary_join_element_wise(*members, *extra, ",")
        line = join('{"time":"', time, f'","tenantId":"{self.tenant_id}","operationName":'
                    '"Publish","category":"AdvancedHunting-EmailEvents","_TimeReceivedBySvc":"',
                    received, '","properties":{', props, '},"Tenant":"DefaultTenant"}\r\n')
        self._sink.write(concat_bytes(line))
        self._count(self.name, n)

    def close(self) -> None:
        self._sink.close()


_HUNT_TYPES = {"EmailClusterId": "Int64", "BulkComplaintLevel": "Int32",
               "AttachmentCount": "Int32", "UrlCount": "Int32", "Timestamp": "DateTime"}


class HuntingJson(EventsWriter):
    """Graph runHuntingQuery responses, one file per 100,000 results."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self._pending: list[bytes] = []
        self._pending_n = 0
        self._index = 0

    def write(self, table: pa.Table) -> None:
        n = table.num_rows
        offset = 0
        while offset < n:
            room = HUNTING_MAX_RESULTS - self._pending_n
            piece = table.slice(offset, min(room, n - offset))
            members = _json_members(piece, list(EE_COLUMNS), empty_null=False)
            objs = join("{", pc.binary_join_element_wise(*members, ","), "},\n")
            self._pending.append(concat_bytes(objs))
            self._pending_n += piece.num_rows
            offset += piece.num_rows
            if self._pending_n >= HUNTING_MAX_RESULTS:
                self._flush()

    def _flush(self) -> None:
        self._index += 1
        name = f"email_events_part{self._index:03d}.json"
        schema = ",".join(f'{{"name":"{c}","type":"{_HUNT_TYPES.get(c, "String")}"}}'
                          for c in EE_COLUMNS)
        body = b"".join(self._pending).rstrip(b",\n")
        head = f'{{"schema":[{schema}],\n"results":[\n'.encode()
        (self.out / name).write_bytes(head + body + b"\n]}\n")
        self.rows[name] = self._pending_n
        self._pending = []
        self._pending_n = 0

    def close(self) -> None:
        if self._pending_n or self._index == 0:
            self._flush()
        if self._index == 1:
            # a single response keeps the plain name
            (self.out / "email_events_part001.json").rename(self.out / "email_events.json")
            self.rows = {"email_events.json": self.rows.pop("email_events_part001.json")}


# --- message trace --------------------------------------------------------------------------


class TraceWriter:
    """Keeps rows at or after ``since`` (ticks) and writes them in one trace family."""

    def __init__(self, out: Path, since: int, organization: str) -> None:
        self.path = out / "message_trace.csv"
        self.since = since
        self.organization = organization
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _recent(self, table: pa.Table) -> pa.Table:
        if table.num_rows == 0:
            return table
        mask = pc.greater_equal(table.column("_ticks"), pa.scalar(self.since, pa.int64()))
        return table.filter(mask)


def _crlf(buf: pa.Buffer) -> bytes:
    return buf.to_pybytes().replace(b"\n", b"\r\n")


class TraceV2Csv(TraceWriter):
    """``Get-MessageTraceV2 ... | Export-Csv -NoTypeInformation`` (PowerShell 7, UTF-8)."""

    def __init__(self, out: Path, since: int, until: int, organization: str) -> None:
        super().__init__(out, since, organization)
        self._sink = self.path.open("wb")
        self._header = True
        self.start_text = us_datetimes(np.array([since])).to_pylist()[0]
        self.end_text = us_datetimes(np.array([until])).to_pylist()[0]

    def write(self, table: pa.Table) -> None:
        t = self._recent(table)
        n = t.num_rows
        if n == 0:
            return
        status = pc.if_else(
            pc.equal(t.column("DeliveryAction"), "Blocked"), pa.scalar("Quarantined"),
            pc.if_else(pc.equal(t.column("DeliveryAction"), "Junked"),
                       pa.scalar("FilteredAsSpam"), pa.scalar("Delivered")))
        out = pa.table({
            "Organization": const(self.organization, n),
            "MessageId": t.column("InternetMessageId"),
            "Received": us_datetimes(t.column("_ticks").to_numpy()),
            "SenderAddress": t.column("SenderMailFromAddress"),
            "RecipientAddress": t.column("RecipientEmailAddress"),
            "Subject": t.column("Subject"),
            "Status": status,
            "ToIP": const("", n),
            "FromIP": pc.if_else(pc.equal(t.column("SenderIPv4"), ""), t.column("SenderIPv6"),
                                 t.column("SenderIPv4")),
            "Size": int_str(t.column("_size").to_numpy()),
            "MessageTraceId": t.column("NetworkMessageId"),
            "StartDate": const(self.start_text, n),
            "EndDate": const(self.end_text, n),
            "Index": int_str(np.arange(self.rows, self.rows + n)),
        })
        buf = pa.BufferOutputStream()
        pacsv.write_csv(out, buf, pacsv.WriteOptions(include_header=self._header,
                                                     quoting_style="all_valid"))
        self._sink.write(_crlf(buf.getvalue()))
        self._header = False
        self.rows += n

    def close(self) -> None:
        if self._header:
            self._sink.write(b'"Organization","MessageId","Received","SenderAddress",'
                             b'"RecipientAddress","Subject","Status","ToIP","FromIP","Size",'
                             b'"MessageTraceId","StartDate","EndDate","Index"\r\n')
        self._sink.close()


class TraceEacCsv(TraceWriter):
    """The EAC / historical search *enhanced summary* report: one row per message with the
    recipients' statuses joined, UTF-16 LE with a byte-order mark."""

    def __init__(self, out: Path, since: int, organization: str) -> None:
        super().__init__(out, since, organization)
        self._sink = self.path.open("wb")
        self._sink.write(b"\xff\xfe")
        self._header = True

    def write(self, table: pa.Table) -> None:
        t = self._recent(table)
        if t.num_rows == 0:
            return
        action = t.column("DeliveryAction")
        direction = t.column("EmailDirection")
        event = pc.if_else(
            pc.equal(action, "Blocked"), pa.scalar("Receive, Quarantine"),
            pc.if_else(pc.equal(direction, "Outbound"), pa.scalar("Receive, Send"),
                       pa.scalar("Receive, Deliver")))
        status = join(t.column("RecipientEmailAddress"), "##", event)
        t = t.append_column("_status", status)
        g = t.group_by("NetworkMessageId", use_threads=False).aggregate([
            ("_status", "list"), ("_ticks", "min"), ("SenderMailFromAddress", "first"),
            ("Subject", "first"), ("_size", "first"), ("InternetMessageId", "first"),
            ("SenderIPv4", "first"), ("SenderIPv6", "first"), ("EmailDirection", "first"),
            ("Connectors", "first"),
        ])
        n = g.num_rows
        ip4 = g.column("SenderIPv4_first")
        originating = pc.not_equal(g.column("EmailDirection_first"), "Inbound")
        connectors = g.column("Connectors_first")
        out = pa.table({
            "origin_timestamp": iso_timestamps(g.column("_ticks_min").to_numpy(), 7),
            "sender_address": g.column("SenderMailFromAddress_first"),
            "Recipient_status": pc.binary_join(g.column("_status_list"), ";"),
            "message_subject": pc.utf8_slice_codeunits(g.column("Subject_first"), 0, 256),
            "total_bytes": int_str(g.column("_size_first").to_numpy()),
            "message_id": g.column("InternetMessageId_first"),
            "network_message_id": g.column("NetworkMessageId"),
            "original_client_ip": pc.if_else(pc.equal(ip4, ""), g.column("SenderIPv6_first"),
                                             ip4),
            "directionality": pc.if_else(
                pc.or_(originating, pc.starts_with(connectors, "Inbound from")),
                pa.scalar("Originating"), pa.scalar("Incoming")),
            "connector_id": connectors,
            "delivery_priority": const("Normal", n),
        })
        buf = pa.BufferOutputStream()
        pacsv.write_csv(out, buf, pacsv.WriteOptions(include_header=self._header,
                                                     quoting_style="all_valid"))
        self._sink.write(_crlf(buf.getvalue()).decode("utf-8").encode("utf-16-le"))
        self._header = False
        self.rows += n

    def close(self) -> None:
        self._sink.close()
