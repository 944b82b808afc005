"""The real stack around the exporter, for the integration tests: Prometheus, Alertmanager,
a webhook sink, an SMTP sink, and the demo (``conftest.demo_stack`` runs it under a real
Prometheus once per session).

Every program runs on free 127.0.0.1 ports with its data in a temporary directory and reads
a temporary *copy* of the shipped config (``prometheus/prometheus.yml``,
``prometheus/rules/*.yml``, ``prometheus/alertmanager.yml``, ``prometheus/templates/``) in
which only addresses, intervals and ``for:`` durations are changed; routes, inhibit rules,
alert expressions and templates stay as shipped.

Under CI=true a missing ``prometheus`` or ``prometheus-alertmanager`` fails the test
(``support.require_binary``); elsewhere the test is skipped.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import signal
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from support import REPO, cli, fetch, free_port, require_binary, wait_for

PROMETHEUS_DIR = REPO / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
EXPORTER_JOB = "ml-model-exporter"
"""The scrape job the shipped rules and dashboard select (``up{job="ml-model-exporter"}``)."""


def prometheus_binary() -> str:
    return require_binary("prometheus")


def alertmanager_binary() -> str:
    """Debian names it prometheus-alertmanager; upstream tarballs name it alertmanager."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        if shutil.which(name):
            return str(shutil.which(name))
    return require_binary("prometheus-alertmanager")


# --- processes ----------------------------------------------------------------------


