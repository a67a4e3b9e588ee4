"""The KQL hunting pack: golden files keep the queries stable, every column they name exists
in Microsoft's documented schema, and tenant data cannot break out of a string literal.

Regenerate the golden files after an intended change with
``DSGUARD_UPDATE_GOLDEN=1 pytest tests/report/test_kql.py`` and review the diff.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.report import kql
from dsguard.signals.rules import catalogue

GOLDEN = Path(__file__).resolve().parent / "golden" / "kql"
DOMAINS = ["contoso.com", "fabrikam.co.uk", "xn--bcher-kva.example"]
EMAIL_ONLY_FORBIDDEN = {"ConnectorId", "RecipientEmailDomain", "ActionType", "ErrorCode",
                        "Directionality"}  # fmt: skip


def pack() -> dict[str, str]:
    return kql.render_pack(DOMAINS, source="test fixture")


# --------------------------------------------------------------------------------- golden


def test_pack_matches_golden_files() -> None:
    files = pack()
    if os.environ.get("DSGUARD_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text, encoding="utf-8", newline="\n")
    on_disk = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert on_disk == set(files), "golden files differ in names; see the module docstring"
    for rel, text in files.items():
        assert (GOLDEN / rel).read_text(encoding="utf-8") == text, rel


def test_every_query_exists_for_both_platforms_and_names_real_rules() -> None:
    files = pack()
    rule_ids = {r.id for r in catalogue()}
    for q in kql.QUERIES:
        assert q.rules and set(q.rules) <= rule_ids, q.id
        for platform in kql.PLATFORMS:
            text = files[f"{platform}/{q.id}.kql"]
            assert all(f"Implements {r} " in text for r in q.rules)
    assert {q.id for q in kql.QUERIES} >= {
        "direct-send-inventory",
        "own-domain-auth-failure",
        "self-send",
        "header-only-spoof",
        "identity-no-signin",
        "identity-signin-country",
        "new-source-for-sender",
    }


# --------------------------------------------------------------------------------- schema


@pytest.mark.parametrize("platform", sorted(kql.PLATFORMS))
@pytest.mark.parametrize("query", kql.QUERIES, ids=lambda q: q.id)
def test_queries_name_only_documented_columns(platform: str, query: kql.HuntingQuery) -> None:
    p = kql.PLATFORMS[platform]
    text = pack()[f"{platform}/{query.id}.kql"]
    assert kql.unknown_columns(text, query.tables(p)) == set()
    columns, _, tables = kql.referenced_names(text)
    tables_yaml = kql.load_tables()
    assert tables == {tables_yaml[k]["table"] for k in query.tables(p)}
    assert p.time_column in columns  # the platform's own time column, and not the other's
    other = "TimeGenerated" if p.time_column == "Timestamp" else "Timestamp"
    assert other not in {t.text for t in kql.tokens(text)}
    if not query.signins:
        assert not columns & EMAIL_ONLY_FORBIDDEN


def test_defender_identity_queries_also_fit_the_beta_sign_in_table() -> None:
    """The README tells tenants without EntraIdSignInEvents to swap in AADSignInEventsBeta."""
    files = pack()
    for q in kql.QUERIES:
        if not q.signins:
            continue
        text = files[f"defender/{q.id}.kql"].replace("EntraIdSignInEvents", "AADSignInEventsBeta")
        keys = ("defender:EmailEvents", "defender:AADSignInEventsBeta")
        assert kql.unknown_columns(text, keys) == set(), q.id


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ('EmailEvents | where ActionType == "Reject"', {"ActionType"}),
        ('EmailEvents | where ErrorCode has "5.7.68"', {"ErrorCode"}),
        ("EmailEvents | summarize count() by RecipientEmailDomain", {"RecipientEmailDomain"}),
        ("EmailEvents | where isnotempty(ConnectorId)", {"ConnectorId"}),
        ('EmailEvents | where Directionality == "Inbound"', {"Directionality"}),
        ("EmailEvents | extend ActionType = tostring(ActionType)", {"ActionType"}),
        ("EmailEvents | where TimeGenerated > ago(1d)", {"TimeGenerated"}),
        ("SigninLogs | take 1", {"table SigninLogs"}),
        ("EmailEvents | join (EmailEvents) on $left.Foo == $right.NetworkMessageId", {"Foo"}),
    ],
)
def test_column_check_catches_columns_that_do_not_exist(query: str, bad: set[str]) -> None:
    assert kql.unknown_columns(query, ["defender:EmailEvents"]) == bad


def test_column_check_ignores_aliases_properties_strings_and_comments() -> None:
    query = """
    // ActionType in a comment is not a column
    let Foo = dynamic(["ActionType"]);
    EmailEvents
    | extend Auth = parse_json(AuthenticationDetails)
    | extend SPF = tostring(Auth.SPF), Note = @'ErrorCode "x"'
    | summarize Messages = count() by SPF, Note
    | where Messages > 0 and array_length(Foo) > 0
    """
    assert kql.unknown_columns(query, ["defender:EmailEvents"]) == set()


def test_tables_data_has_no_known_mistakes() -> None:
    tables = kql.load_tables()
    for key in ("defender:EmailEvents", "sentinel:EmailEvents"):
        assert not set(tables[key]["columns"]) & EMAIL_ONLY_FORBIDDEN
    assert "Timestamp" not in tables["sentinel:EmailEvents"]["columns"]
    assert tables["defender:EntraIdSignInEvents"]["columns"]["ErrorCode"] == "int"
    assert tables["sentinel:SigninLogs"]["columns"]["ResultType"] == "string"


# ------------------------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("contoso.com", '"contoso.com"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ('x") | union SigninLogs //', '"x\\") | union SigninLogs //"'),
        ("tab\there\nnl", '"tab\\there\\nnl"'),
    ],
)
def test_kql_string_escapes(value: str, literal: str) -> None:
    assert kql.kql_string(value) == literal
    toks = list(kql.tokens(literal))
    assert [t.kind for t in toks] == ["string"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc",)), max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_string_stays_inside_its_literal(value: str) -> None:
    if "\u2028" in value or "\u2029" in value:
        return
    literal = kql.kql_string(value)
    toks = list(kql.tokens(f"let D = dynamic([{literal}]); EmailEvents"))
    assert [t.text for t in toks if t.kind != "string"] == [
        "let", "D", "=", "dynamic", "(", "[", "]", ")", ";", "EmailEvents",
    ]  # fmt: skip


@pytest.mark.parametrize("value", ["a\rb", "a\x00b", "\x1b[31m", "a\u2028b"])
def test_kql_string_refuses_controls_without_an_escape(value: str) -> None:
    with pytest.raises(kql.KqlError):
        kql.kql_string(value)


@pytest.mark.parametrize(
    "value",
    [
        'evil.com") | union SigninLogs //',
        "contoso.com\n| take 1",
        "contoso",
        "-bad.com",
        "a..b",
        "x" * 64 + ".com",
        "",
        "exa mple.com",
        'quote".com',
    ],
)
def test_hostile_or_invalid_domains_are_refused(value: str) -> None:
    with pytest.raises(kql.KqlError):
        kql.normalise_domain(value)


def test_domains_are_normalised() -> None:
    assert kql.normalise_domain(" Contoso.COM. ") == ["contoso.com"]
    assert kql.normalise_domain("Bücher.example") == ["xn--bcher-kva.example", "bücher.example"]
    assert kql.normalise_domains(["b.com", "a.com", "B.com"]) == ["a.com", "b.com"]


@pytest.mark.parametrize("domains", [[], ['x.com") | take 1 //'], ["Contoso.COM"]])
def test_render_refuses_anything_but_normalised_domains(domains: list[str]) -> None:
    with pytest.raises(kql.KqlError):
        kql.render(kql.QUERIES[0], kql.PLATFORMS["defender"], domains)


# ---------------------------------------------------------------------- bundle and command


def accepted_domains_bundle(root: Path, names: list[str], utf16: bool = False) -> Path:
    objs = [{"DomainName": n, "Name": n, "DomainType": "Authoritative"} for n in names]
    text = json.dumps(objs, indent=2)
    path = root / "bundle" / "exchange" / "accepted_domains.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le") if utf16 else text.encode())
    return root / "bundle"


def test_domains_from_bundle_uses_the_powershell_reader(tmp_path: Path) -> None:
    bundle = accepted_domains_bundle(tmp_path, ["Contoso.com", "contoso.onmicrosoft.com"], True)
    assert kql.domains_from_bundle(bundle) == ["contoso.com", "contoso.onmicrosoft.com"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dsguard.cli", "kql", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_writes_the_pack_from_a_bundle(tmp_path: Path) -> None:
    bundle = accepted_domains_bundle(tmp_path, ["contoso.com"])
    out = tmp_path / "kql"
    proc = run(str(bundle), "--domain", "fabrikam.co.uk", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["domains"] == ["contoso.com", "fabrikam.co.uk"]
    assert len(summary["files"]) == 2 * len(kql.QUERIES) + 1
    text = (out / "sentinel" / "self-send.kql").read_text(encoding="utf-8")
    assert 'let AcceptedDomains = dynamic(["contoso.com", "fabrikam.co.uk"]);' in text


@pytest.mark.parametrize(
    "args",
    [
        ["--domain", 'evil.com") | union SigninLogs //'],
        [],
        ["/no/such/bundle"],
    ],
)
def test_command_input_errors_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    proc = run(*args, "--out", str(tmp_path / "kql"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("dsguard: error:") and "\n" not in err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "kql").exists()


def test_command_takes_domains_when_the_bundle_lacks_them(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    out = tmp_path / "kql"
    proc = run(
        str(tmp_path / "bundle"), "-d", "contoso.com", "-o", str(out), "--lookback-days", "7"
    )
    assert proc.returncode == 0, proc.stderr
    text = (out / "defender" / "direct-send-inventory.kql").read_text(encoding="utf-8")
    assert "let Lookback = 7d;" in text
    assert "Accepted domains (from --domain)" in (out / "README.md").read_text(encoding="utf-8")


def test_command_refuses_a_hostile_domain_in_a_bundle(tmp_path: Path) -> None:
    bundle = accepted_domains_bundle(tmp_path, ["contoso.com", 'x.com"]); SigninLogs //'])
    proc = run(str(bundle), "--out", str(tmp_path / "kql"))
    assert proc.returncode == 2 and "not a domain name" in proc.stderr


# ------------------------------------------------------- Microsoft's own parser (optional)

KUSTO_CHECK = r"""
require(process.env.KUSTO_JS + "/bridge.js");
require(process.env.KUSTO_JS + "/Kusto.Language.Bridge.js");
const fs = require("fs");
const K = Kusto.Language;
const [schemaFile, ...files] = process.argv.slice(2);
const schemas = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
let errors = 0;
for (const f of files) {
  const members = new (System.Collections.Generic.List$1(K.Symbols.Symbol))();
  for (const [name, cols] of Object.entries(schemas[f.split("/").slice(-2)[0]]))
    members.add(new K.Symbols.TableSymbol.$ctor7(name, cols, null));
  let db = null;
  for (const k of Object.keys(K.Symbols.DatabaseSymbol))
    if (!db && (k.startsWith("$ctor") || k === "ctor"))
      try { const d = new K.Symbols.DatabaseSymbol[k]("db", members, false);
            if (d && d.Name === "db") db = d; } catch (e) {}
  const text = fs.readFileSync(f, "utf8");
  const diags = K.KustoCode.ParseAndAnalyze(text, K.GlobalState.Default.WithDatabase(db))
    .GetDiagnostics();
  for (let i = 0; i < diags.Count; i++) {
    const d = diags.getItem(i);
    if (d.Severity === "Error") { errors++; console.log(f, d.Code, d.Message); }
  }
}
process.exit(errors ? 1 : 0);
"""


def test_queries_pass_kusto_language_analysis(tmp_path: Path) -> None:
    """Syntax and name resolution by Microsoft's Kusto.Language (the npm package
    ``@kusto/language-service-next``), which ``.ci/run`` installs where npm is present; this
    runs when ``DSGUARD_KUSTO_JS`` names the package folder and ``node`` is on PATH."""
    folder = os.environ.get("DSGUARD_KUSTO_JS")
    node = shutil.which("node")
    if not folder or not node:
        pytest.skip("set DSGUARD_KUSTO_JS to @kusto/language-service-next to run")
    schemas: dict[str, dict[str, str]] = {}
    for t in kql.load_tables().values():
        cols = ", ".join(
            f"['{c}']:{'bool' if ty == 'boolean' else ty}" for c, ty in t["columns"].items()
        )
        schemas.setdefault(t["platform"], {})[t["table"]] = f"({cols})"
    (tmp_path / "schemas.json").write_text(json.dumps(schemas))
    (tmp_path / "check.js").write_text(KUSTO_CHECK)
    files = kql.write_pack(tmp_path / "pack", DOMAINS)
    proc = subprocess.run(
        [node, str(tmp_path / "check.js"), str(tmp_path / "schemas.json"),
         *(str(f) for f in files if f.suffix == ".kql")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KUSTO_JS": folder},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
