"""The ways into a Config: a YAML file, or a mapping already parsed or built in code."""

from __future__ import annotations

from pathlib import Path

from exporter.config.limits import MAX_YAML_DEPTH
from exporter.config.problems import ConfigError
from exporter.config.schema import Config
from exporter.config.section_top import check_config
from exporter.config.yaml_loader import read_yaml


def load_config(path: Path | str) -> Config:
    """Read and validate a YAML config file, relative paths resolved against its folder;
    raise ConfigError naming every problem."""
    path = Path(path)
    return config_from_mapping(read_yaml(path), base_dir=path.resolve().parent)


def config_from_mapping(raw: object, *, base_dir: Path) -> Config:
    """Validate an already-parsed config mapping (the demo builds one in code)."""
    try:
        return check_config(raw, base_dir)
    except RecursionError:  # a mapping built in code, nested past what YAML would allow
        raise ConfigError([f"config: nested deeper than {MAX_YAML_DEPTH} levels"]) from None
