"""Static checks of the stack around the exporter: rules, Alertmanager, Grafana, compose.

The real tools check what they own (`promtool check config|rules`, `promtool test rules`,
`amtool check-config|config routes test|template render`); the rest is read as YAML/JSON
and held to the stack's conventions (docs/stack.md, docs/alerts.md). Nothing here needs a
running exporter.

Under CI=true a missing tool is a failure; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
PROMETHEUS = ROOT / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = PROMETHEUS / "alertmanager.yml"
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
COMPOSE = ROOT / "docker-compose.yml"
RUNBOOKS = ROOT / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/ml-model-exporter/ml-model-exporter/blob/main/docs/alerts.md#"

CORE_ALERTS = (
    "MLModelAccuracyLow",
    "MLModelPrecisionLow",
    "MLModelRecallLow",
    "MLModelRegressionErrorHigh",
    "MLModelDataDrift",
    "MLModelPredictionDrift",
    "MLModelMissingValuesHigh",
    "MLModelPredictionsStale",
    "MLModelOutcomesStale",
    "MLModelExporterDown",
    "MLModelExporterRejectingLines",
)
ALERTS = (*CORE_ALERTS, "MLModelMultivariateDrift")
"""Every alert the rules define: the core alerts and the ones added since."""
QUALITY_ALERTS = (
    "MLModelAccuracyLow",
    "MLModelPrecisionLow",
    "MLModelRecallLow",
    "MLModelRegressionErrorHigh",
)
MIN_OUTCOMES_GATE = "model_window:mlmodel_window_outcomes:gte_min_outcomes"
DASHBOARD_VARIABLES = ("datasource", "model", "model_version", "window")
GRAFANA_BUILTIN_VARIABLES = ("__rate_interval", "__interval", "__range")
TOOLS = {
    "promtool": "Debian package prometheus",
    "amtool": "Debian package prometheus-alertmanager",
}


# --- helpers ------------------------------------------------------------------------


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails under CI=true and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({TOOLS[name]})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_schema(name: str) -> dict[str, Any]:
    """A JSON schema from ../shared/schemas (beside the repository, never copied into it)."""
    path = SCHEMAS / name
    if not path.is_file():
        message = f"{path} not found: shared/ must sit beside the repository"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text(encoding="utf-8"))


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def recording_rules() -> dict[str, dict[str, Any]]:
    return {rule["record"]: rule for rule in rules() if "record" in rule}


def alert_rule_tests() -> list[tuple[str, str, dict[str, Any]]]:
    """(test file name, test name, alert_rule_test entry) for every promtool alert case."""
    cases = []
    for path in RULE_TEST_FILES:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append((path.name, test.get("name", ""), case))
    return cases


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} with the variable unset (its default)."""

    def default(match: re.Match[str]) -> str:
        if match.group(2) is None:
            raise AssertionError(f"{value!r}: ${{{match.group(1)}}} has no default")
        return match.group(2)

    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", default, value)


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of every volume of a compose service, variables defaulted."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source = interpolate(str(volume.get("source", "")))
            mounts.append((volume["type"], source, volume["target"]))
            continue
        source, target, *_ = interpolate(volume).split(":")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append((kind, source, target))
    return mounts


def mount_source(service_name: str, target: str) -> Path:
    """The repository path that a compose service bind-mounts at `target`."""
    for kind, source, mounted_at in volume_mounts(compose()["services"][service_name]):
        if kind == "bind" and mounted_at == target:
            return (ROOT / source).resolve()
    raise AssertionError(f"service {service_name} mounts nothing at {target}")


# --- Prometheus: the real tools -----------------------------------------------------


