"""The evidence bundle: which file is read by which source reader (``docs/bundle.md``).

``discover`` finds a bundle's files and pairs each with its reader, in the order ingest needs:
configuration first, then mail telemetry (EmailEvents before message trace, so the richer
record wins), sign-ins and raw messages.
"""

from __future__ import annotations

from pathlib import Path

from dsguard.sources.base import Reader
from dsguard.sources.dns import DnsReader
from dsguard.sources.emailevents import EmailEventsReader
from dsguard.sources.exceptions import ExceptionsReader
from dsguard.sources.exchange_config import ExchangeConfigReader
from dsguard.sources.message_trace import MessageTraceReader
from dsguard.sources.messages import MessageFileReader
from dsguard.sources.signins import SignInsReader

READERS: tuple[Reader, ...] = (
    ExchangeConfigReader(),
    DnsReader(),
    ExceptionsReader(),
    EmailEventsReader(),
    MessageTraceReader(),
    SignInsReader(),
    MessageFileReader(),
)

TELEMETRY_SOURCES = frozenset({EmailEventsReader.source, MessageTraceReader.source})


class BundleError(Exception):
    """The folder is not a usable evidence bundle."""


def discover(bundle: Path, *, telemetry: bool = True) -> list[tuple[Reader, Path]]:
    """Every file of the bundle that a reader claims, each once, in ingest order.

    ``telemetry=False`` accepts a bundle of configuration only (the Spark job reads mail
    from the data lake and only the tenant context from a bundle).
    """
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a folder")
    claimed: set[Path] = set()
    found: list[tuple[Reader, Path]] = []
    for reader in READERS:
        paths: set[Path] = set()
        for pattern in reader.patterns:
            paths.update(p for p in bundle.glob(pattern) if p.is_file())
        for path in sorted(paths - claimed):
            claimed.add(path)
            found.append((reader, path))
    if telemetry and not any(r.source in TELEMETRY_SOURCES for r, _ in found):
        raise BundleError(
            f"no mail telemetry in {bundle}: expected email_events*.csv|json|jsonl[.gz] "
            "or message_trace*.csv (see docs/bundle.md)"
        )
    return found


