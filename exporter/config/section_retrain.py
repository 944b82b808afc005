"""Validates the ``retrain`` section, read by the retraining hook: where it listens, the
token it requires, the alerts that trigger it, how often, and the command (an argv) it runs."""

from __future__ import annotations

from typing import Any

from exporter.config.limits import (
    DURATION_RANGE,
    MAX_ALERTS,
    MAX_COMMAND_ARG_LENGTH,
    MAX_COMMAND_ARGS,
    MAX_PORT,
)
from exporter.config.quoting import quote
from exporter.config.schema import RetrainConfig
from exporter.config.values import Checker, is_listen_address

_KEYS = ("listen", "token_file", "alerts", "cooldown", "command")
_AT = "retrain"


def check_retrain(check: Checker, raw: object) -> RetrainConfig | None:
    r = check.mapping(raw, _AT, _KEYS)
    if not isinstance(raw, dict):
        return None
    listen = check.string(r.get("listen", RetrainConfig.listen), f"{_AT}.listen") or ""
    if listen and not is_listen_address(listen):
        check.error(
            f"{_AT}.listen", f"expected host:port with a port 0-{MAX_PORT}, got {quote(listen)}"
        )
    token_file = check.path(r["token_file"], f"{_AT}.token_file") if "token_file" in r else None
    if "token_file" not in r:
        check.error(f"{_AT}.token_file", "required: the hook never runs without a token")
    alerts = _alerts(check, r.get("alerts", list(RetrainConfig.alerts)))
    cooldown = RetrainConfig.cooldown
    if "cooldown" in r:
        cooldown = check.duration(r["cooldown"], f"{_AT}.cooldown", DURATION_RANGE) or 0.0
    return RetrainConfig(
        listen=listen,
        token_file=token_file,
        alerts=alerts,
        cooldown=cooldown,
        command=_command(check, r.get("command")),
    )


def _alerts(check: Checker, alerts: object) -> tuple[str, ...]:
    at = f"{_AT}.alerts"
    if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
        check.error(at, "expected a list of alert names")
        return ()
    if not check.sized_list(alerts, at, MAX_ALERTS, "alert names"):
        return ()
    return tuple(check.name(a, f"{at}[{i}]") or "" for i, a in enumerate(alerts))


def _command(check: Checker, command: Any) -> tuple[str, ...]:
    at = f"{_AT}.command"
    if isinstance(command, str):
        check.error(at, "expected a list of arguments (argv), never a shell string")
        return ()
    if not isinstance(command, list) or not command:
        check.error(at, "required: a non-empty list of arguments")
        return ()
    if not check.sized_list(command, at, MAX_COMMAND_ARGS, "arguments"):
        return ()
    return tuple(
        check.string(argument, f"{at}[{index}]", most=MAX_COMMAND_ARG_LENGTH) or ""
        for index, argument in enumerate(command)
    )
