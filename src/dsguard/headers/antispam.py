"""Microsoft's ``key:value;`` anti-spam headers: ``X-Forefront-Antispam-Report`` (and its
``-Untrusted`` copy), ``X-Microsoft-Antispam`` and ``X-Microsoft-Antispam-Mailbox-Delivery``.

Parsing follows Message Header Analyzer (strip ``(null)``, split ``key:value`` pairs on ``;``,
the value is everything after the first ``:`` so an IPv6 ``CIP`` survives). Two fields of the
report are sender-chosen text (``H``, the HELO, and ``PTR``), so a key that appears twice with
different values is not resolved either way: it moves to ``conflicts`` and the field reads as
absent, because either copy may be the injected one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from dsguard.headers import semantics
from dsguard.headers._lex import unfold


class KeyValueReport(BaseModel):
    """A parsed ``key:value;`` header. Keys keep their spelling; lookups ignore case."""

    header: str
    fields: dict[str, str] = Field(default_factory=dict)
    conflicts: dict[str, list[str]] = Field(default_factory=dict)
    unparsed: list[str] = Field(default_factory=list)
    defects: list[str] = Field(default_factory=list)

    def get(self, key: str) -> str | None:
        k = key.lower()
        for name, value in self.fields.items():
            if name.lower() == k:
                return value
        return None

    def get_int(self, key: str) -> int | None:
        v = self.get(key)
        try:
            return int(v) if v not in (None, "") else None
        except ValueError:
            return None


class ForefrontReport(KeyValueReport):
    """``X-Forefront-Antispam-Report``: EOP's record of the connection and its verdicts."""

    @property
    def cip(self) -> str | None:
        return self.get("CIP") or None

    @property
    def ctry(self) -> str | None:
        return self.get("CTRY") or None

    @property
    def helo(self) -> str | None:
        return self.get("H") or None

    @property
    def ptr(self) -> str | None:
        return self.get("PTR") or None

    @property
    def dir(self) -> str | None:
        return self.get("DIR") or None

    @property
    def cat(self) -> str | None:
        return self.get("CAT") or None

    @property
    def sfv(self) -> str | None:
        return self.get("SFV") or None

    @property
    def ipv(self) -> str | None:
        return self.get("IPV") or None

    @property
    def sfty(self) -> str | None:
        return self.get("SFTY") or None

    @property
    def scl(self) -> int | None:
        return self.get_int("SCL")


class AntispamReport(KeyValueReport):
    """``X-Microsoft-Antispam``: ``BCL`` (documented) and ``PCL`` (observed)."""

    @property
    def bcl(self) -> int | None:
        return self.get_int("BCL")

    @property
    def pcl(self) -> int | None:
        return self.get_int("PCL")


class MailboxDeliveryReport(KeyValueReport):
    """``X-Microsoft-Antispam-Mailbox-Delivery``: where the mailbox put the message."""

    @property
    def dest(self) -> str | None:
        return self.get("dest") or None


def _parse(value: str, report: KeyValueReport) -> None:
    text = unfold(value).replace("(null)", "")
    seen: dict[str, str] = {}  # lower-cased key -> key as first written
    for part in text.split(";"):
        item = part.strip()
        if not item:
            continue
        key, sep, val = item.partition(":")
        key, val = key.strip(), val.strip()
        if not sep or not key or " " in key:
            report.unparsed.append(item[:200])
            continue
        low = key.lower()
        if low in report.conflicts:
            if val not in report.conflicts[low]:
                report.conflicts[low].append(val)
            continue
        if low in seen:
            first = report.fields[seen[low]]
            if first != val:
                report.conflicts[low] = [first, val]
                del report.fields[seen[low]]
                report.defects.append(f"{key} appears twice with different values; not used")
            continue
        seen[low] = key
        report.fields[key] = val


def parse_forefront(value: str, header: str = semantics.FFAR) -> ForefrontReport:
    report = ForefrontReport(header=header)
    _parse(value, report)
    return report


def parse_antispam(value: str, header: str = semantics.MS_ANTISPAM) -> AntispamReport:
    report = AntispamReport(header=header)
    _parse(value, report)
    return report


def parse_mailbox_delivery(
    value: str, header: str = semantics.MAILBOX_DELIVERY
) -> MailboxDeliveryReport:
    report = MailboxDeliveryReport(header=header)
    _parse(value, report)
    return report
