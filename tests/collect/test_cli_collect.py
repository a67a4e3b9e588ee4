"""``dsguard collect`` on the command line: exit codes, one-line errors, and no secret ever
printed, logged or written, whatever fails."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from typer.testing import CliRunner

from collect.fake_tenant import INITIAL, TENANT_ID, FakeDns, FakeTenant, Fault, path_is
from dsguard.cli import app

SECRET = "Sup3r~S3cret.Value_8Q~x7"
VAR = "DSGUARD_TEST_CLIENT_SECRET"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, SECRET)


@pytest.fixture
def token_ok(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The real ClientSecretCredential, with token acquisition answered locally."""
    from azure.identity import ClientSecretCredential

    calls: list[tuple[str, ...]] = []

    def get_token(self: Any, *scopes: str, **_: Any) -> AccessToken:
        calls.append(scopes)
        return AccessToken(f"tok:{scopes[0]}", int(time.time()) + 3600)

    monkeypatch.setattr(ClientSecretCredential, "get_token", get_token)
    return calls


def run(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["collect", *args])


def base_args(tenant: FakeTenant, dns: FakeDns, out: Path) -> list[str]:
    return [
        "--tenant", TENANT_ID, "--client-id", "c0ffee00-0000-4000-8000-00000000aaaa",
        "--client-secret-env", VAR, "--days", "4", "--out", str(out),
        "--graph-url", tenant.url, "--exchange-url", tenant.url,
        "--dns-server", dns.address, "--tenant-domain", INITIAL,
    ]  # fmt: skip


def everything_written(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_cli_collects_and_never_shows_the_secret(
    tenant: FakeTenant,
    dns_server: FakeDns,
    tmp_path: Path,
    secret_env: None,
    token_ok: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant.faults.append(Fault(path_is("runHuntingQuery"), "429", retry_after="0"))
    out = tmp_path / "bundle"
    result = run([*base_args(tenant, dns_server, out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["complete"] and summary["mail_source"] == "hunting"
    assert summary["sources"]["mail"]["rows"] > 0
    assert token_ok  # the real credential object was built from the environment variable
    assert SECRET not in result.output and SECRET not in caplog.text
    assert SECRET not in everything_written(out)
    # No request carried it either (only the bearer token the credential returned).
    assert not [r for r in tenant.log if SECRET in json.dumps(r.headers) + json.dumps(r.body)]


def test_cli_403_is_one_line_naming_the_permission(
    tenant: FakeTenant, dns_server: FakeDns, tmp_path: Path, secret_env: None, token_ok: Any
) -> None:
    tenant.faults.append(Fault(path_is("runHuntingQuery"), "403", times=None,
                               message="Missing application roles."))  # fmt: skip
    result = run(base_args(tenant, dns_server, tmp_path / "b"))
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("dsguard: error:")]
    assert len(errors) == 1
    assert "ThreatHunting.Read.All" in errors[0] and "HTTP 403" in errors[0]
    assert "Traceback" not in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_cli_credential_failure_is_redacted(
    tenant: FakeTenant,
    dns_server: FakeDns,
    tmp_path: Path,
    secret_env: None,
    monkeypatch: pytest.MonkeyPatch,
    debug: list[str],
) -> None:
    from azure.identity import ClientSecretCredential

    def get_token(self: Any, *scopes: str, **_: Any) -> AccessToken:
        # A library that echoes the credential back: the worst case.
        raise ClientAuthenticationError(
            f"AADSTS7000215: Invalid client secret provided ({SECRET}).\nTrace ID: 1234"
        )

    monkeypatch.setattr(ClientSecretCredential, "get_token", get_token)
    result = run([*base_args(tenant, dns_server, tmp_path / "b"), *debug])
    assert result.exit_code == 2
    assert "could not get a token" in result.stderr and "AADSTS7000215" in result.stderr
    assert SECRET not in result.output
    assert not tenant.log  # nothing was sent without a token


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_cli_internal_error_is_scrubbed(
    tmp_path: Path,
    secret_env: None,
    token_ok: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug: list[str],
) -> None:
    import dsguard.collect

    def boom(*_: Any, **__: Any) -> None:
        try:
            raise ValueError(f"inner detail {SECRET}")
        except ValueError as exc:
            raise RuntimeError(f"bug while holding {SECRET}") from exc

    monkeypatch.setattr(dsguard.collect, "collect", boom)
    args = ["--tenant", TENANT_ID, "--client-id", "x", "--client-secret-env", VAR,
            "--out", str(tmp_path / "b"), *debug]  # fmt: skip
    result = run(args)
    assert result.exit_code == 3
    assert "internal error" in result.stderr
    shown = result.output + capsys.readouterr().err
    assert SECRET not in shown
    assert "***" in shown


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--managed-identity"], "choose exactly one"),
        (["--skip", "everything"], "--skip everything"),
        (["--mail-source", "carrier-pigeon"], "--mail-source carrier-pigeon"),
        (["--recheck-hours", "2"], "--recheck-hours applies to --extend only"),
    ],
)
def test_cli_bad_options_exit_2(
    tmp_path: Path, secret_env: None, token_ok: Any, extra: list[str], message: str
) -> None:
    args = ["--tenant", TENANT_ID, "--client-id", "x", "--client-secret-env", VAR,
            "--out", str(tmp_path / "b"), *extra]  # fmt: skip
    result = run(args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert SECRET not in result.output


def test_cli_missing_secret_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    result = run(["--tenant", TENANT_ID, "--client-id", "x", "--client-secret-env", VAR,
                  "--out", str(tmp_path / "b")])  # fmt: skip
    assert result.exit_code == 2
    assert f"--client-secret-env {VAR}: that environment variable is not set" in result.stderr


def test_cli_prints_a_table_and_the_bundle(
    tenant: FakeTenant, dns_server: FakeDns, tmp_path: Path, secret_env: None, token_ok: Any
) -> None:
    out = tmp_path / "bundle"
    result = run(base_args(tenant, dns_server, out))
    assert result.exit_code == 0, result.output
    for source in ("exchange", "apps", "dns", "mail", "signins"):
        assert source in result.stdout
    assert f"Bundle written to {out}" in " ".join(result.stdout.split())


def test_cli_extend_says_from_where_to_where(
    tenant: FakeTenant,
    dns_server: FakeDns,
    tmp_path: Path,
    secret_env: None,
    token_ok: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dsguard.collect.run as collect_run

    out = tmp_path / "bundle"
    assert run(base_args(tenant, dns_server, out)).exit_code == 0
    first_end = json.loads((out / ".collect-state.json").read_text())["end"]

    later = datetime.now(UTC) + timedelta(hours=3)  # one instant: both runs see the same now

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return later.astimezone(tz)

    monkeypatch.setattr(collect_run, "datetime", Later)
    # --days differs from the first run's: an extension keeps the bundle's own start.
    args = [a if a != "4" else "1" for a in base_args(tenant, dns_server, out)]
    result = run([*args, "--extend", "--recheck-hours", "2"])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stdout.split())
    assert f"Extended from {first_end[:10]} {first_end[11:16]} to " in shown
    again = run([*args, "--extend", "--json"])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["extended_from"] is None and doc["complete"]
