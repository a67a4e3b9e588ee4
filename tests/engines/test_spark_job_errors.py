"""The cluster job says in one line why it cannot read an input, and reads catalog tables by
name; ``export-tenant`` needs only the configuration files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.engines.conftest import needs_spark

from dsguard.engines import spark_job

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def tenant_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tenant context of the fixture configuration (no mail telemetry needed)."""
    bundle = tmp_path_factory.mktemp("config")
    shutil.copytree(FIXTURES / "exchange", bundle / "exchange")
    shutil.copy2(FIXTURES / "exceptions" / "exceptions.yaml", bundle)
    target = tmp_path_factory.mktemp("tenant") / "tenant.json"
    assert spark_job.main(["export-tenant", str(bundle), str(target)]) == 0
    return target


def _run(tenant: Path, out: Path, **inputs: str) -> list[str]:
    args = {"--email-events": "x", "--signins": "y", "--tenant": str(tenant), "--out": str(out)}
    args.update({f"--{k.replace('_', '-')}": v for k, v in inputs.items()})
    return ["run", *[t for kv in args.items() for t in kv], "--master", "local[1]"]


def test_export_tenant_reads_a_configuration_only_bundle(tenant_json: Path) -> None:
    doc = json.loads(tenant_json.read_text())
    assert doc["t_domains"] and doc["t_connectors"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "No such file"),
        ("{not json", "Expecting property name"),
        ('{"t_domains": []}', "not a tenant context written by export-tenant (no t_ranges"),
    ],
)
def test_a_bad_tenant_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    tenant = tmp_path / "tenant.json"
    if content is not None:
        tenant.write_text(content)
    assert spark_job.main(_run(tenant, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsguard-spark: error: --tenant ") and expected in err
    assert "Traceback" not in err


def test_export_tenant_of_no_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert spark_job.main(["export-tenant", str(tmp_path / "none"), str(tmp_path / "t")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_spark_error_classes_read_from_py4j_text() -> None:
    text = (
        "An error occurred while calling o41.load.\n: org.apache.spark.SparkClassNotFound"
        "Exception: [DATA_SOURCE_NOT_FOUND] Failed to find the data source: delta. Make sure"
        "\n\tat org.apache.spark.sql.errors.QueryExecutionErrors$.dataSourceNotFoundError"
    )
    assert spark_job.spark_error(Exception(text), "delta") == spark_job.DELTA_MISSING
    assert spark_job.spark_error(Exception(text), "parquet").startswith(
        "DATA_SOURCE_NOT_FOUND: Failed to find the data source: delta"
    )
    assert spark_job.spark_error(Exception("\n  boom\nmore"), "csv") == "boom"


@needs_spark
@pytest.mark.slow
@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"email_events_format": "delta"}, "--email-events x: this Spark session has no Delta"),
        ({"email_events_format": "parquet"}, "--email-events x: no such path"),
        (
            {"email_events_format": "csv", "signins": "nowhere.signins", "signins_format": "table"},
            "--signins nowhere.signins: no such table",
        ),
    ],
)
def test_an_unreadable_input_is_one_line(
    tenant_json: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    inputs: dict[str, str],
    expected: str,
) -> None:
    if inputs.get("email_events_format") == "csv":
        inputs["email_events"] = str(FIXTURES / "email_events" / "email_events_defender.csv")
    assert spark_job.main(_run(tenant_json, tmp_path / "out", **inputs)) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsguard-spark: error: ") and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_error_quoting_the_input_is_inert_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark may quote a malformed record, and a record's subject is the attacker's."""

    def quoting(_: object) -> int:
        raise spark_job.JobError("--email-events x: MALFORMED_RECORD: \x1b]0;owned\x07\x1b[2J")

    monkeypatch.setattr(spark_job, "run", quoting)
    assert spark_job.main(_run(tmp_path / "t.json", tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "MALFORMED_RECORD" in err and "\x1b" not in err and "\x07" not in err
