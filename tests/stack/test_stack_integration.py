"""The whole alerting path with the real programs: exporter -> Prometheus (the shipped rules)
-> Alertmanager (the shipped routes, inhibitions and email templates) -> a webhook sink and
an SMTP sink.

The exporter reads crafted logs, timestamped around now, of five binary models:

- ``degraded``: 200 outcomes, accuracy 60% under its 90% threshold -> MLModelAccuracyLow,
  by webhook (retraining, payload version 4, bearer token) and by email;
- ``healthy``: 200 outcomes, accuracy/precision/recall 97% over their thresholds -> nothing;
- ``few-outcomes``: accuracy 50% but only 30 outcomes (< min_outcomes 100) -> nothing;
- ``fresh``: 10 predictions of the last seconds, no outcome yet -> nothing;
- ``stale``: its newest prediction is 2 h old (stale_after 1h) -> MLModelPredictionsStale, by
  email only (the control that shows a staleness alert can fire here at all).

Then the exporter is stopped, and MLModelExporterDown fires and is emailed.

The temporary copies change only addresses, intervals (1 s) and ``for:`` (0 s; 2 s for
MLModelExporterDown) and Alertmanager's group_wait/group_interval (1 s).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from stack_support import (
    EXPORTER_JOB,
    Alertmanager,
    Mail,
    Prometheus,
    SmtpSink,
    WebhookSink,
    alertmanager_binary,
    prometheus_binary,
    write_alertmanager_config,
    write_prometheus_config,
)
from support import Exporter, select, wait_for

pytestmark = pytest.mark.slow

QUALITY_ALERTS = (
    "MLModelAccuracyLow",
    "MLModelPrecisionLow",
    "MLModelRecallLow",
    "MLModelRegressionErrorHigh",
)
STALENESS_ALERTS = ("MLModelPredictionsStale", "MLModelOutcomesStale")
QUIET_MODELS = ("healthy", "few-outcomes", "fresh")
WINDOW = "1h"
WEBHOOK_RECEIVER = "retrain-webhook"
TO = "ml-team@example.com"


@dataclass
class Rows:
    """A crafted prediction log: ``(seconds before now, score, actual or None)`` rows."""

    name: str
    rows: list[tuple[float, float, int | None]]
    thresholds: dict[str, object]

    def write(self, directory: Path, now: float) -> Path:
        path = directory / f"{self.name}.csv"
        lines = ["timestamp,prediction,actual"]
        for age, score, actual in sorted(self.rows, key=lambda row: -row[0]):
            lines.append(f"{now - age:.3f},{score:.2f},{'' if actual is None else actual}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def labelled(n_right: int, n_wrong: int, *, start: float, spacing: float = 1.0) -> list:
    """``n_right`` correct then ``n_wrong`` wrong predictions, alternating classes, one every
    ``spacing`` seconds going back from ``start`` seconds ago."""
    rows = []
    for i in range(n_right + n_wrong):
        actual = i % 2
        right = i < n_right
        predicted = actual if right else 1 - actual
        rows.append((start + i * spacing, 0.9 if predicted else 0.1, actual))
    return rows


def crafted_models() -> list[Rows]:
    few = labelled(15, 15, start=5.0)
    few += [(40.0 + i, 0.8 if i % 3 else 0.2, None) for i in range(170)]  # no outcome yet
    return [
        Rows("degraded", labelled(120, 80, start=3.0), {"accuracy": 0.9, "min_outcomes": 100}),
        Rows(
            "healthy",
            labelled(194, 6, start=3.0),
            {"accuracy": 0.9, "precision": 0.8, "recall": 0.8, "min_outcomes": 100},
        ),
        Rows("few-outcomes", few, {"accuracy": 0.9, "min_outcomes": 100}),
        Rows(
            "fresh",
            [(1.0 + i, 0.7, None) for i in range(10)],
            {"accuracy": 0.9, "min_outcomes": 100, "outcomes_stale_after": "10m"},
        ),
        Rows(
            "stale",
            labelled(150, 0, start=7200.0),
            {"accuracy": 0.9, "min_outcomes": 100, "stale_after": "1h"},
        ),
    ]


@dataclass
class Stack:
    exporter: Exporter
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: WebhookSink
    smtp: SmtpSink
    token: str

    def mails(self, alertname: str, model: str | None = None) -> list[Mail]:
        wanted = alertname + (f" for model {model}" if model else "")
        return [m for m in self.smtp.received() if m.subject.endswith(wanted)]

    def webhook_alerts(self) -> list[dict]:
        return [alert for request in self.webhook.received() for alert in request.body["alerts"]]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    prometheus_binary()
    alertmanager_binary()
    logs = tmp_path / "logs"
    logs.mkdir()
    now = time.time()
    models = []
    for model in crafted_models():
        path = model.write(logs, now)
        models.append(
            {
                "name": model.name,
                "task": "binary",
                "predictions": {"path": str(path), "format": "csv"},
                "windows": [WINDOW],
                "thresholds": model.thresholds,
            }
        )
    config = tmp_path / "exporter.yml"
    config.write_text(
        yaml.safe_dump({"state_dir": str(tmp_path / "state"), "models": models}), encoding="utf-8"
    )
    token = secrets.token_hex(16)
    exporter = Exporter(config)
    alertmanager = Alertmanager(tmp_path / "alertmanager")
    prometheus = Prometheus(tmp_path / "prometheus")
    with WebhookSink() as webhook, SmtpSink() as smtp:
        try:
            exporter.start()
            write_alertmanager_config(
                alertmanager.workdir, webhook_url=webhook.url, smtp=smtp.address, token=token
            )
            alertmanager.start()
            write_prometheus_config(
                prometheus.workdir,
                exporter=f"127.0.0.1:{exporter.port}",
                alertmanager=alertmanager.address,
                default_for="0s",
                for_={"MLModelExporterDown": "2s"},
            )
            prometheus.start()
            yield Stack(exporter, prometheus, alertmanager, webhook, smtp, token)
        finally:
            prometheus.stop()
            alertmanager.stop()
            exporter.kill()


def wait_for_the_crafted_figures(exporter: Exporter) -> None:
    """The exporter read every crafted row, rejected none, and has the figures we meant."""
    expected = {"degraded": 200, "healthy": 200, "few-outcomes": 30, "fresh": 0, "stale": 150}

    def outcomes() -> dict[str, float]:
        samples = exporter.samples()
        return {
            dict(labels)["model"]: v
            for labels, v in select(samples, "mlmodel_window_outcomes", window=WINDOW).items()
        }

    wait_for(lambda: outcomes() == expected, timeout=10, what=f"window outcomes {expected}")
    rejected = select(exporter.samples(), "mlmodel_exporter_rejected_lines_total")
    assert not any(rejected.values()), rejected


def check_accuracy_alert_fires(prometheus: Prometheus) -> None:
    (alert,) = wait_for(
        lambda: prometheus.firing("MLModelAccuracyLow", model="degraded"),
        timeout=30,
        what="MLModelAccuracyLow firing for degraded in Prometheus",
    )
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["window"] == WINDOW
    assert float(alert["value"]) == pytest.approx(0.6)


def check_accuracy_webhook(stack: Stack) -> None:
    """The retraining webhook: payload version 4, the bearer token, the alert's labels and
    annotations."""
    wait_for(stack.webhook.received, timeout=20, what="a webhook notification")
    request = stack.webhook.received()[0]
    assert request.path == "/webhook"
    assert request.headers.get("Authorization") == f"Bearer {stack.token}"
    assert request.headers.get("Content-Type", "").startswith("application/json")
    body = request.body
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == WEBHOOK_RECEIVER
    assert body["groupLabels"] == {"alertname": "MLModelAccuracyLow", "model": "degraded"}
    (hooked,) = body["alerts"]
    assert hooked["status"] == "firing"
    assert hooked["labels"]["alertname"] == "MLModelAccuracyLow"
    assert hooked["labels"]["model"] == "degraded"
    assert hooked["labels"]["severity"] == "critical"
    assert hooked["labels"]["category"] == "quality"
    assert hooked["labels"]["window"] == WINDOW
    assert hooked["labels"]["job"] == EXPORTER_JOB
    assert hooked["annotations"]["value"] == "60%"
    assert hooked["annotations"]["threshold"] == "90%"
    assert "200 outcomes" in hooked["annotations"]["description"]
    assert hooked["annotations"]["runbook_url"].endswith("#mlmodelaccuracylow")


def check_accuracy_mail(stack: Stack) -> None:
    (mail,) = wait_for(
        lambda: stack.mails("MLModelAccuracyLow", "degraded"),
        timeout=20,
        what="the MLModelAccuracyLow email",
    )
    assert mail.recipients == [TO]
    assert mail.subject == "[FIRING:1] MLModelAccuracyLow for model degraded"
    text = mail.text()
    for line in ("Model:     degraded", f"Window:    {WINDOW}", "Value:     60%", "Threshold: 90%"):
        assert line in text, (line, text)
    assert f"over the {WINDOW} window is 60%, below its threshold of 90%" in " ".join(text.split())
    assert "#mlmodelaccuracylow" in text
    html = mail.html()
    assert "degraded" in html
    assert "60%" in html
    assert "90%" in html


def check_quiet_models_stay_quiet(prometheus: Prometheus) -> None:
    """Their data is in Prometheus, every rule has seen it, and no alert is about them."""

    def data_in_prometheus() -> bool:
        return bool(
            prometheus.query('mlmodel_accuracy_ratio{model="healthy"} > 0.9')
            and prometheus.query('mlmodel_accuracy_ratio{model="few-outcomes"} < 0.9')
            and prometheus.query('mlmodel_window_outcomes{model="few-outcomes"} < 100')
            and prometheus.query('mlmodel_last_prediction_timestamp_seconds{model="fresh"}')
            and prometheus.query(
                'model_window:mlmodel_window_outcomes:gte_min_outcomes{model="healthy"}'
            )
        )

    wait_for(data_in_prometheus, timeout=20, what="the quiet models' series in Prometheus")
    assert not prometheus.query('mlmodel_accuracy_ratio{model="fresh"}')
    mark = time.time()
    wait_for(lambda: prometheus.evaluated_since(mark + 1), timeout=10, what="two evaluations")
    loud = [
        alert["labels"]
        for alert in prometheus.alerts()
        if alert["labels"].get("model") in QUIET_MODELS
        and alert["labels"]["alertname"] in (*QUALITY_ALERTS, *STALENESS_ALERTS)
    ]
    assert loud == []
    firing = {(a["labels"]["alertname"], a["labels"].get("model")) for a in prometheus.alerts()}
    assert firing == {("MLModelAccuracyLow", "degraded"), ("MLModelPredictionsStale", "stale")}


def check_exporter_down_fires(stack: Stack) -> None:
    assert stack.exporter.stop() == 0
    wait_for(
        lambda: stack.prometheus.firing("MLModelExporterDown", job=EXPORTER_JOB),
        timeout=20,
        what="MLModelExporterDown firing in Prometheus",
    )
    (down,) = wait_for(
        lambda: stack.mails("MLModelExporterDown"), timeout=20, what="the exporter-down email"
    )
    assert f"127.0.0.1:{stack.exporter.port}" in down.text()
    assert "#mlmodelexporterdown" in down.text()


def check_nothing_was_sent_about_quiet_models(stack: Stack) -> None:
    for mail in stack.smtp.received():
        for model in QUIET_MODELS:
            assert f"for model {model}" not in mail.subject, mail.subject
            assert f"Model:     {model}\n" not in mail.text(), mail.text()
    hooked_models = {
        (a["labels"]["alertname"], a["labels"]["model"]) for a in stack.webhook_alerts()
    }
    assert hooked_models == {("MLModelAccuracyLow", "degraded")}


def test_alerts_reach_the_webhook_and_email_and_only_for_the_right_models(stack: Stack) -> None:
    started = time.monotonic()
    wait_for_the_crafted_figures(stack.exporter)
    # MLModelAccuracyLow for `degraded`: Prometheus, then the webhook, then the email
    check_accuracy_alert_fires(stack.prometheus)
    check_accuracy_webhook(stack)
    check_accuracy_mail(stack)
    # the control: the stale model's MLModelPredictionsStale is emailed, not hooked
    wait_for(
        lambda: stack.mails("MLModelPredictionsStale", "stale"),
        timeout=20,
        what="the MLModelPredictionsStale email for the stale model",
    )
    check_quiet_models_stay_quiet(stack.prometheus)
    check_exporter_down_fires(stack)
    check_nothing_was_sent_about_quiet_models(stack)
    assert time.monotonic() - started < 80