class Process:
    """A real program on a free 127.0.0.1 port, its output in ``log_path``."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready_path(self) -> str:
        return "/-/ready"

    def start(self, *, timeout: float = 30.0) -> Process:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._answers, timeout=timeout, what=f"{self.name} on {self.address}")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_text()[-3000:]}")
        fetch(self.url + self.ready_path())
        return True

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get_json(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return json.loads(fetch(f"{self.url}{path}{query}"))


class BadQuery(ValueError):
    """Prometheus rejected a query as invalid."""


class Prometheus(Process):
    """A real Prometheus reading ``prometheus.yml`` (and its ``rules/``) in ``workdir``."""

    name = "prometheus"

    def argv(self) -> list[str]:
        return [
            prometheus_binary(),
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            f"--web.console.templates={self.workdir / 'consoles'}",
            f"--web.console.libraries={self.workdir / 'console_libraries'}",
            "--log.level=warn",
        ]

    def api(self, path: str, **params: str) -> Any:
        """``/api/v1/<path>``'s data. A query Prometheus rejects (HTTP 400/422, bad PromQL)
        raises :class:`BadQuery` at once, which ``wait_for`` does not retry."""
        try:
            body = self.get_json(f"/api/v1/{path}", **params)
        except urllib.error.HTTPError as err:
            if err.code in (400, 422):
                raise BadQuery(f"{params}: {err.read().decode(errors='replace')}") from err
            raise
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result as a list of samples (a scalar becomes one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``/api/v1/alerts``)."""
        return self.api("alerts")["alerts"]

    def firing(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        return [
            alert
            for alert in self.alerts()
            if alert["state"] == "firing"
            and alert["labels"].get("alertname") == alertname
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def evaluated_since(self, since: float) -> bool:
        """Every rule group has been evaluated after ``since`` (epoch seconds)."""
        groups = self.rule_groups()
        return bool(groups) and all(
            _rfc3339_seconds(group["lastEvaluation"]) > since for group in groups
        )


class Alertmanager(Process):
    """A real Alertmanager reading ``alertmanager.yml`` (and ``templates/``) in ``workdir``;
    clustering off."""

    name = "alertmanager"

    def argv(self) -> list[str]:
        return [
            alertmanager_binary(),
            f"--config.file={self.workdir / 'alertmanager.yml'}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        return self.get_json("/api/v2/alerts")


def _rfc3339_seconds(stamp: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    # Go prints nanoseconds; Python parses at most microseconds.
    main, _, rest = stamp.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        stamp = f"{main}.{digits[:6]}{zone}"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# --- temporary copies of the shipped config -----------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def copy_rules(
    target: Path, *, for_: Mapping[str, str] | None = None, default_for: str | None = None
) -> list[Path]:
    """Copies of ``prometheus/rules/*.yml`` in ``target`` with the ``for:`` of the alerts
    named in ``for_`` (and, if ``default_for`` is given, of every other alert) replaced."""
    for_ = dict(for_ or {})
    written = []
    for source in RULE_FILES:
        data = load_yaml(source)
        for group in data["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert")
                if name is None:
                    continue
                if name in for_:
                    rule["for"] = for_[name]
                elif default_for is not None:
                    rule["for"] = default_for
        written.append(write_yaml(target / source.name, data))
    unknown = set(for_) - {
        rule.get("alert")
        for path in RULE_FILES
        for g in load_yaml(path)["groups"]
        for rule in g["rules"]
    }
    assert not unknown, f"no such alert in prometheus/rules: {unknown}"
    return written


def write_prometheus_config(
    workdir: Path,
    *,
    exporter: str,
    alertmanager: str | None = None,
    interval: str = "1s",
    for_: Mapping[str, str] | None = None,
    default_for: str | None = None,
) -> Path:
    """``prometheus.yml`` + ``rules/`` in ``workdir``: the shipped files with the exporter
    job pointed at ``exporter`` (host:port), alerting at ``alertmanager`` (or none), the
    intervals set to ``interval``, and only the exporter job scraped."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == EXPORTER_JOB]
    assert len(jobs) == 1, f"prometheus.yml has no single job {EXPORTER_JOB!r}"
    jobs[0]["static_configs"] = [{"targets": [exporter]}]
    config["scrape_configs"] = jobs
    assert config["rule_files"] == ["rules/*.yml"], config["rule_files"]
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        (manager,) = config["alerting"]["alertmanagers"]
        manager["static_configs"] = [{"targets": [alertmanager]}]
    copy_rules(workdir / "rules", for_=for_, default_for=default_for)
    return write_yaml(workdir / "prometheus.yml", config)


def write_alertmanager_config(
    workdir: Path,
    *,
    webhook_url: str,
    smtp: str,
    token: str,
    group_wait: str = "1s",
    group_interval: str = "1s",
) -> Path:
    """``alertmanager.yml`` + ``templates/`` in ``workdir``: the shipped config with every
    webhook pointed at ``webhook_url`` (bearer token from a file holding ``token``), mail
    sent to the SMTP server at ``smtp`` (host:port) without TLS, and the root route's
    group_wait/group_interval shortened. Routes and inhibit rules stay as shipped."""
    config = load_yaml(PROMETHEUS_DIR / "alertmanager.yml")
    config["global"]["smtp_smarthost"] = smtp
    config["global"]["smtp_require_tls"] = False
    config["route"]["group_wait"] = group_wait
    config["route"]["group_interval"] = group_interval
    token_file = workdir / "secrets" / "retrain-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n", encoding="utf-8")
    webhooks = 0
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            authorization = hook.get("http_config", {}).get("authorization")
            if authorization is not None and "credentials_file" in authorization:
                authorization["credentials_file"] = str(token_file)
            webhooks += 1
    assert webhooks, "alertmanager.yml has no webhook receiver"
    shutil.copytree(PROMETHEUS_DIR / "templates", workdir / "templates", dirs_exist_ok=True)
    return write_yaml(workdir / "alertmanager.yml", config)


# --- sinks --------------------------------------------------------------------------


@dataclass
class WebhookRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookSink:
    """An HTTP server thread on 127.0.0.1 recording every POSTed JSON body and its headers."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with sink._lock:
                    sink.requests.append(WebhookRequest(self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def received(self) -> list[WebhookRequest]:
        with self._lock:
            return list(self.requests)

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for Alertmanager: EHLO/HELO, MAIL, RCPT, DATA, RSET,
    NOOP, QUIT. No TLS, no AUTH; every message is accepted and kept."""

    server: _SmtpServer
    sender: str
    recipients: list[str]
    talking: bool

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 127.0.0.1 ESMTP test sink")
        self.sender, self.recipients, self.talking = "", [], True
        while self.talking:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = line.partition(" ")
            command = getattr(self, f"smtp_{verb.upper()}", None)
            if command is None:
                self.reply("502 command not implemented")
            else:
                command(argument)

    def smtp_EHLO(self, argument: str) -> None:
        self.reply("250-127.0.0.1 greets " + argument)
        self.reply("250-8BITMIME")
        self.reply("250 SMTPUTF8")

    def smtp_HELO(self, argument: str) -> None:
        self.reply("250 127.0.0.1")

    def smtp_MAIL(self, argument: str) -> None:
        self.sender, self.recipients = _address(argument), []
        self.reply("250 OK")

    def smtp_RCPT(self, argument: str) -> None:
        self.recipients.append(_address(argument))
        self.reply("250 OK")

    def smtp_DATA(self, argument: str) -> None:
        if not self.recipients:
            self.reply("503 need RCPT first")
            return
        self.reply("354 end data with <CR><LF>.<CR><LF>")
        data = self._read_data()
        if data is None:
            self.talking = False
            return
        message = email.message_from_bytes(data, policy=email.policy.default)
        self.server.keep(Mail(self.sender, self.recipients, message))  # type: ignore[arg-type]
        self.sender, self.recipients = "", []
        self.reply("250 OK: queued")

    def smtp_RSET(self, argument: str) -> None:
        self.sender, self.recipients = "", []
        self.reply("250 OK")

    def smtp_NOOP(self, argument: str) -> None:
        self.reply("250 OK")

    def smtp_QUIT(self, argument: str) -> None:
        self.reply("221 bye")
        self.talking = False

    def _read_data(self) -> bytes | None:
        lines = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if not raw:
                return None
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)  # dot-unstuffing


def _address(argument: str) -> str:
    """``FROM:<a@b> SIZE=1`` -> ``a@b``."""
    _, _, rest = argument.partition(":")
    return rest.strip().split(" ")[0].strip("<>")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.mails: list[Mail] = []
        self.lock = threading.Lock()

    def keep(self, mail: Mail) -> None:
        with self.lock:
            self.mails.append(mail)


class SmtpSink:
    """A tiny SMTP server thread on 127.0.0.1 keeping every message (``smtpd`` is gone from
    Python 3.12)."""

    def __init__(self) -> None:
        self.server = _SmtpServer()
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self) -> list[Mail]:
        with self.server.lock:
            return list(self.server.mails)

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the demo, scraped by a real Prometheus -----------------------------------------


class Demo(Process):
    """``ml-model-exporter demo`` as a real process on a free port."""

    name = "demo"

    def __init__(self, workdir: Path, *, drift_after: float = 20.0) -> None:
        super().__init__(workdir)
        self.drift_after = drift_after
        self.log_dir = workdir / "logs"

    def argv(self) -> list[str]:
        return cli(
            "demo",
            "--web.listen-address",
            self.address,
            "--drift-after",
            f"{self.drift_after:g}",
            "--dir",
            str(self.log_dir),
        )

    def ready_path(self) -> str:
        return "/-/healthy"

    def metrics_text(self) -> str:
        return fetch(f"{self.url}/metrics")


@dataclass
class DemoStack:
    demo: Demo
    prometheus: Prometheus
    models: dict[str, str]
    """Demo model name -> task."""
    started: float
    """time.monotonic() when the demo was started."""

    def remaining(self, deadline: float) -> float:
        """Seconds left until ``deadline`` seconds after the demo started (at least 2): the
        tests sharing a stack share one time budget for the demo to produce its data."""
        return max(2.0, deadline - (time.monotonic() - self.started))
