"""The check engine: registry contract, never-raise, framework mappings, remediation quoting,
metadata loading, and the public API."""

from __future__ import annotations

from pathlib import Path

import pytest

import dsguard.posture as posture
from dsguard.evidence.snapshot import Snapshot
from dsguard.frameworks import load_frameworks, mappings_for
from dsguard.posture import CHECKS, Check, run_checks
from dsguard.posture.kinds import INPUTS, KINDS
from dsguard.posture.metadata import MetadataError, load_metadata
from dsguard.posture.powershell import placeholders, ps_quote, render
from dsguard.posture.values import MalformedValue, as_bool, as_int, as_list, connector_domain
from dsguard.results import Finding
from posture.support import Bundle, one

CATALOGUE = {
    "DS-ORG-001", "DS-ORG-002", "DS-ORG-003", "DS-ORG-004",
    "DS-CON-001", "DS-CON-002", "DS-CON-003", "DS-CON-004", "DS-CON-005",
    "DS-ETR-001", "DS-ETR-002", "DS-ETR-003",
    "DS-FLT-001", "DS-FLT-002", "DS-FLT-003", "DS-FLT-004",
    "DS-SPF-001", "DS-DNS-001", "DS-DNS-002", "DS-DNS-003", "DS-DNS-004",
    "DS-APP-001", "DS-APP-002", "DS-EXP-001",
}


def test_registry_holds_the_catalogue() -> None:
    assert set(CHECKS) == CATALOGUE
    for check_id, check in CHECKS.items():
        assert check.id == check_id == check.metadata.id
        assert set(check.metadata.inputs) <= INPUTS


def test_public_api_is_curated() -> None:
    public = sorted((n for n in vars(posture) if not n.startswith("_")
                     and not isinstance(getattr(posture, n), type(posture))), key=str.casefold)
    assert sorted(posture.__all__, key=str.casefold) == public


def test_empty_bundle_gives_no_pass_and_no_error(bundle: Bundle) -> None:
    findings = run_checks(bundle.snapshot())
    assert {f.check_id for f in findings} == CATALOGUE
    assert {f.status for f in findings} <= {"MANUAL", "NOT_APPLICABLE"}
    for f in findings:
        assert f.status_extended, f


def test_a_check_that_raises_becomes_an_error_finding(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = CHECKS["DS-ORG-001"]

    def boom(snapshot: Snapshot) -> list[Finding]:
        raise RuntimeError("kaput")

    monkeypatch.setattr(check, "execute", boom)
    findings = run_checks(bundle.snapshot(), only=["DS-ORG-001", "DS-ORG-002"])
    error = one([f for f in findings if f.check_id == "DS-ORG-001"])
    assert error.status == "ERROR" and error.resource == "DS-ORG-001"
    assert "kaput" in error.status_extended and error.frameworks
    assert one([f for f in findings if f.check_id == "DS-ORG-002"]).status == "MANUAL"


def test_findings_carry_framework_mappings_from_the_data(bundle: Bundle) -> None:
    bundle.config("organization_config", {"Name": "c", "RejectDirectSend": False})
    finding = one(bundle.run("DS-ORG-001"))
    assert finding.frameworks == mappings_for("DS-ORG-001")
    assert finding.frameworks["cis_m365"] == ["6.5.5"]
    assert "cisa_scubagear" not in finding.frameworks  # ScubaGear has no such policy
    legacy = mappings_for("DS-FLT-003")["cisa_scubagear"]
    assert legacy == ["MS.SECURITYSUITE.6.2v1", "MS.EXO.14.3v2"]


def test_frameworks_keep_deliberately_empty_requirements() -> None:
    frameworks = load_frameworks()
    assert set(frameworks) == {"nist_csf_2.0", "cis_m365", "cisa_scubagear",
                               "owasp_nhi_top10", "csa_maestro"}
    for framework in frameworks.values():
        assert framework.version
        assert any(not r.checks for r in framework.requirements) or framework.key == "cis_m365"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", "'plain'"),
        ("O'Brien's rule", "'O''Brien''s rule'"),
        ("smart \u2019quote", "'smart \u2019\u2019quote'"),
        ("$(Remove-Mailbox x)", "'$(Remove-Mailbox x)'"),
        ("a\x00b\x1bc", "'abc'"),
    ],
)
def test_powershell_quoting(value: str, quoted: str) -> None:
    assert ps_quote(value) == quoted


def test_remediation_rendering() -> None:
    template = "Set-X -Identity {{rule}} -Domains {{domains}} -Other {{missing}} @{}"
    assert placeholders(template) == {"rule", "domains", "missing"}
    text = render(template, {"rule": "a'b", "domains": ["x.com", "y.com"]})
    assert text == "Set-X -Identity 'a''b' -Domains 'x.com','y.com' -Other <missing> @{}"


def test_fail_findings_have_remediation_and_others_do_not(bundle: Bundle) -> None:
    bundle.config("organization_config", {"Name": "c", "RejectDirectSend": True})
    assert one(bundle.run("DS-ORG-001")).remediation == ""


def test_metadata_loader_enforces_id_equals_file_name(tmp_path: Path) -> None:
    source = Path(CHECKS["DS-ORG-001"].__module__.replace(".", "/"))
    yaml_text = (Path(__file__).resolve().parents[2] / "src" / source).with_suffix(
        ".yaml").read_text()
    wrong = tmp_path / "ds_org_002.yaml"
    wrong.write_text(yaml_text)
    with pytest.raises(MetadataError, match="does not match the file name"):
        load_metadata(wrong)
    broken = tmp_path / "ds_org_001.yaml"
    broken.write_text(yaml_text.replace("severity: medium", "severity: severe"))
    with pytest.raises(MetadataError, match="severity"):
        load_metadata(broken)
    broken.write_text("- not a mapping")
    with pytest.raises(MetadataError, match="mapping"):
        load_metadata(broken)


def test_check_subclass_needs_metadata_beside_it() -> None:
    with pytest.raises(MetadataError):
        type("Orphan", (Check,), {"__module__": __name__})


def test_value_readers() -> None:
    assert as_bool("$true") is True and as_bool("False") is False and as_bool(None) is None
    assert as_int("-1") == -1 and as_int(9.0) == 9 and as_int(None) is None
    assert as_list(None) == [] and as_list("a") == ["a"] and as_list({"value": [1]}) == [1]
    assert connector_domain("smtp:*;1") == "*"
    assert connector_domain("SMTP:Contoso.com;10") == "contoso.com"
    assert connector_domain("contoso.com") == "contoso.com"
    for bad in (lambda: as_bool("maybe"), lambda: as_int(True), lambda: as_list(object())):
        with pytest.raises(MalformedValue):
            bad()


def test_every_kind_has_a_documented_bundle_path() -> None:
    for kind, info in KINDS.items():
        assert info.bundle_path.endswith(f"/{kind}.json")


def test_two_kinds_collected_empty_with_identical_files(tmp_path: Path) -> None:
    from dsguard.evidence.store import EvidenceStore
    from dsguard.sources.exchange_config import ExchangeConfigReader

    exchange = tmp_path / "exchange"
    exchange.mkdir()
    paths = []
    for kind in ("cas_mailbox", "transport_rules"):
        (exchange / f"{kind}.json").write_text("[]")
        paths.append((ExchangeConfigReader(), exchange / f"{kind}.json"))
    with EvidenceStore(tmp_path / "e.duckdb") as store:
        store.ingest(paths, root=tmp_path)
        snapshot = Snapshot(store.con)
        assert snapshot.config("cas_mailbox") == []
        assert snapshot.config("transport_rules") == []
