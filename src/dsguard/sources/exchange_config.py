"""``exchange/*.json`` and ``graph/*.json``: the tenant's configuration, one file per cmdlet.

Each file is a snapshot of one ``kind`` (the file stem: ``organization_config``,
``inbound_connectors``, ``transport_rules``, ``accepted_domains``, ``service_principals``...),
as ``Get-X | ConvertTo-Json -Depth 10`` or the EXO AdminApi ``InvokeCommand`` / Graph wrote
it. A new file replaces that kind's previous rows. Zero objects (``null``, ``[]``, an empty
file) is a snapshot too, "collected, none", which checks must tell apart from "no file".

The PowerShell quirks are removed by ``normalise_powershell``, a pure function that
collectors and tests share; the row keeps the file's object untouched in ``raw``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from dsguard.evidence.model import ConfigObject
from dsguard.sources.base import Reader, StageResult, stage_records, to_json_text

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_ISO_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?[+-]\d{2}:\d{2}")
_SMTP_DOMAIN = re.compile(r"smtp:([^;\s]+);\d+", re.IGNORECASE)
# What ``ConvertTo-Json`` writes for a value nested deeper than ``-Depth``: its ToString(),
# i.e. a collection's type name or a PSCustomObject's ``@{k=v; ...}``. Plain type names are
# not matched: EXO's REST cmdlets return transport rule ``Conditions``/``Actions`` as names
# like ``...Rules.Tasks.SenderDomainIsPredicate`` at any depth, and that is not a cut-off.
_TRUNCATED = re.compile(
    r"System\.Collections(?:\.[A-Z]\w*)+(?:`\d+\[.*\])?"
    r"|(?:System|Microsoft)(?:\.[A-Z]\w*)+(?:`\d+\[.*\]|\[\])"
    r"|System\.Management\.Automation\.PSCustomObject"
    r"|@\{\w+=.*\}",
    re.DOTALL,
)
_NAME_KEYS = ("Name", "Identity", "DisplayName", "displayName", "appDisplayName")
_EXCERPT = 4000


class ConfigJsonError(ValueError):
    """A config file that is not (entirely) JSON; ``objects`` holds what parsed before."""

    def __init__(self, message: str, objects: list[Any], excerpt: str) -> None:
        super().__init__(message)
        self.objects = objects
        self.excerpt = excerpt


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Bytes of a PowerShell-written file as text, and a warning when it was not clean.

    Windows PowerShell's ``Out-File`` and ``>`` write UTF-16 LE with a BOM, ``Set-Content``
    the ANSI code page, PowerShell 7 UTF-8 without a BOM; some tools add a UTF-8 BOM.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        len(data) >= 2 and (data[0] == 0) != (data[1] == 0)
    ):
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            enc = "utf-16"
        else:
            enc = "utf-16-be" if data[0] == 0 else "utf-16-le"
        try:
            return data.decode(enc), None
        except UnicodeDecodeError as exc:
            return data.decode(enc, errors="replace"), f"damaged UTF-16 ({exc.reason})"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), (
            "not UTF-8; read as Windows-1252 (what Windows PowerShell Set-Content writes)"
        )


def is_page(value: Any) -> bool:
    """An AdminApi ``InvokeCommand`` or Graph page: ``value`` plus only annotation keys
    (``@odata.context``, ``@odata.nextLink``, ``@adminapi.warnings``...)."""
    if not isinstance(value, dict) or "value" not in value:
        return False
    return all(k == "value" or "@" in k for k in value)


def split_objects(doc: Any) -> list[Any]:
    """The objects of one JSON document: ``null`` → none, a list → its items, a page →
    its ``value`` (pages inside a list are unwrapped too), anything else → itself."""
    if doc is None:
        return []
    if is_page(doc):
        return split_objects(doc["value"])
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            out.extend(split_objects(item) if is_page(item) else [item])
        return out
    return [doc]


def parse_powershell_json(text: str) -> list[Any]:
    """Every object in a config file, in order; back-to-back documents (concatenated
    pages) allowed, an empty file is zero objects. Raises ``ConfigJsonError``."""
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == "\x00"):
            pos += 1
        if pos >= len(text):
            return objects
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            what = "truncated JSON" if exc.pos >= len(text.rstrip()) - 16 else "not valid JSON"
            raise ConfigJsonError(
                f"{what} at line {exc.lineno} column {exc.colno}: {exc.msg}",
                objects,
                text[pos : pos + _EXCERPT],
            ) from exc
        objects.extend(split_objects(doc))


def normalise_powershell(obj: Any) -> Any:
    """A copy of ``obj`` with PowerShell's JSON quirks removed, so checks read one shape.

    * ``/Date(1772500512000)/`` and ``/Date(1772500512000+0100)/`` → ISO 8601 UTC (the
      number is already UTC milliseconds; the offset only says where it was written);
      ISO strings with an offset (PowerShell 7) → UTC too; Windows PowerShell's
      ``{"value": ..., "DisplayHint": .., "DateTime": ..}`` wrapper → its value.
    * ``smtp:contoso.com;1`` (connector ``SenderDomains``, accepted domains) → ``contoso.com``.

    Everything else, ``null`` vs ``[]`` included, is kept as it is.
    """
    if isinstance(obj, dict):
        if set(obj) == {"value", "DisplayHint", "DateTime"}:
            return normalise_powershell(obj["value"])
        return {k: normalise_powershell(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [normalise_powershell(v) for v in obj]
    if isinstance(obj, str):
        return _normalise_string(obj)
    return obj


def _normalise_string(text: str) -> str:
    if text.startswith("/Date(") and (m := _MS_DATE.fullmatch(text)):
        try:
            dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m[1]))
        except OverflowError:
            return text
        return _iso_utc(dt)
    if text[:5].lower() == "smtp:" and (m := _SMTP_DOMAIN.fullmatch(text)):
        return m[1].lower()
    if len(text) >= 25 and text[10:11] == "T" and _ISO_OFFSET.fullmatch(text):
        try:
            return _iso_utc(datetime.fromisoformat(text))
        except ValueError:
            return text
    return text


def _iso_utc(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    spec = "seconds" if not dt.microsecond else "milliseconds"
    if dt.microsecond % 1000:
        spec = "microseconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


def truncated_properties(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """``(property path, text)`` for every value that ``ConvertTo-Json -Depth`` cut off and
    replaced by a type name (``System.Collections.Hashtable``,
    ``Microsoft.Exchange.Data.MultiValuedProperty`1[...]``): the data is not in the file."""
    found: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += truncated_properties(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += truncated_properties(value, f"{path}[{i}]")
    elif isinstance(obj, str) and obj[:1] in "SM@" and _TRUNCATED.fullmatch(obj):
        found.append((path, obj))
    return found


def object_name(obj: dict[str, Any]) -> str | None:
    """The name a finding shows for an object: ``Name``, ``Identity``, ``DisplayName``,
    ``displayName`` or ``appDisplayName``, the first that is a non-empty string."""
    for key in _NAME_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def config_kind(path: Path) -> str:
    return path.stem


class ExchangeConfigReader(Reader):
    """``Get-*`` cmdlet and Graph JSON → ``config_objects``, one snapshot per kind."""

    source: ClassVar[str] = "exchange_config"
    model = ConfigObject
    patterns: ClassVar[tuple[str, ...]] = ("exchange/*.json", "graph/*.json")
    mode: ClassVar[str] = "replace"

    def replace_scope(self, path: Path) -> tuple[str, list[Any]]:
        return '"kind" = ?', [config_kind(path)]

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        file = f"{path.parent.name}/{path.name}"
        kind = config_kind(path)
        text, note = decode_text(path.read_bytes())
        result = StageResult(warnings=[f"{file}: {note}"] if note else [])
        damage: ConfigJsonError | None = None
        try:
            objects = parse_powershell_json(text)
        except ConfigJsonError as exc:
            # A partial snapshot would pass checks it should fail (a missing transport
            # rule is no rule), so nothing from a damaged file loads; the rows are still
            # counted and quarantined, and the previous snapshot of this kind is dropped.
            damage, objects = exc, exc.objects
            result.error = f"{file}: {exc}; nothing from this file was loaded"
        rows = [self._row(kind, file, i, obj, result.warnings) for i, obj in enumerate(objects)]
        if damage is not None:
            n = len(objects)
            rows.append(
                {"kind": kind, "ordinal": n, "source_file": file, "_row": n + 1,
                 "_raw": damage.excerpt, "_reject": str(damage)}
            )
        _warn_truncations(file, objects, result.warnings)
        stage_records(con, table, ConfigObject, rows)
        return result

    @staticmethod
    def _row(kind: str, file: str, i: int, obj: Any, warnings: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "kind": kind, "ordinal": i, "source_file": file, "_row": i + 1,
            "_raw": to_json_text(obj), "_reject": None,
        }
        if not isinstance(obj, dict):
            kind_of = {list: "array", str: "string", bool: "boolean", type(None): "null"}
            row["_reject"] = (
                f"object {i} is a JSON {kind_of.get(type(obj), 'number')}, not an object"
            )
            return row
        row.update(name=object_name(obj), data=normalise_powershell(obj), raw=obj)
        return row


def _warn_truncations(file: str, objects: list[Any], warnings: list[str]) -> None:
    """One warning per truncated property (not per object), naming the first object."""
    seen: dict[str, list[str]] = defaultdict(list)
    sample: dict[str, str] = {}
    for i, obj in enumerate(objects):
        for prop, text in truncated_properties(obj):
            key = re.sub(r"\[\d+\]", "[]", prop)
            name = object_name(obj) if isinstance(obj, dict) else None
            seen[key].append(name or f"object {i}")
            sample.setdefault(key, text)
    for prop, names in seen.items():
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        warnings.append(
            f"{file}: property '{prop}' of {names[0]!r}{more} holds {sample[prop]!r}, a "
            "ConvertTo-Json -Depth cut-off, not data; re-export with -Depth 10"
        )