def test_promtool_check_config() -> None:
    """prometheus.yml is a valid config and the rule files it names load."""
    promtool = require_tool("promtool")
    assert_ok(run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")))


def test_promtool_check_rules() -> None:
    """Every rule file under prometheus/rules/ passes promtool check rules."""
    promtool = require_tool("promtool")
    assert RULE_FILES
    assert_ok(run(promtool, "check", "rules", *map(str, RULE_FILES)))


def test_promtool_test_rules() -> None:
    """Every promtool unit test under prometheus/tests/ passes."""
    promtool = require_tool("promtool")
    assert RULE_TEST_FILES
    assert_ok(run(promtool, "test", "rules", *map(str, RULE_TEST_FILES)))


# --- Prometheus: conventions --------------------------------------------------------


def test_prometheus_config_loads_the_rules_and_scrapes_the_exporter() -> None:
    """prometheus.yml loads prometheus/rules/*.yml, scrapes job ml-model-exporter on :9747
    and sends alerts to Alertmanager."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    loaded = {path for pattern in config["rule_files"] for path in PROMETHEUS.glob(pattern)}
    assert loaded == set(RULE_FILES)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["ml-model-exporter"]["static_configs"] for t in sc["targets"]]
    assert targets == ["exporter:9747"]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]


def test_every_spec_alert_is_defined() -> None:
    """Every core alert exists, each once, and every other alert is listed
    in ALERTS (so the checks below cover it)."""
    names = [rule["alert"] for rule in rules() if "alert" in rule]
    assert len(names) == len(set(names))
    assert set(CORE_ALERTS) <= set(names)
    assert set(names) == set(ALERTS)


@pytest.mark.parametrize("name", ALERTS)
def test_alert_has_severity_annotations_and_runbook(name: str) -> None:
    """Each alert has severity, category, summary, templated description, a runbook anchor
    in docs/alerts.md and a `for:` duration."""
    alert = alerts()[name]
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    assert alert["labels"]["category"] in ("quality", "drift", "data", "freshness", "exporter")
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert "$labels." in annotations["description"]
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()
    assert re.fullmatch(r"\d+[smh]", alert["for"])


@pytest.mark.parametrize("name", QUALITY_ALERTS)
def test_quality_alerts_read_thresholds_and_need_min_outcomes(name: str) -> None:
    """Quality alerts compare with mlmodel_alert_threshold and join the min_outcomes gate."""
    expr = alerts()[name]["expr"]
    assert "mlmodel_alert_threshold" in expr
    assert MIN_OUTCOMES_GATE in expr
    gate = recording_rules()[MIN_OUTCOMES_GATE]["expr"]
    assert "mlmodel_window_outcomes" in gate
    assert 'mlmodel_alert_threshold{metric="min_outcomes"}' in gate


def test_threshold_keys_exist_in_the_exporter_config() -> None:
    """Every `metric` value selected from mlmodel_alert_threshold in prometheus/ and grafana/
    is a threshold key the exporter's config knows."""
    from exporter import config  # noqa: PLC0415 - the exporter is the source of truth

    known = {
        *config.LOWER_BOUND_THRESHOLDS,
        *config.UPPER_BOUND_THRESHOLDS,
        *config.RATIO_THRESHOLDS,
        *config.DURATION_THRESHOLDS,
        "min_outcomes",
    }
    texts = [p.read_text(encoding="utf-8") for p in (*RULE_FILES, *DASHBOARDS)]
    selectors = re.findall(r"mlmodel_alert_threshold\{([^}]*)\}", "\n".join(texts))
    used = set()
    for selector in selectors:
        for values in re.findall(r'metric\s*=~?\s*\\?"([^"\\]+)', selector):
            used.update(values.split("|"))
    assert used
    assert used <= known, used - known


def test_recording_rules_are_named_level_metric_operations() -> None:
    """Recording rules follow level:metric:operations with an mlmodel_ metric."""
    names = list(recording_rules())
    assert names
    for name in names:
        assert re.fullmatch(r"[a-z_]+:mlmodel_[a-z0-9_]+:[a-z0-9_]+", name), name


@pytest.mark.parametrize("name", ALERTS)
def test_alert_has_a_firing_and_a_quiet_promtool_case(name: str) -> None:
    """Each alert has a promtool case that fires, asserting severity and the rendered
    summary, description and runbook_url, and a case where it stays quiet."""
    cases = [case for _, _, case in alert_rule_tests() if case["alertname"] == name]
    firing = [case for case in cases if case.get("exp_alerts")]
    quiet = [case for case in cases if not case.get("exp_alerts")]
    assert firing, f"{name}: no promtool case that fires"
    assert quiet, f"{name}: no promtool case that stays quiet"
    for case in firing:
        for expected in case["exp_alerts"]:
            assert expected["exp_labels"]["severity"] == alerts()[name]["labels"]["severity"]
            annotations = expected["exp_annotations"]
            assert {"summary", "description", "runbook_url"} <= set(annotations)
            assert "{{" not in annotations["description"]


def test_runbook_anchors_are_headings_in_the_alerts_doc() -> None:
    """Every runbook_url anchor is a `##` heading of docs/alerts.md, one per alert."""
    text = RUNBOOKS.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    anchors = {github_anchor(h) for h in headings}
    for name, alert in alerts().items():
        anchor = alert["annotations"]["runbook_url"].removeprefix(RUNBOOK_BASE)
        assert anchor in anchors, f"{name}: no heading for #{anchor} in {RUNBOOKS.name}"
    assert set(alerts()) <= set(headings)


# --- Alertmanager ---------------------------------------------------------------------


def test_amtool_check_config() -> None:
    """alertmanager.yml and its templates pass amtool check-config."""
    amtool = require_tool("amtool")
    assert_ok(run(amtool, "check-config", str(ALERTMANAGER)))


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            "alertname=MLModelAccuracyLow severity=critical category=quality",
            "retrain-webhook,email",
        ),
        (
            "alertname=MLModelRegressionErrorHigh severity=critical category=quality",
            "retrain-webhook,email",
        ),
        ("alertname=MLModelDataDrift severity=critical category=drift", "retrain-webhook,email"),
        ("alertname=MLModelPredictionDrift severity=warning category=drift", "email"),
        ("alertname=MLModelMultivariateDrift severity=warning category=drift", "email"),
        ("alertname=MLModelMissingValuesHigh severity=warning category=data", "email"),
        ("alertname=MLModelPredictionsStale severity=critical category=freshness", "email"),
        ("alertname=MLModelExporterDown severity=critical category=exporter", "email"),
    ],
)
def test_alertmanager_routes(labels: str, receivers: str) -> None:
    """Warnings go to email; critical quality and drift alerts to the retraining webhook
    and email; other critical alerts to email only."""
    amtool = require_tool("amtool")
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        "model=credit",
        *labels.split(),
    )
    assert_ok(result)
    assert result.stdout.strip() == receivers


