"""Building every model's `Monitor` from the config, and the `Engine`'s factory of them."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.config import Config, ConfigError, ModelConfig
from exporter.monitor.monitor import Monitor
from exporter.state.model_state import MonitorFactory

__all__ = ["build_monitor", "build_monitors", "monitor_factory"]


def build_monitor(model: ModelConfig, index: int | None = None) -> Monitor | None:
    """The model's monitor, or None when it has neither features nor a reference.

    Raises `ConfigError` with every reference problem, key paths under ``models[index]``
    (or under the model's name when no index is given).
    """
    if not model.features and model.reference is None:
        return None
    at = f"models[{index}]" if index is not None else f"models[{model.name}]"
    return Monitor(model, at=at)


def build_monitors(config: Config) -> dict[str, Monitor]:
    """Every model's monitor by model name; one `ConfigError` with all models' problems."""
    monitors: dict[str, Monitor] = {}
    problems: list[str] = []
    for index, model in enumerate(config.models):
        try:
            monitor = build_monitor(model, index)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        if monitor is not None:
            monitors[model.name] = monitor
    if problems:
        raise ConfigError(problems)
    return monitors


def monitor_factory(monitors: Mapping[str, Monitor]) -> MonitorFactory:
    """The `Engine`'s ``monitor_factory`` for monitors built beforehand (`build_monitors`)."""
    return lambda model: monitors.get(model.name)
