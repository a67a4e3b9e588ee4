"""The corpus validator: runs in CI through this test, and catches each kind of issue."""

from __future__ import annotations

import shutil
from pathlib import Path

from dsguard.frameworks import FRAMEWORKS_DIR
from dsguard.posture.validate import (
    CHECKS_DIR,
    DuplicateIdIssue,
    DuplicateRequirementIssue,
    IdFileMismatchIssue,
    IncompleteMetadataIssue,
    InvalidFrameworkIssue,
    InvalidSeverityIssue,
    MissingModuleIssue,
    UnknownCheckMappingIssue,
    UnknownPlaceholderIssue,
    UntestedCheckIssue,
    validate,
)

TESTS_DIR = Path(__file__).resolve().parent


def test_the_corpus_has_no_issues() -> None:
    issues = validate(tests_dir=TESTS_DIR)
    assert issues == [], "\n".join(str(i) for i in issues)


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    checks = tmp_path / "checks"
    frameworks = tmp_path / "frameworks"
    shutil.copytree(CHECKS_DIR, checks, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(FRAMEWORKS_DIR, frameworks,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return checks, frameworks


def test_each_issue_kind_is_detected(tmp_path: Path) -> None:
    checks, frameworks = _copy(tmp_path)
    org1 = (checks / "ds_org_001.yaml").read_text()
    # Duplicate id (and a file name that does not match it).
    (checks / "ds_org_009.yaml").write_text(org1)
    (checks / "ds_org_009.py").write_text("")
    # Incomplete metadata and an invalid severity.
    (checks / "ds_org_002.yaml").write_text(
        "id: DS-ORG-002\ntitle: Short but long enough\nfamily: ORG\nseverity: severe\n")
    # A remediation placeholder nobody fills.
    (checks / "ds_flt_002.yaml").write_text(
        (checks / "ds_flt_002.yaml").read_text().replace("{{policy}}", "{{nobody}}"))
    # Metadata without module, module without metadata.
    (checks / "ds_dns_009.yaml").write_text(org1.replace("DS-ORG-001", "DS-DNS-009"))
    (checks / "ds_etr_009.py").write_text("")
    # A mapping to a check that does not exist, a duplicate requirement, a broken file.
    nist = frameworks / "nist_csf_2.0.yaml"
    nist.write_text(nist.read_text().replace("[DS-CON-005]", "[DS-CON-099]")
                    + "  - id: PR.PS-04\n    title: again\n    checks: []\n")
    (frameworks / "broken.yaml").write_text("schema_version: 1\nkey: BAD KEY\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text('IDS = ["DS-ORG-001"]\n')

    issues = validate(checks_dir=checks, frameworks_dir=frameworks, tests_dir=tests)
    kinds = {type(i) for i in issues}
    assert kinds >= {
        DuplicateIdIssue, IdFileMismatchIssue, IncompleteMetadataIssue, InvalidSeverityIssue,
        UnknownPlaceholderIssue, MissingModuleIssue, UnknownCheckMappingIssue,
        DuplicateRequirementIssue, InvalidFrameworkIssue, UntestedCheckIssue,
    }, "\n".join(map(str, issues))
    assert any(isinstance(i, UnknownCheckMappingIssue) and i.detail == "DS-CON-099"
               for i in issues)
    untested = {i.where for i in issues if isinstance(i, UntestedCheckIssue)}
    assert "DS-ORG-001" not in untested and "DS-FLT-001" in untested
    assert all(str(i) for i in issues)