@pytest.mark.parametrize("name", ALERTS)
def test_alert_labels_route_as_intended(name: str) -> None:
    """Each alert's own labels reach the retraining webhook exactly when it is a critical
    quality or drift alert."""
    amtool = require_tool("amtool")
    labels = {"alertname": name, "model": "credit", **alerts()[name]["labels"]}
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert_ok(result)
    retrain = labels["severity"] == "critical" and labels["category"] in ("quality", "drift")
    assert result.stdout.strip() == ("retrain-webhook,email" if retrain else "email")


def test_alertmanager_grouping_and_inhibition() -> None:
    """Groups by alertname and model; ExporterDown inhibits the other alerts of its
    instance; critical inhibits warning for the same model."""
    config = load_yaml(ALERTMANAGER)
    assert config["route"]["group_by"] == ["alertname", "model"]
    inhibit = config["inhibit_rules"]
    down = [r for r in inhibit if 'alertname="MLModelExporterDown"' in r["source_matchers"]]
    assert down
    assert "instance" in down[0]["equal"]
    assert 'alertname!="MLModelExporterDown"' in down[0]["target_matchers"]
    severity = [r for r in inhibit if 'severity="critical"' in r.get("source_matchers", [])]
    assert severity
    assert 'severity="warning"' in severity[0]["target_matchers"]
    assert severity[0]["equal"] == ["model"]


def test_alertmanager_sends_to_the_mail_catcher_and_the_retrain_hook() -> None:
    """SMTP goes to compose's mailpit; the webhook to compose's retrain-hook with a bearer
    token file, on the port examples/config.yml's retrain section listens on."""
    config = load_yaml(ALERTMANAGER)
    assert config["global"]["smtp_smarthost"] == "mailpit:1025"
    receivers = {r["name"]: r for r in config["receivers"]}
    webhook = receivers["retrain-webhook"]["webhook_configs"][0]
    assert webhook["url"] == "http://retrain-hook:9748/webhook"
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    token_dir = Path(authorization["credentials_file"]).parent.as_posix()
    alertmanager = compose()["services"]["alertmanager"]
    assert any(target == token_dir for _, _, target in volume_mounts(alertmanager))
    retrain = load_yaml(ROOT / "examples" / "config.yml")["retrain"]
    assert retrain["listen"].endswith(":9748")
    assert set(retrain["alerts"]) <= set(alerts())


