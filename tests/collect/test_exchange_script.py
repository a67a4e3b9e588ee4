"""``scripts/collect-exchange.ps1`` must run the same cmdlets, with the same parameters,
into the same files as the Python collector."""

from __future__ import annotations

import re
from pathlib import Path

from dsguard.collect.exchange import CMDLETS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "collect-exchange.ps1"
_ENTRY = re.compile(
    r"@\{ Kind = '(?P<kind>\w+)'; Cmdlet = '(?P<name>[\w-]+)'; Parameters = @\{(?P<params>[^}]*)\} \}"
)
_PARAM = re.compile(r"(\w+) = '([^']*)'")


def test_script_matches_the_python_collector() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    entries = [
        (m["kind"], m["name"], dict(_PARAM.findall(m["params"]))) for m in _ENTRY.finditer(text)
    ]
    assert entries == [(c.kind, c.name, dict(c.parameters)) for c in CMDLETS]
    for cmdlet in CMDLETS:
        # Every file lands where the bundle readers and kinds.py expect it.
        assert cmdlet.bundle_path == f"exchange/{cmdlet.kind}.json"


def test_script_is_read_only_and_writes_atomically() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    verbs = set(re.findall(r"\b(Set|New|Remove|Add|Enable|Disable)-[A-Z]\w+", text))
    assert verbs <= {"Set", "New"}  # Set-StrictMode and New-Item/New-Object only
    assert not re.search(r"\b(Set|Remove|Add|Enable|Disable)-(?!StrictMode)[A-Z]\w+", text)
    assert "ConvertTo-Json -InputObject $objects -Depth 10" in text
    assert ".part" in text and "Move-Item -Force" in text
    assert "UTF8Encoding($false)" in text  # UTF-8 without a BOM
