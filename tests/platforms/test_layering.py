"""Adapters know no idr configuration: app/platforms imports nothing from app/config
(table-name parsing is a platform concern the config layer calls)."""

from __future__ import annotations

import ast
from pathlib import Path

import app.platforms

PLATFORMS = Path(app.platforms.__file__).parent


def test_platforms_never_import_config():
    offenders = []
    for f in sorted(PLATFORMS.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            offenders += [f"{f.name}: {n}" for n in names if n == "app.config" or n.startswith("app.config.")]
    assert offenders == []


def test_config_layer_uses_the_platform_parser():
    from app.config import validate
    from app.platforms.names import parse_table_fqn

    assert validate.parse_table_fqn is parse_table_fqn
    assert parse_table_fqn('crm."Customers"').name == "Customers"
