"""Every limit of the HTTP server, with its unit, and every reason it refuses a client."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.web.auth import AuthLimits

REFUSAL_REASONS = (
    "connection_limit",  # over max_connections: 503 (plain HTTP) or closed (TLS)
    "tls_handshake",  # failed or past its deadline
    "timeout",  # a request's head not read in time
    "request_too_large",  # 414 or 431
    "auth_missing",  # 401: no credentials, or another scheme than Basic
    "auth_malformed",  # 400: Authorization header that is not Basic base64(user:password)
    "auth_wrong",  # 401: unknown user or wrong password
    "auth_throttled",  # 429: too many failures from the client, or from everyone
)


@dataclass(frozen=True)
class HTTPLimits:
    """Every limit of the HTTP server, with its unit (docs/security.md)."""

    max_connections: int = 256
    tls_handshake_timeout_seconds: float = 10.0
    request_header_timeout_seconds: float = 10.0
    keepalive_idle_timeout_seconds: float = 60.0
    response_write_timeout_seconds: float = 30.0
    max_request_line_bytes: int = 8192
    max_header_bytes: int = 16384
    max_header_count: int = 100
    certificate_warning_days: float = 7.0
    auth: AuthLimits = field(default_factory=AuthLimits)
