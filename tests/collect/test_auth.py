"""The credential factory: one method at a time, secrets registered for redaction, and no
network touched to build a credential."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    DeviceCodeCredential,
    ManagedIdentityCredential,
)

from dsguard.collect import AuthOptions, CollectError, make_credential
from dsguard.collect.errors import redact

TENANT = "72f9a1b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
CLIENT = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def _pem(path: Path, password: bytes | None = None) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsguard-collector")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    encryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption()
    )  # fmt: skip
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                encryption)  # fmt: skip
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSGUARD_CERTIFICATE_PASSWORD", "pem-pass-Phrase-42")
    pem = _pem(tmp_path / "app.pem", b"pem-pass-Phrase-42")
    cred = make_credential(AuthOptions(TENANT, CLIENT, certificate=pem))
    assert isinstance(cred, CertificateCredential)
    assert redact("password pem-pass-Phrase-42 leaked") == "password *** leaked"
    with pytest.raises(CollectError, match="no such file"):
        make_credential(AuthOptions(TENANT, CLIENT, certificate=tmp_path / "missing.pem"))


def test_client_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_SECRET", "  s3cret-from-env~value  ")
    cred = make_credential(AuthOptions(TENANT, CLIENT, client_secret_env="APP_SECRET"))
    assert isinstance(cred, ClientSecretCredential)
    assert redact("x s3cret-from-env~value y") == "x *** y"
    monkeypatch.setenv("APP_SECRET", "   ")
    with pytest.raises(CollectError, match="not set or empty"):
        make_credential(AuthOptions(TENANT, CLIENT, client_secret_env="APP_SECRET"))


def test_managed_identity_and_device_code() -> None:
    assert isinstance(make_credential(AuthOptions(TENANT, managed_identity=True)),
                      ManagedIdentityCredential)  # fmt: skip
    assert isinstance(make_credential(AuthOptions(TENANT, CLIENT, managed_identity=True)),
                      ManagedIdentityCredential)  # fmt: skip
    assert isinstance(make_credential(AuthOptions(TENANT, CLIENT, device_code=True)),
                      DeviceCodeCredential)  # fmt: skip


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (AuthOptions(TENANT, CLIENT), "got none"),
        (AuthOptions(TENANT, CLIENT, device_code=True, managed_identity=True),
         "got managed-identity, device-code"),
        (AuthOptions(TENANT, None, device_code=True), "--device-code needs --client-id"),
    ],
)
def test_exactly_one_method(opts: AuthOptions, message: str) -> None:
    with pytest.raises(CollectError, match=message):
        make_credential(opts)
