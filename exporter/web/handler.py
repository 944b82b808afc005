"""One connection's requests: each head read within its deadline and size limits, then
authorized and routed to ``/metrics``, ``/`` (a landing page), ``/-/healthy`` or ``/-/ready``.

Every read and write has a deadline, not a per-recv timeout: a request's head (request line
and headers) must arrive within ``request_header_timeout_seconds`` however slowly it drips,
a kept-alive connection may idle ``keepalive_idle_timeout_seconds``, and a response must be
written within ``response_write_timeout_seconds``. The head is read within
``max_request_line_bytes`` (414 above), ``max_header_bytes`` and ``max_header_count`` (431
above). Basic auth: see `exporter.web.auth` (cache, constant cost, rate limit, 400 on garbage).
"""

from __future__ import annotations

import html
import io
import math
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.web.auth import Verdict

if TYPE_CHECKING:
    from exporter.web.server import ExporterHTTPServer


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


class RequestHandler(BaseHTTPRequestHandler):
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
        self.close_connection = True
        try:
            if self._next_head_arrives():
                self._answer()
        except OSError:  # timeouts, resets, TLS errors: this connection is done
            self.close_connection = True

    def _next_head_arrives(self) -> bool:
        """Read the next request's head into the handler's fields within the deadlines;
        False when there is nothing to answer (the client left, or was answered already)."""
        limits = self.server.limits
        if self.requests_read:
            self.stream.deadline = time.monotonic() + limits.keepalive_idle_timeout_seconds
            if not self.rfile.peek(1):
                return False
        self.stream.deadline = time.monotonic() + limits.request_header_timeout_seconds
        try:
            head = self._read_head()
        except TimeoutError:
            self.server.refuse("timeout")
            return False
        if head is None:
            return False
        self.stream.deadline = time.monotonic() + limits.response_write_timeout_seconds
        self.raw_requestline = head[0]
        socket_file, self.rfile = self.rfile, io.BytesIO(b"".join(head[1:]))
        try:
            return self.parse_request()  # sets close_connection from the request
        finally:
            self.rfile = socket_file

    def _answer(self) -> None:
        self.requests_read += 1
        method = getattr(self, f"do_{self.command}", None)
        if method is None:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command})")
            return
        method()

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
            self._send_metrics()
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

    def _send_metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
        except Exception as err:  # a collector's bug must not take the connection down
            self.server.report_error("metrics", err)
            self._send(500, b"Internal error while collecting metrics\n", "text/plain")
            return
        self._send(200, body, content_type)

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
