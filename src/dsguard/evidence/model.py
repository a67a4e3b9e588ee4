"""The normalised evidence model: one typed record per kind of evidence.

Every source reader maps Microsoft's own shapes onto these records, and every later stage reads
them from the store, never a raw file. Column types for the DuckDB store are derived from the
annotations here (see ``schema.py``), so this module is the single definition of the snapshot.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base for stored records; ``__table__`` and ``__key__`` tell the store where and how,
    and ``__parts__`` whether the table is appended to in parts (``evidence/parts.py``)."""

    model_config = ConfigDict(extra="forbid")

    __table__: ClassVar[str]
    __key__: ClassVar[tuple[str, ...]]
    __parts__: ClassVar[bool] = False


class MessageEvent(Record):
    """One message for one recipient, as Defender ``EmailEvents`` or message trace reported it.

    P1 is the envelope sender (``SenderMailFromAddress``), P2 the From header
    (``SenderFromAddress``). Authentication verdicts come from ``AuthenticationDetails``.
    """

    __table__ = "messages"
    __parts__ = True
    __key__ = ("network_message_id", "recipient")

    network_message_id: str
    recipient: str
    ts: datetime
    source: str  # "email_events" or "message_trace"
    internet_message_id: str | None = None
    sender_mail_from: str | None = None
    sender_mail_from_domain: str | None = None
    sender_from: str | None = None
    sender_from_domain: str | None = None
    sender_display_name: str | None = None
    sender_object_id: str | None = None
    sender_ipv4: str | None = None
    sender_ipv6: str | None = None
    recipient_object_id: str | None = None
    subject: str | None = None
    direction: str | None = None  # Inbound | Outbound | Intra-org
    delivery_action: str | None = None
    delivery_location: str | None = None
    threat_types: str | None = None
    detection_methods: str | None = None  # JSON text as Microsoft wrote it
    detection_flags: list[str] | None = None  # flattened values, e.g. ["Spoof intra-org"]
    auth_spf: str | None = None
    auth_dkim: str | None = None
    auth_dmarc: str | None = None
    auth_compauth: str | None = None
    connectors: str | None = None
    email_action: str | None = None
    email_action_policy: str | None = None
    org_level_action: str | None = None
    org_level_policy: str | None = None
    confidence_level: str | None = None
    bulk_complaint_level: int | None = None
    attachment_count: int | None = None
    url_count: int | None = None
    email_cluster_id: str | None = None
    report_id: str | None = None
    source_file: str
    source_row: int


class SignIn(Record):
    """One Entra ID sign-in (Graph ``signIn`` or Sentinel ``SigninLogs``)."""

    __table__ = "signins"
    __parts__ = True
    __key__ = ("signin_id",)

    signin_id: str
    ts: datetime
    user_principal_name: str | None = None
    user_id: str | None = None
    user_display_name: str | None = None
    app_display_name: str | None = None
    app_id: str | None = None
    ip_address: str | None = None
    client_app_used: str | None = None
    is_interactive: bool | None = None
    error_code: int | None = None
    failure_reason: str | None = None
    country: str | None = None
    city: str | None = None
    operating_system: str | None = None
    browser: str | None = None
    conditional_access_status: str | None = None
    source_file: str
    source_row: int


class ConfigObject(Record):
    """One Exchange Online or Graph configuration object, normalised and with its raw form.

    ``kind`` is the bundle file's stem (``inbound_connectors``); ``data`` has the PowerShell
    quirks removed (``/Date(ms)/`` → ISO 8601, ``smtp:domain;1`` → ``domain``); ``raw`` is what
    the file held. Whether a kind was collected at all is in the ingest record of its file
    (``ingest_files``): a file with no objects means "collected, none"; no file means "not
    collected", and checks must answer those two differently.
    """

    __table__ = "config_objects"
    __key__ = ("kind", "ordinal")

    kind: str
    ordinal: int
    name: str | None = None
    data: dict[str, Any]
    raw: dict[str, Any]
    source_file: str


class DnsRecord(Record):
    """A DNS record captured for an accepted domain (``dns.json``)."""

    __table__ = "dns_records"
    __key__ = ("name", "rtype", "ordinal")

    name: str
    rtype: str
    ordinal: int
    value: str
    source_file: str


class ExceptionEntry(Record):
    """One approved unauthenticated mail path from ``exceptions.yaml``."""

    __table__ = "exceptions"
    __key__ = ("id",)

    id: str
    name: str | None = None
    owner: str | None = None
    justification: str | None = None
    sources: list[str]
    senders: list[str]
    recipients: list[str]  # ["internal"], ["any"] or addresses
    expires: date | None = None
    review_by: date | None = None
    ticket: str | None = None
    source_file: str
    source_row: int


class RawMessage(Record):
    """A raw ``.eml``/``.msg`` message with the header evidence parsed from it.

    ``headers`` keeps every header in order as ``[name, value]`` pairs so later stages can
    re-read anything; ``evidence`` holds the parsed Exchange Online stamps (see ``headers``).
    """

    __table__ = "raw_messages"
    __parts__ = True
    __key__ = ("sha256",)

    sha256: str
    file: str
    format: str  # "eml" | "msg"
    network_message_id: str | None = None
    internet_message_id: str | None = None
    subject: str | None = None
    from_address: str | None = None
    from_display_name: str | None = None
    to_addresses: list[str] | None = None
    date: datetime | None = None
    headers: list[list[str]]
    evidence: dict[str, Any]
    defects: list[str] | None = None
    source_file: str


class FileReport(BaseModel):
    """What ingest did with one file. ``read == loaded + duplicates + rejected`` always."""

    file: str
    source: str
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: bool = False  # same content already ingested
    error: str | None = None  # file-level problem; its rows are counted as rejected
    warnings: list[str] = []

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.duplicates + self.rejected


RECORD_TYPES: tuple[type[Record], ...] = (
    MessageEvent,
    SignIn,
    ConfigObject,
    DnsRecord,
    ExceptionEntry,
    RawMessage,
)
