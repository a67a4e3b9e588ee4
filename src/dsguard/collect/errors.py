"""What can stop a collection, and the redaction that keeps secrets out of every message.

A collection talks to services with a client secret or a bearer token in hand. Any text the
collector shows a person (an exception, a warning, a progress line) goes through ``redact``
first, so a library that echoes a credential in its error text cannot leak it through us.
"""

from __future__ import annotations

import contextlib
import re

_SECRETS: set[str] = set()
# A JWT (what a bearer token is), or an ``Authorization`` value, wherever it appears.
_TOKEN = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_MAX = 600


def register_secret(value: str) -> None:
    """Remember a value that must never be shown (a client secret, a certificate password)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret, bearer token and JWT replaced by ``***``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _TOKEN.sub("***", text)
    return _BEARER.sub(r"\1***", text)


def one_line(text: str, limit: int = _MAX) -> str:
    """Redacted, whitespace folded onto one line, cut at ``limit`` characters."""
    text = redact(" ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CollectError(Exception):
    """A collection problem, described in one printable line (already redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class AuthenticationFailed(CollectError):
    """No token could be had for a service: wrong tenant, client id, secret or certificate.

    Every later call would fail the same way, so the collection stops at once.
    """


class AccessDenied(CollectError):
    """The service refused the call (HTTP 401 or 403); ``permission`` names what it needs."""

    def __init__(
        self, message: str, *, status: int, permission: str, service_message: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.permission = permission
        self.service_message = one_line(service_message, 400)


class ApiError(CollectError):
    """A call the service rejected for a reason retrying cannot fix (400, 404, ...)."""

    def __init__(
        self, message: str, *, status: int, code: str = "", service_message: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.service_message = one_line(service_message, 400)


class ServiceUnavailable(CollectError):
    """The service kept failing (429, 5xx, dropped connections, malformed JSON) after every
    retry; what was saved so far stays, and a rerun continues from there."""


def scrub_exception(exc: BaseException) -> None:
    """Redact the string arguments of ``exc`` and every exception chained to it, so a
    message or a ``--debug`` traceback printed later cannot show a secret."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        current = current.__cause__ or current.__context__
