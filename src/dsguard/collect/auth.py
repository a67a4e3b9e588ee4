"""Credentials for the collector, from azure-identity, chosen by one command-line option.

Four ways in, one at a time: a certificate (PEM with the private key; app-only), a client
secret read from an environment variable (never from the command line, where it would land
in shell history and process lists), a managed identity, or the device-code flow (delegated:
a person signs in). The secret is registered with ``errors.register_secret`` before any
library sees it, so no message the collector prints can carry it. azure-identity logs to the
``azure`` logger; a null handler keeps Python's last-resort handler from printing it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dsguard.collect.errors import CollectError, register_secret
from dsguard.collect.http import TokenCredential

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"

logging.getLogger("azure").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class AuthOptions:
    """What the command line said about authentication."""

    tenant: str
    client_id: str | None = None
    certificate: Path | None = None
    client_secret_env: str | None = None
    managed_identity: bool = False
    device_code: bool = False

    @property
    def method(self) -> str:
        chosen = [
            name
            for name, on in (
                ("certificate", self.certificate is not None),
                ("client-secret-env", self.client_secret_env is not None),
                ("managed-identity", self.managed_identity),
                ("device-code", self.device_code),
            )
            if on
        ]
        if len(chosen) != 1:
            raise CollectError(
                "choose exactly one of --certificate, --client-secret-env, "
                f"--managed-identity, --device-code (got {', '.join(chosen) or 'none'})"
            )
        return chosen[0]


def _stderr_prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    sys.stderr.write(
        f"To sign in, open {verification_uri} and enter the code {user_code} "
        f"(valid until {expires_on:%H:%M} UTC).\n"
    )
    sys.stderr.flush()


def make_credential(
    opts: AuthOptions,
    *,
    prompt: Callable[[str, str, datetime], None] = _stderr_prompt,
) -> TokenCredential:
    """The azure-identity credential ``opts`` asks for (module docstring)."""
    method = opts.method
    client_id = opts.client_id or ""
    if method != "managed-identity" and not client_id:
        raise CollectError(f"--{method} needs --client-id (the app registration's id)")
    import azure.identity as identity

    if method == "certificate":
        certificate = opts.certificate
        if certificate is None or not certificate.is_file():
            raise CollectError(f"--certificate {certificate}: no such file")
        password = os.environ.get("DSGUARD_CERTIFICATE_PASSWORD") or None
        if password:
            register_secret(password)
        return identity.CertificateCredential(
            opts.tenant,
            client_id,
            certificate_path=str(certificate),
            password=password,
        )
    if method == "client-secret-env":
        name = opts.client_secret_env or ""
        secret = os.environ.get(name, "")
        if not secret.strip():
            raise CollectError(
                f"--client-secret-env {name}: that environment variable is not set or empty"
            )
        register_secret(secret)
        register_secret(secret.strip())
        return identity.ClientSecretCredential(opts.tenant, client_id, secret.strip())
    if method == "managed-identity":
        if client_id:
            return identity.ManagedIdentityCredential(client_id=client_id)
        return identity.ManagedIdentityCredential()
    return identity.DeviceCodeCredential(
        client_id=client_id, tenant_id=opts.tenant, prompt_callback=prompt
    )