def test_email_templates_render_model_version_window_value_threshold_and_links(
    tmp_path: Path,
) -> None:
    """The email subject, text and HTML name the model, version, window, value and
    threshold, and link to the runbook, Prometheus, Grafana and a silence."""
    amtool = require_tool("amtool")
    data = {
        "receiver": "email",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "MLModelAccuracyLow",
                    "model": "credit",
                    "model_version": "3",
                    "window": "1h",
                    "severity": "critical",
                },
                "annotations": {
                    "summary": "Model credit accuracy is below its threshold (1h window).",
                    "description": "Accuracy of model credit version 3 is 81.2%.",
                    "value": "81.2%",
                    "threshold": "88%",
                    "runbook_url": RUNBOOK_BASE + "mlmodelaccuracylow",
                },
                "startsAt": "2024-06-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://localhost:9090/graph?g0.expr=x",
                "fingerprint": "0123456789abcdef",
            }
        ],
        "groupLabels": {"alertname": "MLModelAccuracyLow", "model": "credit"},
        "commonLabels": {"alertname": "MLModelAccuracyLow", "model": "credit"},
        "commonAnnotations": {},
        "externalURL": "http://localhost:9093",
    }
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data), encoding="utf-8")
    glob = str(PROMETHEUS / "templates" / "*.tmpl")

    def render(name: str, kind: str) -> str:
        result = run(
            amtool,
            "template",
            "render",
            f"--template.glob={glob}",
            f"--template.data={data_file}",
            f"--template.type={kind}",
            f'--template.text={{{{ template "{name}" . }}}}',
        )
        assert_ok(result)
        return result.stdout

    assert render("mlmodel.email.subject", "text").strip() == (
        "[FIRING:1] MLModelAccuracyLow for model credit"
    )
    for body in (render("mlmodel.email.text", "text"), render("mlmodel.email.html", "html")):
        for expected in (
            "credit",
            "1h",
            "81.2%",
            "88%",
            RUNBOOK_BASE + "mlmodelaccuracylow",
            "http://localhost:9090/graph?g0.expr=x",
            "http://localhost:3000/d/ml-model-exporter/",
            "http://localhost:9093/#/silences/new?filter=",
        ):
            assert expected in body
    text = render("mlmodel.email.text", "text")
    assert "Version:   3" in text
    assert "Threshold: 88%" in text


