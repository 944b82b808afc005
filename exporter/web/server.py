"""HTTP endpoints: ``/metrics``, ``/`` (a landing page), ``/-/healthy``, ``/-/ready``.

``--web.config.file`` takes the exporter-toolkit format, as every Prometheus exporter does::

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: $2y$10$...}      # bcrypt hashes (pip install bcrypt)

The server stays responsive whatever its clients do (limits in `HTTPLimits`):

- The listening socket is plain TCP: the accept loop only accepts. Each connection gets a
  worker thread, which runs the TLS handshake under a deadline, then reads requests.
- At most ``max_connections`` connections at once; one more is answered 503 on plain
  HTTP, or closed on TLS, at once, from the accept loop.
- Every read and write has a deadline, not a per-recv timeout: a request's head (request
  line and headers) must arrive within ``request_header_timeout_seconds`` however slowly
  it drips, a kept-alive connection may idle ``keepalive_idle_timeout_seconds``, and a
  response must be written within ``response_write_timeout_seconds``.
- The head is read within ``max_request_line_bytes`` (414 above), ``max_header_bytes`` and
  ``max_header_count`` (431 above).
- Basic auth: see `exporter.web.auth` (cache, constant cost, rate limit, 400 on garbage).
- What was refused, and when the certificate expires, is exported on /metrics (the server
  registers its own collector on the registry it serves).
"""

from __future__ import annotations

import contextlib
import html
import io
import logging
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.config import ConfigError
from exporter.ratelimit import RateLimitedLog
from exporter.web.auth import BCRYPT_HASH, AuthLimits, BasicAuth, Verdict
from exporter.web.tls import check_certificate_expiry, server_context

log = logging.getLogger("ml_model_exporter.http")

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
    """Every limit of the HTTP server, with its unit (README, "Security")."""

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


@dataclass(frozen=True)
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    basic_auth_users: dict[str, str] = field(default_factory=dict)


def load_web_config(path: Path) -> WebConfig:
    """Parse an exporter-toolkit web config; raise ConfigError naming every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError([f"{path}: web config file not found"]) from None
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError([f"{path}: {err}".replace("\n", " ")]) from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping"])
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            problems.append(f"{key}: unknown key")
    tls = raw.get("tls_server_config") or {}
    base = path.resolve().parent
    files: dict[str, Path | None] = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = tls.get(key) if isinstance(tls, dict) else None
        files[key] = (base / value) if value else None
        if files[key] is not None and not files[key].is_file():
            problems.append(f"tls_server_config.{key}: file not found: {files[key]}")
    if tls and (files["cert_file"] is None) != (files["key_file"] is None):
        problems.append("tls_server_config: cert_file and key_file go together")
    users = raw.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        problems.append("basic_auth_users: expected a mapping of user to bcrypt hash")
        users = {}
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash ($2y$10$ + 53)")
    if users:
        try:
            import bcrypt  # noqa: F401, PLC0415 - optional: only basic auth needs it
        except ImportError:
            problems.append("basic_auth_users: needs the bcrypt package (pip install bcrypt)")
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return WebConfig(
        files["cert_file"],
        files["key_file"],
        files["client_ca_file"],
        {str(user): hashed for user, hashed in users.items()},
    )


def split_listen_address(address: str) -> tuple[str, int]:
    """``:9747``, ``0.0.0.0:9747``, ``[::1]:9747`` -> (host, port), the port in 0..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        shown = address if len(address) <= 60 else address[:60] + "..."
        raise ConfigError(
            [f"--web.listen-address: expected host:port with a port 0-65535, got {shown!r}"]
        )
    return host.strip("[]"), int(port)


