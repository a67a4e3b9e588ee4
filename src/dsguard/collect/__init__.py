"""``dsguard collect``: an evidence bundle from a live tenant, read-only and resumable.

The public API is small on purpose::

    from dsguard.collect import AuthOptions, CollectConfig, collect, make_credential

    credential = make_credential(AuthOptions(tenant, client_id, client_secret_env="VAR"))
    result = collect(CollectConfig(tenant=tenant, out=Path("bundle"), days=30), credential)

Any object with the azure-identity ``get_token(*scopes)`` method is a credential, and
``collect(..., transport=httpx.MockTransport(...))`` runs without a network. Everything else
(``http``, ``hunting``, ``trace``, ``graph``, ``exchange``, ``dnsq``, ``state``) is private.
"""

from dsguard.collect.auth import EXCHANGE_SCOPE, GRAPH_SCOPE, AuthOptions, make_credential
from dsguard.collect.dnsq import DnsSettings
from dsguard.collect.errors import (
    AccessDenied,
    ApiError,
    AuthenticationFailed,
    CollectError,
    ServiceUnavailable,
)
from dsguard.collect.http import RetryPolicy, TokenCredential
from dsguard.collect.hunting import SliceRule
from dsguard.collect.run import SOURCES, CollectConfig, CollectResult, SourceReport, collect
from dsguard.collect.state import STATE_FILE

__all__ = [
    "EXCHANGE_SCOPE",
    "GRAPH_SCOPE",
    "SOURCES",
    "STATE_FILE",
    "AccessDenied",
    "ApiError",
    "AuthOptions",
    "AuthenticationFailed",
    "CollectConfig",
    "CollectError",
    "CollectResult",
    "DnsSettings",
    "RetryPolicy",
    "ServiceUnavailable",
    "SliceRule",
    "SourceReport",
    "TokenCredential",
    "collect",
    "make_credential",
]