# --- Grafana ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_validates_against_the_schema(path: Path) -> None:
    """Each dashboard is a valid classic JSON model (strict: no export-only keys)."""
    schema = require_schema("grafana-dashboard.jsonschema.json")
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(dashboard), key=lambda e: list(e.path)
    )
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uid_variables_and_datasources(path: Path) -> None:
    """A fixed uid; variables datasource, model, model_version, window; every query on
    the `datasource` variable and using only known variables; unique panel ids."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["uid"] == path.stem
    assert "__inputs" not in dashboard
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables == list(DASHBOARD_VARIABLES)
    datasource = dashboard["templating"]["list"][0]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    panels = dashboard_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= {*DASHBOARD_VARIABLES, *GRAFANA_BUILTIN_VARIABLES}, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_do_not_overlap(path: Path) -> None:
    """No two panels share a grid cell."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels(dashboard):
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel.get("title", "")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_threshold_series_are_dashed_red(path: Path) -> None:
    """Every mlmodel_alert_threshold series a time series panel draws is matched by a
    dashed red override (legend `<metric> threshold`)."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    checked = 0
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            match = re.search(r'mlmodel_alert_threshold\{[^}]*metric=~?"([^"]+)"', target["expr"])
            if panel["type"] != "timeseries" or not match:
                continue
            assert target["legendFormat"] == "{{metric}} threshold", panel["title"]
            styled: set[str] = set()
            for override in panel["fieldConfig"]["overrides"]:
                properties = {p["id"]: p["value"] for p in override["properties"]}
                if (
                    override["matcher"]["id"] == "byNames"
                    and properties.get("custom.lineStyle", {}).get("fill") == "dash"
                    and properties.get("color", {}).get("fixedColor") == "red"
                ):
                    styled.update(override["matcher"]["options"]["names"])
            wanted = {f"{metric} threshold" for metric in match.group(1).split("|")}
            assert wanted <= styled, (panel["title"], wanted - styled)
            checked += 1
    assert checked


def test_grafana_provisioning_matches_compose() -> None:
    """The datasource has the fixed uid `prometheus` and points at compose's Prometheus;
    the dashboard provider reads the folder compose mounts grafana/dashboards at; the
    home dashboard is one of them."""
    provisioning = ROOT / "grafana" / "provisioning"
    datasources = [
        ds
        for path in sorted((provisioning / "datasources").glob("*.yml"))
        for ds in load_yaml(path)["datasources"]
    ]
    prometheus = [ds for ds in datasources if ds["uid"] == "prometheus"]
    assert len(prometheus) == 1
    assert prometheus[0]["type"] == "prometheus"
    assert prometheus[0]["url"] == "http://prometheus:9090"
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yml"))
        for provider in load_yaml(path)["providers"]
    ]
    assert len(providers) == 1
    folder = providers[0]["options"]["path"]
    assert mount_source("grafana", folder) == (ROOT / "grafana" / "dashboards").resolve()
    assert mount_source("grafana", "/etc/grafana/provisioning") == provisioning.resolve()
    grafana = compose()["services"]["grafana"]["environment"]
    home = grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == folder
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file()
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# --- docker compose and the image ---------------------------------------------------------


def test_compose_validates_against_the_schema() -> None:
    """docker-compose.yml is valid against the compose specification."""
    schema = require_schema("compose-spec.json")
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose()))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors]


def test_compose_mounts_and_build_contexts_exist() -> None:
    """Every bind-mounted path and build context exists; named volumes are declared."""
    spec = compose()
    declared = set(spec.get("volumes") or {})
    for name, service in spec["services"].items():
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} missing"
            dockerfile = (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            assert (context / dockerfile).is_file(), f"{name}: {dockerfile} missing"
        for kind, source, target in volume_mounts(service):
            if kind == "bind":
                assert (ROOT / source).exists(), f"{name}: {source} (mounted at {target}) missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"


def test_compose_mounts_the_checked_configs() -> None:
    """Prometheus and Alertmanager run the very files the tests above check, at the paths
    their relative references (rules, templates) expect."""
    assert (
        mount_source("prometheus", "/etc/prometheus/prometheus.yml")
        == (PROMETHEUS / "prometheus.yml").resolve()
    )
    assert mount_source("prometheus", "/etc/prometheus/rules") == (PROMETHEUS / "rules").resolve()
    assert mount_source("alertmanager", "/etc/alertmanager/alertmanager.yml") == (
        ALERTMANAGER.resolve()
    )
    assert (
        mount_source("alertmanager", "/etc/alertmanager/templates")
        == (PROMETHEUS / "templates").resolve()
    )
    config = ROOT / "examples" / "config.yml"
    for service in ("exporter", "retrain-hook"):
        assert mount_source(service, "/etc/ml-model-exporter/config.yml") == config.resolve()


def test_compose_services_are_pinned_healthchecked_and_complete() -> None:
    """The stack has every service docs/stack.md names; third-party images are pinned to a
    version; every long-running service has a healthcheck."""
    services = compose()["services"]
    assert {"exporter", "prometheus", "alertmanager", "grafana", "mailpit", "retrain-hook"} <= set(
        services
    )
    images = {name: s.get("image", "") for name, s in services.items() if "build" not in s}
    assert images["prometheus"].startswith("prom/prometheus:v3.")
    assert images["alertmanager"].startswith("prom/alertmanager:v0.")
    assert images["grafana"].startswith("grafana/grafana:12.")
    for name, image in images.items():
        tag = image.rpartition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"
    for name, service in services.items():
        if service.get("restart", "no") != "no":
            assert "test" in service.get("healthcheck", {}), f"{name}: no healthcheck"
    assert "demo" in services["exporter"]["command"]
    assert "retrain-hook" in services["retrain-hook"]["command"]


def test_dockerfile_installs_the_repo_and_runs_the_demo() -> None:
    """The image is python:3.11-slim with the repository pip-installed, running the demo
    on :9747 by default as an unprivileged user."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, flags=re.MULTILINE)
    assert "pip wheel" in text
    assert "pip install" in text
    assert 'ENTRYPOINT ["ml-model-exporter"]' in text
    assert 'CMD ["demo", "--web.listen-address", ":9747"]' in text
    assert re.search(r"^USER (?!root|0\b)", text, flags=re.MULTILINE)


def test_example_config_is_a_valid_exporter_config() -> None:
    """examples/config.yml (mounted by compose) passes the exporter's own config checks."""
    from exporter.config import load_config  # noqa: PLC0415 - the exporter's own validator

    config = load_config(ROOT / "examples" / "config.yml")
    assert config.models
    assert config.retrain is not None
    assert config.retrain.command
