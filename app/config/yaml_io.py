"""Reading and writing the configuration document as YAML (or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from app.config.model import IdrConfig
from app.core.errors import ConfigError


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a plain dict (not yet validated).

    Syntax errors become a ``ConfigError`` naming the file and the line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file: {e.strerror or e}", field=str(p)) from e

    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{p}: JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}", field=str(p)
            ) from e
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = e.problem or e.context or "invalid YAML"
            raise ConfigError(f"{p}: YAML syntax error{where}: {problem}", field=str(p)) from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: YAML error: {e}", field=str(p)) from e

    if doc is None:  # empty file
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{p}: the top level must be a mapping (sources:, rules:, ...), got {type(doc).__name__}",
            field=str(p),
        )
    return doc


def _settings_value(value: str) -> int | str:
    # Settings are stored as strings; known ones are integers and read better unquoted.
    return int(value) if value.lstrip("-").isdigit() else value


def dump_config(cfg: IdrConfig) -> str:
    """The config as YAML: sections and fields in model order, defaults and empty sections left out."""
    doc: dict[str, Any] = {}
    for key in IdrConfig.model_fields:
        if key == "settings":
            if cfg.settings:
                doc[key] = {k: _settings_value(v) for k, v in sorted(cfg.settings.items())}
            continue
        rows = getattr(cfg, key)
        if rows:
            doc[key] = [row.model_dump(mode="json", exclude_defaults=True) for row in rows]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
