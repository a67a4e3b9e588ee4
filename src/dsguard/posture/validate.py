"""Lint the check corpus and the framework files; CI runs it through the test suite.

Reads the files themselves rather than the imported registry, so one broken metadata file is
reported as an issue instead of stopping the import. Issues are typed (pySigma's validator
style): a class per kind of problem, with its description and severity as class variables.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from dsguard.frameworks import FRAMEWORKS_DIR, FrameworkError, framework_files, load_framework
from dsguard.posture.metadata import SEVERITIES, CheckMetadata, module_name
from dsguard.posture.powershell import placeholders

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
# A check id passed to a call or subscript (``run("DS-ORG-001")``, ``CHECKS["DS-ORG-001"]``,
# a parametrize tuple): a test that exercises the check, not a mere list of all ids.
_ID_USED = re.compile(r"[(\[]\s*[\"'](DS-[A-Z]{3}-\d{3})[\"']")


@dataclass(frozen=True)
class Issue:
    """One problem; ``where`` names the file (and item) it is in."""

    description: ClassVar[str] = "validation issue"
    where: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.where}: {self.description}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True)
class DuplicateIdIssue(Issue):
    description: ClassVar[str] = "check id used by more than one metadata file"


@dataclass(frozen=True)
class IncompleteMetadataIssue(Issue):
    description: ClassVar[str] = "metadata is missing, unreadable or incomplete"


@dataclass(frozen=True)
class InvalidSeverityIssue(Issue):
    description: ClassVar[str] = f"severity not in {', '.join(SEVERITIES)}"


@dataclass(frozen=True)
class IdFileMismatchIssue(Issue):
    description: ClassVar[str] = "check id does not match its file name"


@dataclass(frozen=True)
class MissingModuleIssue(Issue):
    description: ClassVar[str] = "metadata without a check module, or a module without metadata"


@dataclass(frozen=True)
class UnknownPlaceholderIssue(Issue):
    description: ClassVar[str] = "remediation placeholder the check never fills"


@dataclass(frozen=True)
class InvalidFrameworkIssue(Issue):
    description: ClassVar[str] = "framework file is invalid"


@dataclass(frozen=True)
class DuplicateRequirementIssue(Issue):
    description: ClassVar[str] = "requirement id used twice in one framework"


@dataclass(frozen=True)
class UnknownCheckMappingIssue(Issue):
    description: ClassVar[str] = "framework requirement maps to a check that does not exist"


@dataclass(frozen=True)
class UntestedCheckIssue(Issue):
    description: ClassVar[str] = "no test references this check id"


_REQUIRED = tuple(
    name for name, f in CheckMetadata.model_fields.items() if f.is_required()
)


def _filled_placeholders(module: Path) -> set[str] | None:
    """Keys passed as ``values={...}`` in the module (``None`` when it cannot be told)."""
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys.update(k.value for k in node.keys if isinstance(k, ast.Constant)
                        and isinstance(k.value, str))
    return keys


def validate_checks(checks_dir: Path = CHECKS_DIR) -> tuple[list[Issue], set[str]]:
    """Issues in the check metadata files, and the set of valid check ids."""
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    ids: set[str] = set()
    yamls = sorted(checks_dir.glob("*.yaml"))
    modules = {p.stem for p in checks_dir.glob("*.py") if not p.name.startswith("_")}
    for path in yamls:
        where = path.name
        if path.stem not in modules:
            issues.append(MissingModuleIssue(where, "no check module beside it"))
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            issues.append(IncompleteMetadataIssue(where, str(exc).splitlines()[0]))
            continue
        if not isinstance(data, dict):
            issues.append(IncompleteMetadataIssue(where, "not a mapping"))
            continue
        check_id = str(data.get("id", ""))
        if check_id:
            if check_id in seen:
                issues.append(DuplicateIdIssue(where, f"{check_id} also in {seen[check_id]}"))
            seen[check_id] = where
            if module_name(check_id) != path.stem:
                issues.append(IdFileMismatchIssue(where, f"id {check_id}"))
        missing = [f for f in _REQUIRED if not data.get(f)]
        if missing:
            issues.append(IncompleteMetadataIssue(where, "missing " + ", ".join(missing)))
        if "severity" in data and data["severity"] not in SEVERITIES:
            issues.append(InvalidSeverityIssue(where, repr(data["severity"])))
        try:
            meta = CheckMetadata.model_validate(data)
        except ValidationError as exc:
            if not missing:
                errors = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                    if e["loc"] != ("severity",)
                )
                if errors:
                    issues.append(IncompleteMetadataIssue(where, errors))
            continue
        ids.add(meta.id)
        filled = _filled_placeholders(path.with_suffix(".py"))
        if filled is not None:
            unknown = placeholders(meta.remediation) - filled
            if unknown:
                issues.append(UnknownPlaceholderIssue(where, ", ".join(sorted(unknown))))
    for stem in sorted(modules - {p.stem for p in yamls}):
        issues.append(MissingModuleIssue(f"{stem}.py", "no metadata file beside it"))
    return issues, ids


def validate_frameworks(check_ids: set[str], frameworks_dir: Path = FRAMEWORKS_DIR) -> list[Issue]:
    """Every framework file loads, and every mapping points at a real check."""
    issues: list[Issue] = []
    keys: set[str] = set()
    for path in framework_files(frameworks_dir):
        try:
            framework = load_framework(path)
        except FrameworkError as exc:
            issues.append(InvalidFrameworkIssue(path.name, str(exc).splitlines()[0]))
            continue
        if framework.key in keys:
            issues.append(InvalidFrameworkIssue(path.name, f"key {framework.key} used twice"))
        keys.add(framework.key)
        req_ids: set[str] = set()
        for req in framework.requirements:
            if req.id in req_ids:
                issues.append(DuplicateRequirementIssue(path.name, req.id))
            req_ids.add(req.id)
            for check_id in req.checks:
                if check_id not in check_ids:
                    issues.append(UnknownCheckMappingIssue(f"{path.name}: {req.id}", check_id))
    return issues


def validate_tests(check_ids: set[str], tests_dir: Path) -> list[Issue]:
    """Every check id is exercised by at least one test module under ``tests_dir``."""
    referenced: set[str] = set()
    for path in tests_dir.rglob("*.py"):
        referenced.update(_ID_USED.findall(path.read_text(encoding="utf-8")))
    return [UntestedCheckIssue(cid) for cid in sorted(check_ids - referenced)]


def validate(
    *,
    checks_dir: Path = CHECKS_DIR,
    frameworks_dir: Path = FRAMEWORKS_DIR,
    tests_dir: Path | None = None,
) -> list[Issue]:
    """All issues; ``tests_dir`` (e.g. ``tests/posture``) enables the untested-check rule."""
    issues, ids = validate_checks(checks_dir)
    issues += validate_frameworks(ids, frameworks_dir)
    if tests_dir is not None:
        issues += validate_tests(ids, tests_dir)
    return issues
