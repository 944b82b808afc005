"""What the ``--web.*`` flags name: the listen address, and the web config file.

``--web.config.file`` takes the exporter-toolkit format, as every Prometheus exporter does::

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: $2y$10$...}      # bcrypt hashes (pip install bcrypt)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.config import ConfigError
from exporter.web.auth import BCRYPT_HASH

_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
_TLS_FILES = ("cert_file", "key_file", "client_ca_file")


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
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping"])
    problems = [f"{key}: unknown key" for key in raw if key not in _KEYS]
    files = _tls_files(raw.get("tls_server_config") or {}, path.resolve().parent, problems)
    users = _basic_auth_users(raw.get("basic_auth_users") or {}, problems)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return WebConfig(files["cert_file"], files["key_file"], files["client_ca_file"], users)


def _tls_files(tls: Any, base: Path, problems: list[str]) -> dict[str, Path | None]:
    """``tls_server_config``'s files, relative to the web config's folder."""
    files: dict[str, Path | None] = {}
    for key in _TLS_FILES:
        value = tls.get(key) if isinstance(tls, dict) else None
        found = files[key] = (base / value) if value else None
        if found is not None and not found.is_file():
            problems.append(f"tls_server_config.{key}: file not found: {found}")
    if tls and (files["cert_file"] is None) != (files["key_file"] is None):
        problems.append("tls_server_config: cert_file and key_file go together")
    return files


def _basic_auth_users(users: Any, problems: list[str]) -> dict[str, str]:
    """``basic_auth_users``: user -> bcrypt hash, which needs the bcrypt package to check."""
    if not isinstance(users, dict):
        problems.append("basic_auth_users: expected a mapping of user to bcrypt hash")
        return {}
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash ($2y$10$ + 53)")
    if users:
        try:
            import bcrypt  # noqa: F401, PLC0415 - optional: only basic auth needs it
        except ImportError:
            problems.append("basic_auth_users: needs the bcrypt package (pip install bcrypt)")
    return {str(user): hashed for user, hashed in users.items()}


def split_listen_address(address: str) -> tuple[str, int]:
    """``:9747``, ``0.0.0.0:9747``, ``[::1]:9747`` -> (host, port), the port in 0..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        shown = address if len(address) <= 60 else address[:60] + "..."
        raise ConfigError(
            [f"--web.listen-address: expected host:port with a port 0-65535, got {shown!r}"]
        )
    return host.strip("[]"), int(port)
