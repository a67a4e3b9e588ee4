"""``exceptions.yaml``: the registry of approved unauthenticated mail paths.

The file's shape is published as a JSON Schema (``dsguard/schemas/exceptions.schema.json``)
so editors and CI can validate it without dsguard; this reader applies that schema to each
entry and then checks what a schema cannot say (IPs and CIDRs, address syntax, real dates,
unique ids). One bad entry is one rejected row, named by file, entry number, id and field;
the good entries still load, because a registry that loads all-or-nothing would turn one
typo into "every approved path is unregistered".

Governance gaps are not load errors: an entry without ``owner`` or ``expires`` loads with a
warning, and the governance stage reports it as a finding.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import yaml
from jsonschema import Draft202012Validator, ValidationError

from dsguard.evidence.model import ExceptionEntry
from dsguard.sources.base import Reader, SourceError, StageResult, stage_records, to_json_text

SCHEMA_RESOURCE = "schemas/exceptions.schema.json"
KEYWORDS = ("internal", "any")

_ADDRESS = re.compile(r"[^@\s*]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_WILDCARD = re.compile(r"\*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


@cache
def exceptions_schema() -> dict[str, Any]:
    """The published JSON Schema, read from the installed package."""
    text = resources.files("dsguard").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _entry_validator() -> Draft202012Validator:
    schema = exceptions_schema()
    entry = {**schema["$defs"]["exception"], "$defs": schema["$defs"]}
    return Draft202012Validator(entry)


class ExceptionsReader(Reader):
    """``exceptions.yaml`` → ``exceptions``; the file is the whole registry."""

    source: ClassVar[str] = "exceptions"
    model = ExceptionEntry
    patterns: ClassVar[tuple[str, ...]] = ("exceptions.yaml", "exceptions.yml")
    mode: ClassVar[str] = "replace"

    def replace_scope(self, path: Path) -> tuple[str, list[Any]]:
        return "true", []

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        file = path.name
        entries = load_registry(path.read_bytes(), file)
        result = StageResult()
        rows = list(check_entries(entries, file, result.warnings))
        stage_records(con, table, ExceptionEntry, rows)
        return result


def load_registry(data: bytes | str, file: str) -> list[Any]:
    """The ``exceptions`` list of a registry file, or ``SourceError`` with one line."""
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise SourceError(f"{file}: not valid YAML: {_yaml_problem(exc)}") from exc
    except (ValueError, OverflowError) as exc:
        # PyYAML builds `2027-02-30` as a date and fails with a bare ValueError.
        raise SourceError(f"{file}: not valid YAML: {_bad_timestamp(data) or exc}") from exc
    if not isinstance(doc, dict) or "exceptions" not in doc:
        found = "an empty file" if doc is None else f"a {_type(doc)}"
        if isinstance(doc, dict):
            found = "a mapping without an 'exceptions' key"
        raise SourceError(
            f"{file}: expected a mapping with an 'exceptions' list at the top level, found "
            f"{found} (write 'exceptions: []' for an empty registry; see docs/bundle.md)"
        )
    entries = doc["exceptions"]
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SourceError(f"{file}: 'exceptions' must be a list of entries, not a {_type(entries)}")
    return entries


def check_entries(entries: list[Any], file: str, warnings: list[str]) -> Iterable[dict[str, Any]]:
    """One staged row per entry: the normalised fields, or the reasons it is rejected."""
    first_seen: dict[str, int] = {}
    for n, entry in enumerate(entries, 1):
        eid = entry.get("id") if isinstance(entry, dict) else None
        label = f"{file}: entry {n} ({eid if isinstance(eid, str) and eid.strip() else 'no id'})"
        errors: list[str] = []
        notes: list[str] = []
        fields: dict[str, Any] = {}
        if not isinstance(entry, dict):
            errors.append(f"not a mapping but a {_type(entry)}")
        else:
            errors += _schema_errors(entry, notes)
            fields = _fields(entry, errors, notes)
            key = fields.get("id")
            if key:
                if key in first_seen:
                    errors.append(f"duplicate id {key!r} (first used by entry {first_seen[key]})")
                else:
                    first_seen[key] = n
        if not errors:  # a rejected entry's lesser notes would only be noise
            warnings.extend(f"{label}: {note}" for note in notes)
        reject = f"{label}: " + "; ".join(errors) if errors else None
        row = {} if reject else fields
        row.update(source_file=file, source_row=n, _row=n, _raw=to_json_text(entry),
                   _reject=reject)
        yield row


def _schema_errors(entry: dict[str, Any], notes: list[str]) -> list[str]:
    """Schema violations as ``field 'x': ...`` texts; unknown fields become notes, since a
    stray key should not unregister a path."""
    errors: list[str] = []
    instance = _jsonable(entry)
    if isinstance(instance.get("recipients"), str):
        instance["recipients"] = instance["recipients"].strip().lower()
    for err in sorted(_entry_validator().iter_errors(instance), key=_error_order):
        where = _field(err)
        if err.validator == "additionalProperties":
            extra = sorted(set(entry) - set(exceptions_schema()["$defs"]["exception"]
                                            ["properties"]))
            notes.extend(f"unknown field {k!r} ignored" for k in extra if str(k)[:2] != "x-")
        elif err.validator == "required" and not err.absolute_path:
            missing = err.message.split("'")[1] if "'" in err.message else "?"
            errors.append(f"field {missing!r}: required")
        elif err.validator == "anyOf" and not err.absolute_path:
            errors.append("needs at least one of 'sources' or 'senders' (non-empty)")
        elif where == "recipients":
            errors.append("field 'recipients': must be 'internal', 'any' or a list of addresses")
        else:
            errors.append(f"field {where!r}: {err.message}")
    return errors


def _fields(entry: dict[str, Any], errors: list[str], notes: list[str]) -> dict[str, Any]:
    """The ``ExceptionEntry`` fields, checking what the schema cannot (errors/notes)."""
    eid = entry.get("id")
    out: dict[str, Any] = {
        "id": eid.strip() if isinstance(eid, str) else None,
        "name": _opt_text(entry.get("name")),
        "owner": _opt_text(entry.get("owner")),
        "justification": _opt_text(entry.get("justification")),
        "ticket": _opt_text(entry.get("ticket")),
        "sources": [],
        "senders": [],
    }
    for i, value in enumerate(_as_list(entry.get("sources"))):
        if not isinstance(value, str):
            continue  # reported by the schema
        try:
            net = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            errors.append(f"field 'sources[{i}]': {value!r} is not an IP address or CIDR")
            continue
        try:
            ipaddress.ip_network(value.strip())
        except ValueError:  # only host bits can fail now
            notes.append(f"field 'sources[{i}]': {value!r} has host bits set; read as {net}")
        out["sources"].append(str(net))
    for i, value in enumerate(_as_list(entry.get("senders"))):
        if not isinstance(value, str):
            continue
        text = value.strip().lower()
        if not (_ADDRESS.fullmatch(text) or _WILDCARD.fullmatch(text)):
            errors.append(
                f"field 'senders[{i}]': {value!r} is not an address or a *@domain wildcard"
            )
            continue
        out["senders"].append(text)
    out["recipients"] = _recipients(entry.get("recipients", "any"), errors)
    for name in ("expires", "review_by"):
        out[name] = _date(entry.get(name), name, errors)
    if not out["owner"]:
        notes.append("no 'owner' (required by policy; reported as a governance finding)")
    if "expires" not in entry or entry.get("expires") is None:
        notes.append("no 'expires' (required by policy; an exception without an end is a "
                     "governance finding)")
    if out["expires"] and out["review_by"] and out["review_by"] > out["expires"]:
        notes.append(f"review_by {out['review_by']} is after expires {out['expires']}")
    return out


def _recipients(value: Any, errors: list[str]) -> list[str]:
    if isinstance(value, str):
        word = value.strip().lower()
        return [word] if word in KEYWORDS else []  # other strings: reported by the schema
    out: list[str] = []
    for i, item in enumerate(value if isinstance(value, list) else []):
        if not isinstance(item, str):
            continue
        text = item.strip().lower()
        if text in KEYWORDS and len(value) == 1:
            return [text]
        if not _ADDRESS.fullmatch(text):
            errors.append(f"field 'recipients[{i}]': {item!r} is not an address")
            continue
        out.append(text)
    return out


def _date(value: Any, name: str, errors: list[str]) -> date | None:
    """YAML gives ``2027-03-31`` as a date, quoted forms as strings; both are accepted."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
        errors.append(f"field {name!r}: {value!r} is not a date (YYYY-MM-DD)")
    return None  # other types: reported by the schema


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _opt_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _jsonable(value: Any) -> Any:
    """YAML dates (and other non-JSON scalars) as strings, so the JSON Schema sees JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _field(err: ValidationError) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(entry)"


def _error_order(err: ValidationError) -> tuple[str, str]:
    return _field(err), str(err.validator)


def _type(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _bad_timestamp(data: bytes | str) -> str | None:
    """Where the impossible date is: the node tree has marks and builds no objects."""
    try:
        stack = [yaml.compose(data, Loader=yaml.SafeLoader)]
    except yaml.YAMLError:
        return None
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            stack.extend(v for pair in reversed(node.value) for v in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif node is not None and node.tag == "tag:yaml.org,2002:timestamp":
            try:
                date.fromisoformat(str(node.value)[:10])
            except ValueError:
                mark = node.start_mark
                return (f"{node.value!r} is not a real date "
                        f"(line {mark.line + 1}, column {mark.column + 1})")
    return None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML marks are 0-based)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark, where = exc.problem_mark, exc.context_mark
        text = exc.problem or exc.context or "unreadable"
        if mark is not None:
            text += f" (line {mark.line + 1}, column {mark.column + 1}"
            if exc.context and where is not None and exc.problem:
                text += f"; {exc.context} from line {where.line + 1}"
            text += ")"
        return " ".join(text.split())
    return " ".join(str(exc).split())
