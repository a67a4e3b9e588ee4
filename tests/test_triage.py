"""``dsguard triage`` on real-world mail (read from ../shared, never copied) and on
hand-built Exchange Online header sets."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dsguard.triage import triage

PATHS = {
    "direct_send",
    "anonymous_external",
    "partner_connector",
    "onprem_connector",
    "authenticated",
    "unknown",
}

SPOOF = """\
Authentication-Results: spf=fail (sender IP is 198.51.100.23)
 smtp.mailfrom=contoso.example; dkim=none (message not signed)
 header.d=none;dmarc=fail action=none header.from=contoso.example;compauth=fail
 reason=601
Received: from vps-1.example.net (198.51.100.23) by
 DB5EUR01FT038.mail.protection.outlook.com (10.152.4.201) with Microsoft SMTP
 Server id 15.20.1.1 via Frontend Transport; Tue, 10 Nov 2026 09:00:00 +0000
Received: from localhost (127.0.0.1) by vps-1.example.net; Tue, 10 Nov 2026 08:59:59 +0000
X-MS-Exchange-Organization-AuthAs: Anonymous
X-MS-Exchange-Organization-AuthSource: DB5EUR01FT038.eop-EUR01.prod.protection.outlook.com
X-MS-Exchange-Organization-MessageDirectionality: Incoming
X-MS-Exchange-CrossTenant-FromEntityHeader: Internet
X-Forefront-Antispam-Report: CIP:198.51.100.23;CTRY:UA;LANG:en;SCL:5;SRV:;IPV:NLI;SFV:SPM;H:vps-1.example.net;PTR:InfoDomainNonexistent;CAT:SPOOF;SFS:;DIR:INB;
X-Mailer: WindowsPowerShell/5.1
Return-Path: jane@contoso.example
From: "Jane <script>alert(1)</script>" <jane@contoso.example>
To: jane@contoso.example
Subject: New Missed Fax-msg
Message-ID: <x1@vps-1.example.net>
Date: Tue, 10 Nov 2026 08:59:59 +0000

fax
"""

AUTHENTICATED = """\
Received: from AM0PR01MB1234.eurprd01.prod.outlook.com (2603:10a6::1) by
 AM0PR01MB5678.eurprd01.prod.outlook.com with HTTPS; Tue, 10 Nov 2026 09:00:00 +0000
X-MS-Exchange-Organization-AuthAs: Internal
X-MS-Exchange-Organization-AuthSource: AM0PR01MB1234.eurprd01.prod.outlook.com
X-MS-Exchange-Organization-AuthMechanism: 04
X-MS-Exchange-Organization-MessageDirectionality: Originating
X-MS-Exchange-CrossTenant-FromEntityHeader: Hosted
X-MS-Exchange-CrossTenant-MailboxType: HOSTED
From: Jane <jane@contoso.example>
To: bob@contoso.example
Subject: lunch
Date: Tue, 10 Nov 2026 09:00:00 +0000

hi
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", "\r\n").encode())
    return p


def test_direct_send_spoof_is_classified_and_explained(tmp_path: Path) -> None:
    (r,) = list(triage([_write(tmp_path, "s.eml", SPOOF)], {"contoso.example"}))
    assert r.error is None
    assert r.path == "direct_send" and r.internal_looking
    ids = {s.signal_id for s in r.signals}
    assert {"DSG-PATH-001", "DSG-SELF-001", "DSG-AUTH-001", "DSG-HDR-001"} <= ids
    assert r.severity in ("high", "critical")
    assert any("AuthAs: Anonymous" in str(step.get("because", "")) for step in r.evidence_chain)


def test_authenticated_submission_is_not_direct_send(tmp_path: Path) -> None:
    (r,) = list(triage([_write(tmp_path, "a.eml", AUTHENTICATED)], {"contoso.example"}))
    assert r.path == "authenticated"
    assert r.severity == "informational" and not r.signals


def test_domains_are_inferred_from_recipients_and_said_so(tmp_path: Path) -> None:
    (r,) = list(triage([_write(tmp_path, "s.eml", SPOOF)]))
    assert r.path == "direct_send"
    assert any("inferred from the recipients" in n for n in r.notes)


def test_cli_json_lines_and_exit_status(tmp_path: Path) -> None:
    good = _write(tmp_path, "s.eml", SPOOF)
    bad = tmp_path / "junk.eml"
    bad.write_bytes(b"")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dsguard.cli",
            "triage",
            str(good),
            str(bad),
            "--json",
            "--domain",
            "contoso.example",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [Path(x["file"]).name for x in lines] == ["s.eml", "junk.eml"]
    assert lines[0]["path"] == "direct_send" and lines[1]["error"]
    assert "Traceback" not in proc.stderr


def test_terminal_output_neutralises_escape_sequences(tmp_path: Path) -> None:
    text = SPOOF.replace("Subject: New Missed Fax-msg", "Subject: \x1b[31mred\x1b]0;title\x07")
    msg = _write(tmp_path, "e.eml", text)
    proc = subprocess.run(
        [sys.executable, "-m", "dsguard.cli", "triage", str(msg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "red" in proc.stdout


@pytest.mark.realmail
def test_real_mail_never_crashes_and_direct_send_shapes_are_found(real_eml_dir: Path) -> None:
    root = real_eml_dir / "phishing_pot"
    manifest = {
        r["file"]: r
        for r in csv.DictReader((root / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
    }
    results = {Path(r.file).name: r for r in triage([root])}
    assert set(results) == set(manifest)
    shaped = 0
    for name, row in manifest.items():
        r = results[name]
        if r.error is not None:
            assert "\n" not in r.error and r.error.strip()
            continue
        assert r.path in PATHS
        if (
            row["label"].startswith("internal-looking-spoof")
            and row["authas"] == "Anonymous"
            and row["directionality"] == "Incoming"
        ):
            shaped += 1
            assert r.path == "direct_send", name
            assert r.internal_looking
    assert shaped >= 80