class _DeadlineStream(io.RawIOBase):
    """A connection as a file whose reads and writes raise TimeoutError once ``deadline``
    (time.monotonic) has passed, however the bytes trickle in or out."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.connection.settimeout(remaining)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._arm()
        return self.connection.recv_into(buffer)

    def write(self, data: bytes) -> int:  # type: ignore[override]
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while sent < len(octets):
                self._arm()
                sent += self.connection.send(octets[sent:])
            return sent


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nToo many connections\n"
)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return f"ml-model-exporter/{__version__}"  # not the Python version

    def setup(self) -> None:
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = _DeadlineStream(self.connection)
        self.rfile = io.BufferedReader(self.stream)
        self.wfile = self.stream  # type: ignore[assignment]
        self.requests_read = 0

    def finish(self) -> None:
        pass  # the server shuts the connection down

    def handle_one_request(self) -> None:
        limits = self.server.limits
        self.close_connection = True
        try:
            if self.requests_read:
                self.stream.deadline = time.monotonic() + limits.keepalive_idle_timeout_seconds
                if not self.rfile.peek(1):
                    return
            self.stream.deadline = time.monotonic() + limits.request_header_timeout_seconds
            try:
                head = self._read_head()
            except TimeoutError:
                self.server.refuse("timeout")
                return
            if head is None:
                return
            self.stream.deadline = time.monotonic() + limits.response_write_timeout_seconds
            self.raw_requestline = head[0]
            socket_file, self.rfile = self.rfile, io.BytesIO(b"".join(head[1:]))
            try:
                parsed = self.parse_request()  # sets close_connection from the request
            finally:
                self.rfile = socket_file
            if not parsed:
                return
            self.requests_read += 1
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command})")
                return
            method()
        except OSError:  # timeouts, resets, TLS errors: this connection is done
            self.close_connection = True

    def _read_head(self) -> list[bytes] | None:
        """The request line and header lines (blank line included), within the limits;
        None when the client went away or was answered 414/431."""
        limits = self.server.limits
        line = self.rfile.readline(limits.max_request_line_bytes + 1)
        if not line:
            return None
        if len(line) > limits.max_request_line_bytes:
            self._refuse_head(HTTPStatus.REQUEST_URI_TOO_LONG)
            return None
        head, size = [line], 0
        while True:
            line = self.rfile.readline(limits.max_header_bytes - size + 1)
            if not line:
                return None
            head.append(line)
            if line in (b"\r\n", b"\n"):
                return head
            size += len(line)
            if size > limits.max_header_bytes or len(head) - 1 > limits.max_header_count:
                self._refuse_head(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return None

    def _refuse_head(self, status: HTTPStatus) -> None:
        self.requestline = self.request_version = self.command = ""
        self.stream.deadline = time.monotonic() + self.server.limits.response_write_timeout_seconds
        self.server.refuse("request_too_large")
        self.send_error(status)

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(self.server.registry)
            except Exception as err:  # a collector's bug must not take the connection down
                self.server.report_error("metrics", err)
                self._send(500, b"Internal error while collecting metrics\n", "text/plain")
                return
            self._send(200, body, content_type)
        elif path == "/-/healthy":
            self._send(200, b"Healthy\n", "text/plain")
        elif path == "/-/ready":
            if self.server.is_ready():
                self._send(200, b"Ready\n", "text/plain")
            else:
                self._send(
                    503, b"Not ready: first pass over the logs still running\n", "text/plain"
                )
        elif path == "/":
            self._send(200, _landing_page().encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not found\n", "text/plain")

    def _authorized(self) -> bool:
        auth = self.server.auth
        if auth is None:
            return True
        result = auth.check(self.headers.get("Authorization"), self.client_address[0])
        if result.verdict is Verdict.OK:
            return True
        self.server.refuse(f"auth_{result.verdict.value}")
        if result.verdict is Verdict.MALFORMED:
            self._send(
                400, b"Malformed Authorization header\n", "text/plain", {"Connection": "close"}
            )
        elif result.verdict is Verdict.THROTTLED:
            delay = min(self.server.limits.auth.throttled_delay_seconds, result.retry_after_seconds)
            time.sleep(delay)  # costs no CPU, and slows a client that loops on failures
            retry = str(max(1, math.ceil(result.retry_after_seconds - delay)))
            self._send(429, b"Too many failed logins\n", "text/plain", {"Retry-After": retry})
        else:
            challenge = 'Basic realm="ml-model-exporter", charset="UTF-8"'
            self._send(401, b"Unauthorized\n", "text/plain", {"WWW-Authenticate": challenge})
        return False

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes every few seconds would drown the useful log lines


def _landing_page() -> str:
    return (
        "<!doctype html><html><head><title>ml-model-exporter</title></head><body>"
        f"<h1>ml-model-exporter {html.escape(__version__)}</h1>"
        '<p><a href="/metrics">Metrics</a></p>'
        '<p><a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>'
        "</body></html>"
    )


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the accept loop never blocks, but bursts of connects come

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        is_ready: Callable[[], bool],
        web: WebConfig | None = None,
        *,
        limits: HTTPLimits | None = None,
    ) -> None:
        self.registry = registry
        self.is_ready = is_ready
        self.web = web or WebConfig()
        self.limits = limits or HTTPLimits()
        self.tls: ssl.SSLContext | None = None
        self.certificate_expiry: float | None = None
        if self.web.cert_file and self.web.key_file:
            self.tls = server_context(
                self.web.cert_file, self.web.key_file, self.web.client_ca_file
            )
            self.certificate_expiry = check_certificate_expiry(
                self.web.cert_file, time.time(), self.limits.certificate_warning_days
            )
        self.auth = (
            BasicAuth(self.web.basic_auth_users, self.limits.auth)
            if self.web.basic_auth_users
            else None
        )
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self._refused_lock = threading.Lock()
        self._errors = RateLimitedLog(log, time.monotonic)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        registry.register(_ServerCollector(self))

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        thread.start()
        return thread

    def refuse(self, reason: str) -> None:
        with self._refused_lock:
            self._refused[reason] += 1

    def refused_counts(self) -> dict[str, int]:
        with self._refused_lock:
            return dict(self._refused)

    def report_error(self, where: str, err: BaseException) -> None:
        """One rate-limited line per unexpected error; the traceback at debug level."""
        frame = err.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        at = f" at {frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else ""
        self._errors.error(f"http-{where}", "HTTP %s failed: %r%s", where, err, at)
        log.debug("HTTP %s failed", where, exc_info=err)

    # Runs in the accept loop: never blocks.
    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            self.refuse("connection_limit")
            if self.tls is None:
                with contextlib.suppress(OSError):
                    request.setblocking(False)
                    request.send(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except BaseException:
            self._slots.release()
            raise

    # Runs in the connection's own thread.
    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        connection = request
        try:
            if self.tls is not None:
                request.settimeout(self.limits.tls_handshake_timeout_seconds)
                connection = self.tls.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                try:
                    connection.do_handshake()  # the timeout bounds the whole handshake
                except (OSError, ValueError) as err:
                    self.refuse("tls_handshake")
                    log.debug("TLS handshake with %s failed: %s", _host(client_address), err)
                    return
            self.finish_request(connection, client_address)  # type: ignore[arg-type]
        except Exception:
            self.handle_error(connection, client_address)  # type: ignore[arg-type]
        finally:
            self.shutdown_request(connection)
            self._slots.release()

    def handle_error(self, request: object, client_address: object) -> None:  # type: ignore[override]
        err = sys.exc_info()[1]
        if err is None:
            return
        if isinstance(err, OSError):  # the client went away or misbehaved
            log.debug("connection from %s: %s", _host(client_address), err)
            return
        self.report_error("request", err)


def _host(client_address: object) -> str:
    return str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)


class _ServerCollector:
    """The HTTP server's own samples::

    # HELP mlmodel_exporter_http_refused_total HTTP connections and requests refused ...
    # TYPE mlmodel_exporter_http_refused_total counter      {reason}, every reason from 0
    # HELP mlmodel_exporter_tls_certificate_expiry_timestamp_seconds notAfter of the ...
    # TYPE mlmodel_exporter_tls_certificate_expiry_timestamp_seconds gauge   (TLS only)
    """

    def __init__(self, server: ExporterHTTPServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "mlmodel_exporter_http_refused",
            "HTTP connections and requests refused, by reason.",
            labels=["reason"],
        )
        for reason, count in self.server.refused_counts().items():
            refused.add_metric([reason], count)
        yield refused
        if self.server.certificate_expiry is not None:
            yield GaugeMetricFamily(
                "mlmodel_exporter_tls_certificate_expiry_timestamp_seconds",
                "notAfter of the served TLS certificate (read at start), in Unix seconds.",
                value=self.server.certificate_expiry,
            )
