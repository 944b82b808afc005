"""The HTTP server's accept loop and connections: a cap on how many are open at once, a
worker thread each with its TLS handshake under a deadline, and what was refused, counted.

The server stays responsive whatever its clients do (limits in `exporter.web.limits`):

- The listening socket is plain TCP: the accept loop only accepts. Each connection gets a
  worker thread, which runs the TLS handshake under a deadline, then reads requests
  (`exporter.web.handler`).
- At most ``max_connections`` connections at once; one more is answered 503 on plain
  HTTP, or closed on TLS, at once, from the accept loop.
- What was refused, and when the certificate expires, is exported on /metrics (the server
  registers its own collector on the registry it serves).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.ratelimit import RateLimitedLog
from exporter.web.auth import BasicAuth
from exporter.web.handler import RequestHandler
from exporter.web.limits import REFUSAL_REASONS, HTTPLimits
from exporter.web.tls import check_certificate_expiry, server_context
from exporter.web.web_config import WebConfig

log = logging.getLogger("ml_model_exporter.http")

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nToo many connections\n"
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
        super().__init__(address, RequestHandler)
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
