"""HTTP endpoints: ``/metrics``, ``/`` (a landing page), ``/-/healthy``, ``/-/ready``.

``--web.config.file`` takes the exporter-toolkit format, as every Prometheus exporter does::

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: $2y$10$...}      # bcrypt hashes (pip install bcrypt)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.config import ConfigError


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
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash")
    if users:
        try:
            import bcrypt  # noqa: F401, PLC0415 - optional: only basic auth needs it
        except ImportError:
            problems.append("basic_auth_users: needs the bcrypt package (pip install bcrypt)")
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return WebConfig(files["cert_file"], files["key_file"], files["client_ca_file"], dict(users))


def split_listen_address(address: str) -> tuple[str, int]:
    """``:9747``, ``0.0.0.0:9747``, ``[::1]:9747`` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError([f"--web.listen-address: expected host:port, got {address!r}"])
    return host.strip("[]"), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if not self._authorized():
            self._send(401, b"Unauthorized\n", "text/plain", {"WWW-Authenticate": "Basic"})
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.server.registry), content_type)
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
        users = self.server.web.basic_auth_users
        if not users:
            return True
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = users.get(user)
        if hashed is None:
            return False
        cache_key = (user, password)
        cached = self.server.auth_cache.get(cache_key)
        if cached is not None:
            return hmac.compare_digest(cached, hashed)
        import bcrypt  # noqa: PLC0415 - optional dependency, checked at start-up

        ok = bcrypt.checkpw(password.encode(), hashed.encode())
        if ok:  # bcrypt is slow by design; remember good pairs only
            self.server.auth_cache[cache_key] = hashed
        return ok

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

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        is_ready: Callable[[], bool],
        web: WebConfig | None = None,
    ) -> None:
        if ":" in address[0]:
            import socket  # noqa: PLC0415

            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.registry = registry
        self.is_ready = is_ready
        self.web = web or WebConfig()
        self.auth_cache: dict[tuple[str, str], str] = {}
        if self.web.cert_file and self.web.key_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.web.cert_file, self.web.key_file)
            if self.web.client_ca_file:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(self.web.client_ca_file)
            self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        thread.start()
        return thread
